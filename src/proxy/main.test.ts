/**
 * `palisade proxy`: its flags, and the process itself (the CLI as a child
 * process, on ordinary sockets while the transparent ones stand in): it says
 * where it listens, refuses requests with 403 while no HTTP view exists and
 * says why in its flow log, serves its metrics, and exits 0 on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { RawConnection } from "../../test/lib/http-proxy-harness.ts";
import { parseProxyArgs } from "./main.ts";

const CLI = fileURLToPath(new URL("../cli/main.js", import.meta.url));

describe("palisade proxy", () => {
  test("flags: defaults, and refusals that name the flag", () => {
    assert.deepEqual(parseProxyArgs([]), { httpViewFile: "/run/palisade/http-view.json", pinRoot: "/sys/fs/bpf/palisade", port: 15001, metricsPort: 9963, logLevel: "info" });
    assert.deepEqual(parseProxyArgs(["--http-view-file", "/x/v.json", "--pin-root=/p", "--port", "0", "--metrics-port", "9000", "--log-level", "warn"]), {
      httpViewFile: "/x/v.json",
      pinRoot: "/p",
      port: 0,
      metricsPort: 9000,
      logLevel: "warn",
    });
    assert.throws(() => parseProxyArgs(["--port", "70000"]), /Cannot run proxy: --port "70000" is not a port number/);
    assert.throws(() => parseProxyArgs(["--metrics-port", "x"]), /--metrics-port "x" is not a port number/);
    assert.throws(() => parseProxyArgs(["--log-level", "loud"]), /--log-level "loud" is not one of debug, info, warn, error/);
    assert.throws(() => parseProxyArgs(["--node-name", "n"]), /Cannot run proxy: Unknown option '--node-name'/);
    assert.equal(parseProxyArgs(["--kubeconfig", "/etc/k.conf"]).kubeconfig, "/etc/k.conf", "where the TLS material is watched");
    assert.throws(() => parseProxyArgs(["--kubeconfig="]), /Cannot run proxy: --kubeconfig is empty/);
  });

  test("the process: 403 without a view (said in the log), metrics, SIGTERM exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "palisade-proxy-main-"));
    const viewFile = join(dir, "http-view.json");
    const child = spawn(process.execPath, [CLI, "proxy", "--http-view-file", viewFile, "--port", "0", "--metrics-port", "0", "--pin-root", dir], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const lines: Record<string, unknown>[] = [];
      const started = new Promise<Record<string, unknown>>((resolve) => {
        createInterface({ input: child.stdout }).on("line", (line) => {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          lines.push(parsed);
          if (parsed["msg"] === "Proxy started") resolve(parsed);
        });
      });
      const start = await started;
      assert.ok(lines.some((line) => line["msg"] === "No HTTP view file: every proxied request is refused (403) until the agent writes it"));
      const listeners = start["listeners"] as string[];
      assert.equal(listeners.length, 2, `IPv4 and IPv6: ${listeners.join(", ")}`);
      const port = Number(/^0\.0\.0\.0:(\d+)$/.exec(listeners.find((l) => l.startsWith("0.0.0.0:")) ?? "")?.[1]);
      const connection = await RawConnection.open(port);
      connection.send("GET /a HTTP/1.1\r\nHost: api.shop\r\n\r\n");
      const answer = await connection.next();
      assert.notEqual(answer, "closed");
      assert.equal((answer as { status: number }).status, 403);
      connection.destroy();
      const metrics = await (await fetch(`http://127.0.0.1:${start["metricsPort"] as number}/metrics`)).text();
      assert.match(metrics, /^palisade_proxy_requests_total\{verdict="refused",policy="",rule=""\} 1$/m);
      assert.match(metrics, /^palisade_proxy_view_loaded 0$/m);
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = await exited;
      assert.equal(code, 0);
      const flow = lines.find((line) => line["flow"] === "http");
      assert.equal(flow?.["verdict"], "refused");
      assert.equal(flow?.["reason"], `judge failed: no HTTP view: ${viewFile} is missing`);
      assert.equal(flow?.["component"], "proxy");
      assert.ok(lines.some((line) => line["msg"] === "Proxy stopped"));
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
