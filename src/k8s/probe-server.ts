/**
 * The HTTP endpoint of a long-running component (operator, agent):
 * `/healthz` (the process serves), `/readyz` (it is ready to do its work)
 * and `/metrics` (Prometheus text).
 *
 * @module
 */
import type { AddressInfo } from "node:net";
import type { Logger } from "./logger.ts";

// Not imported: an import of node:http reads its lazy exports (undici's WebSocket), about 12 MiB (eslint.config.js).
const http = process.getBuiltinModule("node:http");

/** The content type of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the endpoint asks the component. */
export interface ProbeSources {
  /** Whether the component is ready to serve, e.g. its caches are synced. */
  ready(): boolean;
  /** What /readyz says while not ready. */
  notReadyMessage: string;
  /** The metrics text; a throw answers 500 and is logged. */
  metrics(): string;
  log: Logger;
}

/** A listening probe and metrics server. */
export interface ProbeServer {
  /** The port it listens on (useful when asked for port 0). */
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Serves the probes and metrics on `host:port` (`port` 0 picks a free one;
 * no host = every address).
 *
 * @example
 * ```ts
 * const server = await serveProbes(9963, "0.0.0.0", { ready: () => synced, notReadyMessage: "caches not synced", metrics: () => metrics.render(), log });
 * await server.close();
 * ```
 */
export async function serveProbes(port: number, host: string | undefined, sources: ProbeSources): Promise<ProbeServer> {
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
        res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ok\n" : `${sources.notReadyMessage}\n`);
        return;
      }
      case "/metrics": {
        let text: string;
        try {
          text = sources.metrics();
        } catch (e) {
          sources.log.error({ err: e }, "Cannot render metrics");
          res.writeHead(500, { "content-type": "text/plain" }).end("cannot render metrics\n");
          return;
        }
        res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(text);
        return;
      }
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
