/**
 * The HTTP server of the proxy benchmark: nginx (Debian's nginx-light) in
 * the server pod's network namespace, one process (no master, so killing
 * the one pid stops it), keep-alive on with no request cap per connection,
 * no access log, a small static file as the content and, when asked, a
 * bulk file and a second server block speaking HTTPS with a given
 * certificate.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CleanupStack } from "./cleanup.ts";
import { waitForListener } from "./listener.ts";

/** The body every request gets. */
export const NGINX_BODY = "palisade benchmark: a small static body\n";

const NGINX = "/usr/sbin/nginx";

/** The path of the bulk file, when {@link NginxOptions.bulkBytes} asks for one. */
export const BULK_PATH = "/bulk.bin";

/** What nginx serves besides {@link NGINX_BODY} over plain HTTP. */
export interface NginxOptions {
  /** The same files over HTTPS on `port`, presenting the certificate and key at those paths. */
  tls?: { port: number; certPath: string; keyPath: string };
  /** A file of this many bytes at {@link BULK_PATH}. */
  bulkBytes?: number;
  /** More ports serving the same over plain HTTP. */
  alsoPorts?: number[];
}

/**
 * The configuration for `nginx -p dir`: port `port` or ports (and HTTPS on
 * `tls.port`), files under `dir/www`, logs and pid under `dir`.
 *
 * @example
 * ```ts
 * writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, 8080));
 * ```
 */
export function nginxConfig(dir: string, port: number | number[], tls?: NginxOptions["tls"]): string {
  const server = (listen: string[], extra: string) => `  server {
${listen.map((what) => `    listen ${what} backlog=4096;\n`).join("")}    root ${join(dir, "www")};
    index index.txt;${extra}
  }
`;
  const https =
    tls === undefined
      ? ""
      : server([`${tls.port} ssl`], `\n    ssl_certificate ${tls.certPath};\n    ssl_certificate_key ${tls.keyPath};\n    ssl_protocols TLSv1.2 TLSv1.3;`);
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
${server([port].flat().map(String), "")}${https}}
`;
}

/**
 * Starts nginx in the network namespace `netns` serving {@link NGINX_BODY}
 * on `port` (and what `options` add), its files under `dir`; resolves once
 * it listens. It is killed when `cleanup` runs, or by the returned function.
 */
export async function startNginx(cleanup: CleanupStack, netns: string, port: number, dir: string, options: NginxOptions = {}): Promise<() => void> {
  mkdirSync(join(dir, "www"), { recursive: true });
  writeFileSync(join(dir, "www", "index.txt"), NGINX_BODY);
  if (options.bulkBytes !== undefined) writeFileSync(join(dir, "www", BULK_PATH.slice(1)), randomBytes(options.bulkBytes));
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, [port, ...(options.alsoPorts ?? [])], options.tls));
  const child = spawn("nsenter", [`--net=/var/run/netns/${netns}`, NGINX, "-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = cleanup.add(`nginx in ${netns}`, () => child.kill("SIGKILL"));
  for (const listening of [port, ...(options.alsoPorts ?? []), ...(options.tls ? [options.tls.port] : [])]) {
    await waitForListener(netns, listening, () => (child.exitCode === null ? undefined : `nginx exited with ${child.exitCode}: ${stderr.trim()}`));
  }
  return stop;
}
