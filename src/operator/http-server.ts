/**
 * The operator's HTTP endpoint: `/healthz` (the process serves), `/readyz`
 * (its caches are synced) and `/metrics` (Prometheus text).
 *
 * @module
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** What the endpoint asks the operator. */
export interface ProbeSources {
  /** Whether the operator is ready to serve (caches synced). */
  ready(): boolean;
  /** The metrics text. */
  metrics(): string;
}

/** A listening probe and metrics server. */
export interface ProbeServer {
  /** The port it listens on (useful when asked for port 0). */
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Serves the probes and metrics on `host:port` (`port` 0 picks a free one).
 *
 * @example
 * ```ts
 * const server = await serveProbes(9963, "0.0.0.0", { ready: () => synced, metrics: () => metrics.render() });
 * await server.close();
 * ```
 */
export async function serveProbes(port: number, host: string, sources: ProbeSources): Promise<ProbeServer> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (path) {
      case "/healthz":
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      case "/readyz": {
        const ready = sources.ready();
        res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ok\n" : "caches not synced\n");
        return;
      }
      case "/metrics":
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(sources.metrics());
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
