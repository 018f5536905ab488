/**
 * The HTTP server of the proxy benchmark: nginx (Debian's nginx-light) in
 * the server pod's network namespace, one process (no master, so killing
 * the one pid stops it), keep-alive on with no request cap per connection,
 * no access log, a small static file as the only content.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CleanupStack } from "./cleanup.ts";
import { waitForListener } from "./listener.ts";

/** The body every request gets. */
export const NGINX_BODY = "palisade benchmark: a small static body\n";

const NGINX = "/usr/sbin/nginx";

/**
 * The configuration for `nginx -p dir`: port `port`, files under `dir/www`,
 * logs and pid under `dir`.
 *
 * @example
 * ```ts
 * writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, 8080));
 * ```
 */
export function nginxConfig(dir: string, port: number): string {
  return `worker_processes 1;
master_process off;
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/plain;
  keepalive_timeout 120s;
  keepalive_requests 1000000000;
  client_body_temp_path ${join(dir, "body")};
  server {
    listen ${port} backlog=4096;
    root ${join(dir, "www")};
    index index.txt;
  }
}
`;
}

/**
 * Starts nginx in the network namespace `netns` serving {@link NGINX_BODY}
 * on `port`, its files under `dir`; resolves once it listens. It is killed
 * when `cleanup` runs, or by the returned function.
 */
export async function startNginx(cleanup: CleanupStack, netns: string, port: number, dir: string): Promise<() => void> {
  mkdirSync(join(dir, "www"), { recursive: true });
  writeFileSync(join(dir, "www", "index.txt"), NGINX_BODY);
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, port));
  const child = spawn("nsenter", [`--net=/var/run/netns/${netns}`, NGINX, "-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = cleanup.add(`nginx in ${netns}`, () => child.kill("SIGKILL"));
  await waitForListener(netns, port, () => (child.exitCode === null ? undefined : `nginx exited with ${child.exitCode}: ${stderr.trim()}`));
  return stop;
}
