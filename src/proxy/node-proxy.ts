/**
 * The per-node proxy as one process runs it: listeners (transparent ones in
 * production, for IPv4 and IPv6) whose accepted connections go to the HTTP
 * and TLS front ends, the flow log, and the health and metrics server. How to listen,
 * how to open an upstream connection and how to judge are given, so the same
 * code runs on plain loopback sockets in tests.
 *
 * @example
 * ```ts
 * const proxy = await NodeProxy.start({
 *   listen: (server, family) => listenTransparent(server, { family, port: 15001 }),
 *   connectUpstream: (c) => connectTransparent({ family: 4, localAddress: c.clientAddress, localPort: c.clientPort, remoteAddress: c.serverAddress, remotePort: c.serverPort }),
 *   judge: (request, connection) => index.judge(request, connection, identityOf),
 *   judgeConnection: (start, connection) => index.judgeConnection(start, connection, identityOf),
 *   view: () => ({ generation: 1, loaded: true, errors: 0 }),
 *   logger,
 *   metricsPort: 9963,
 * });
 * await proxy.stop();
 * ```
 *
 * @module
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Logger } from "../k8s/logger.ts";
import { serveProbes } from "../k8s/probe-server.ts";
import type { ProbeServer } from "../k8s/probe-server.ts";
import { collectGarbage } from "../k8s/collect-garbage.ts";
import { logFlow } from "./flow-log.ts";
import { createHttpFront } from "./http-front.ts";
import type { HttpFront } from "./http-front.ts";
import type { ConnectUpstream, HttpFlowLogEntry, HttpFrontOptions, HttpJudge } from "./http-front-options.ts";
import { ProxyMetrics } from "./proxy-metrics.ts";
import { createTlsFront, logTlsFlow } from "./tls-front.ts";
import type { TlsMaterialStore } from "./tls-material-store.ts";
import { connectWithUpstreamTls, createTlsTerminator } from "./tls-termination.ts";
import { HTTP_FRONT_DEFAULTS, refusalOf } from "./http-front-options.ts";
import type { ConnectionJudge } from "./tls-front.ts";
import type { ViewMetrics } from "./proxy-metrics.ts";
import type { CountPassedBytes } from "./splice.ts";

/** An address family the proxy listens on. */
export type ProxyFamily = 4 | 6;

/** Options of {@linkcode NodeProxy.start}. */
export interface NodeProxyOptions {
  /** Makes `server` listen for `family` (the transparent listener in production). */
  listen: (server: net.Server, family: ProxyFamily) => Promise<void>;
  /** The families to listen on; both by default. */
  families?: readonly ProxyFamily[];
  connectUpstream: ConnectUpstream;
  /** Judges a request with the view in use; a throw refuses the request (403, reason logged). */
  judge: HttpJudge;
  /** Judges a connection by its first bytes (a ClientHello's server name, or bytes that are not TLS) with the view in use; a throw refuses a TLS connection. */
  judgeConnection: ConnectionJudge;
  /** The view in use, for the metrics. */
  view: () => ViewMetrics;
  logger: Logger;
  /** Port of /healthz, /readyz and /metrics (0: any free port). */
  metricsPort: number;
  /** Address of that server; every address by default. */
  metricsHost?: string;
  /** The HTTP front end's bounds. */
  front?: Partial<Omit<HttpFrontOptions, "judge" | "connectUpstream" | "flowLog">>;
  /** The certificates and CAs TLS termination uses; without it, connections rules would terminate are reset. */
  material?: TlsMaterialStore;
  /** Returns the memory native allocations freed to the system (the addon's `releaseFreeMemory`); run with each idle collection. */
  releaseNativeMemory?: () => void;
  /** How long the proxy must have been idle before it collects (see {@linkcode NodeProxy}); 60 s by default. */
  idleCollectAfterMs?: number;
}

/** How often the proxy looks whether it went idle, at most. */
const IDLE_CHECK_MS = 1000;
/** How far the RSS must have grown since the proxy last collected for an idle proxy to collect again. */
const IDLE_COLLECT_GROWTH_BYTES = 16 * 1024 * 1024;

const FLOW_MESSAGES: Record<HttpFlowLogEntry["verdict"], string> = {
  refused: "HTTP request refused",
  misdirected: "HTTP request misdirected: its host is not a server name the terminated connection was admitted for",
  malformed: "HTTP request malformed",
  audited: "HTTP request audited (would be refused)",
  "upstream-failed": "HTTP request not forwarded: upstream failed",
};

/**
 * Writes one flow-log line: what the front end reported, flattened, and
 * nothing else (never a field value of the request: they may hold secrets).
 */
export function logHttpFlow(logger: Logger, entry: HttpFlowLogEntry): void {
  logFlow(logger, "http", FLOW_MESSAGES, entry);
}

/** A running per-node proxy. */
export class NodeProxy {
  readonly #options: NodeProxyOptions;
  readonly #metrics = new ProxyMetrics();
  readonly #front: HttpFront;
  readonly #servers: net.Server[] = [];
  #probes: ProbeServer | undefined;
  #listening = false;
  /** Connections accepted and requests judged so far: the idle check's sign of traffic. */
  #activity = 0;
  #idleCheck: NodeJS.Timeout | undefined;

  private constructor(options: NodeProxyOptions) {
    this.#options = options;
    const metrics = this.#metrics;
    const countPassedBytes: CountPassedBytes = (policy, rule) => metrics.passedBytes(policy, rule);
    // Terminated connections may be re-encrypted to the pod: every upstream leg goes through this.
    const connectUpstream = connectWithUpstreamTls(options.connectUpstream);
    const terminator = options.material && createTlsTerminator({
      material: options.material,
      connectUpstream,
      serveRequests: (socket, connection, alpn) => this.#front.serveDecrypted(socket, connection, alpn),
      handshakeTimeoutMs: options.front?.headersTimeoutMs ?? HTTP_FRONT_DEFAULTS.headersTimeoutMs,
      countPassedBytes,
      report: (connection, serverName, outcome) => {
        const named = serverName === undefined ? {} : { serverName };
        if (outcome.verdict === "terminated") {
          metrics.tlsTermination("terminated");
          return;
        }
        const { verdict, ...rest } = outcome;
        metrics.tlsTermination(verdict, outcome.reason.split(":")[0]);
        logTlsFlow(options.logger, { verdict: verdict === "refused" ? "refused" : "malformed", connection, tls: true, ...named, ...rest });
      },
    });
    const tls = createTlsFront({
      ...(terminator && { terminator }),
      countPassedBytes,
      judgeConnection: (start, connection) => {
        let verdict;
        try {
          verdict = options.judgeConnection(start, connection);
        } catch (error) {
          // A TLS connection is then refused; other bytes go on to the HTTP front end, which refuses their requests.
          if (start.tls) metrics.tlsConnection("refused");
          throw error;
        }
        // Bytes that are not TLS and that rules may admit go on to the HTTP front end, which counts their requests.
        if (start.tls || !verdict.allow) metrics.tlsConnection(verdict.allow ? (verdict.audit ? "audited" : "allowed") : "refused", verdict.policy, verdict.rule);
        return verdict;
      },
      connectUpstream,
      helloTimeoutMs: options.front?.headersTimeoutMs,
      flowLog: (entry) => {
        if (entry.verdict === "malformed") metrics.tlsConnection("malformed");
        if (entry.verdict === "upstream-failed") metrics.upstreamFailed();
        logTlsFlow(options.logger, entry);
      },
    });
    this.#front = createHttpFront({
      ...options.front,
      judge: (request, connection) => {
        this.#activity++;
        let verdict;
        try {
          verdict = options.judge(request, connection);
        } catch (error) {
          metrics.request("refused");
          throw error;
        }
        metrics.request(verdict.allow ? (verdict.audit ? "audited" : "allowed") : refusalOf(verdict).verdict, verdict.policy, verdict.rule);
        return verdict;
      },
      connectUpstream,
      upgraded: () => metrics.upgraded(),
      countPassedBytes,
      flowLog: (entry) => {
        if (entry.verdict === "malformed") metrics.request("malformed");
        if (entry.verdict === "upstream-failed") metrics.upstreamFailed();
        logHttpFlow(options.logger, entry);
      },
    }, tls);
  }

  /** Starts the metrics server and the listeners; a failure stops what started and rejects. */
  static async start(options: NodeProxyOptions): Promise<NodeProxy> {
    const proxy = new NodeProxy(options);
    try {
      await proxy.#start();
    } catch (error) {
      await proxy.stop();
      throw error;
    }
    return proxy;
  }

  async #start(): Promise<void> {
    const { logger } = this.#options;
    this.#probes = await serveProbes(this.#options.metricsPort, this.#options.metricsHost, {
      ready: () => this.#listening,
      notReadyMessage: "not ready: not listening yet",
      metrics: () => this.#metrics.render(this.#options.view()),
      log: logger,
    });
    for (const family of this.#options.families ?? [4, 6]) {
      const server = net.createServer((socket) => {
        this.#activity++;
        const closed = this.#metrics.connectionOpened();
        socket.once("close", closed);
        this.#front.handleConnection(socket);
      });
      server.on("error", (error) => logger.error({ family, err: error }, "Proxy listener failed"));
      this.#servers.push(server);
      await this.#options.listen(server, family);
    }
    this.#listening = true;
    this.#collectWhenIdle();
    logger.info({ listeners: this.addresses().map((a) => `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`), metricsPort: this.metricsPort }, "Proxy started");
  }

  /**
   * Hands back what a load left behind once the proxy is idle: no connection or request for
   * `idleCollectAfterMs`, after its RSS grew by {@link IDLE_COLLECT_GROWTH_BYTES} since it last collected.
   * V8 keeps the heap pages a load's garbage filled (32-45 MiB after a run of new connections, 2026-12-07,
   * docs/l7.md): a regular collection puts the pages it empties in V8's page pool, which only a
   * memory-reducing collection empties, and V8's memory reducer never starts one in this process (it reads
   * the embedder heap's zero allocation rate as a high one). Its last-resort collection is memory-reducing
   * and unmaps them. Such a collection also lets go of the maps no live object has, which deoptimizes the
   * proxy's request code: the next load's first seconds cost up to 2.3 times the CPU per request (1.6-3.7
   * seconds of CPU in all) while it is optimized again. Hence a long idle time, not a short one.
   */
  #collectWhenIdle(): void {
    const idleAfterMs = this.#options.idleCollectAfterMs ?? 60_000;
    let seen = this.#activity;
    let idleSince = Date.now();
    let collectedAt = process.memoryUsage.rss();
    this.#idleCheck = setInterval(() => {
      const now = Date.now();
      if (this.#activity !== seen) {
        seen = this.#activity;
        idleSince = now;
        return;
      }
      if (now - idleSince < idleAfterMs || process.memoryUsage.rss() - collectedAt < IDLE_COLLECT_GROWTH_BYTES) return;
      collectGarbage(this.#options.logger, "the garbage of the last load, now idle", this.#options.releaseNativeMemory, true);
      collectedAt = process.memoryUsage.rss();
    }, Math.min(IDLE_CHECK_MS, idleAfterMs));
    this.#idleCheck.unref();
  }

  /** Where the listeners listen. */
  addresses(): AddressInfo[] {
    return this.#servers.map((server) => server.address()).filter((address): address is AddressInfo => typeof address === "object" && address !== null);
  }

  /** The port of /healthz, /readyz and /metrics. */
  get metricsPort(): number {
    return this.#probes?.port ?? 0;
  }

  /** Client connections open now. */
  get openConnections(): number {
    return this.#metrics.openConnections;
  }

  /** The metrics as /metrics serves them. */
  renderMetrics(): string {
    return this.#metrics.render(this.#options.view());
  }

  /** Stops accepting, closes every client connection (and with it its upstream), then the metrics server. */
  async stop(): Promise<void> {
    this.#listening = false;
    clearInterval(this.#idleCheck);
    const closed = this.#servers.filter((server) => server.listening).map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    this.#front.close();
    await Promise.all(closed);
    await this.#probes?.close();
    this.#options.logger.info({}, "Proxy stopped");
  }
}
