/**
 * The proxy's metrics: requests and TLS connections by verdict and by the
 * policy and rule behind it, the bytes of connections passed on after their
 * verdict, connections, upgrades to WebSocket, upstream failures, and the
 * HTTP view in use, as Prometheus text. No label takes a value from the
 * traffic (an address, a server name): the series are bounded by the rules.
 *
 * @module
 */
import { renderPrometheus } from "../k8s/prometheus.ts";
import type { MetricFamily } from "../k8s/prometheus.ts";
import type { PassedBytes, PassedBytesCounter } from "./splice.ts";

/**
 * What a request came to: forwarded, refused (403), misdirected (421: inside a terminated connection, for a host
 * the rules that terminated it do not name), forwarded under audit, or malformed (400, or closed unanswered); or
 * a TLS connection: passed on, reset by the rules, passed on under audit, or reset as malformed.
 */
export type RequestVerdict = "allowed" | "refused" | "misdirected" | "audited" | "malformed";

/** Counts by a first label (`verdict`, `direction`), policy and rule. */
class VerdictCounts {
  readonly #label: string;
  /** The first label's value, then policy, then rule: counted on every request, so no key is built. */
  readonly #counts = new Map<string, Map<string, Map<string, { count: number }>>>();

  constructor(label = "verdict") {
    this.#label = label;
  }

  add(value: string, policy: string, rule: string, amount = 1): void {
    let byPolicy = this.#counts.get(value);
    if (byPolicy === undefined) this.#counts.set(value, (byPolicy = new Map()));
    let byRule = byPolicy.get(policy);
    if (byRule === undefined) byPolicy.set(policy, (byRule = new Map()));
    const entry = byRule.get(rule);
    if (entry) entry.count += amount;
    else byRule.set(rule, { count: amount });
  }

  samples(): { labels: Record<string, string>; value: number }[] {
    const samples: { labels: Record<string, string>; value: number }[] = [];
    for (const [value, byPolicy] of this.#counts) {
      for (const [policy, byRule] of byPolicy) {
        for (const [rule, { count }] of byRule) samples.push({ labels: { [this.#label]: value, policy, rule }, value: count });
      }
    }
    return samples;
  }
}

/** An open connection's bytes: how to read its totals, and how much of them is counted. */
interface OpenPassedBytes {
  read: () => PassedBytes;
  counted: PassedBytes;
  policy: string;
  rule: string;
}

/**
 * Bytes of connections passed on, by direction, policy and rule, counted while they are open: each scrape
 * adds what every open connection passed since it was last counted, and its end adds the rest. A connection's
 * count only ever takes its totals less what was counted of it, so no byte counts twice or goes missing,
 * however its end falls between scrapes.
 */
class PassedBytesCounts {
  readonly #counts = new VerdictCounts("direction");
  readonly #open = new Set<OpenPassedBytes>();

  counter(policy: string, rule: string): PassedBytesCounter {
    // Until it is joined, it has passed nothing more than is counted.
    const open: OpenPassedBytes = { read: () => open.counted, counted: { toUpstream: 0, toClient: 0 }, policy, rule };
    return {
      joined: (read) => {
        open.read = read;
        this.#open.add(open);
      },
      ended: (bytes) => {
        this.#open.delete(open);
        this.#count(open, bytes);
      },
    };
  }

  samples(): { labels: Record<string, string>; value: number }[] {
    for (const open of this.#open) this.#count(open, open.read());
    return this.#counts.samples();
  }

  #count(open: OpenPassedBytes, totals: PassedBytes): void {
    const { counted, policy, rule } = open;
    this.#counts.add("to-upstream", policy, rule, totals.toUpstream - counted.toUpstream);
    this.#counts.add("to-client", policy, rule, totals.toClient - counted.toClient);
    open.counted = totals;
  }
}

/** The HTTP view the proxy judges with, as the metrics show it. */
export interface ViewMetrics {
  /** Views loaded since start (a file gone counts too). */
  generation: number;
  /** Whether a view is loaded (0: the file is missing, every request refused). */
  loaded: boolean;
  /** Versions of the file that could not be loaded. */
  errors: number;
}

/**
 * Counters of one proxy process.
 *
 * @example
 * ```ts
 * const metrics = new ProxyMetrics();
 * metrics.request("refused", "shop/api-http", "ingress[0]");
 * metrics.render({ generation: 1, loaded: true, errors: 0 });
 * ```
 */
export class ProxyMetrics {
  readonly #requests = new VerdictCounts();
  readonly #tlsConnections = new VerdictCounts();
  readonly #passedBytes = new PassedBytesCounts();
  readonly #terminations = new Map<string, number>();
  #open = 0;
  #accepted = 0;
  #upstreamFailures = 0;
  #upgrades = 0;

  /** Counts one request's verdict (policy and rule empty when none was named). */
  request(verdict: RequestVerdict, policy = "", rule = ""): void {
    this.#requests.add(verdict, policy, rule);
  }

  /** Counts one connection's verdict at the TLS front end (policy and rule empty when none was named). */
  tlsConnection(verdict: RequestVerdict, policy = "", rule = ""): void {
    this.#tlsConnections.add(verdict, policy, rule);
  }

  /**
   * Counts one connection the proxy was to terminate: `terminated`, or `refused` with the reason (a client
   * certificate's failure, `material-missing`), or `failed` (`handshake-failed`, `upstream-failed`).
   */
  tlsTermination(result: "terminated" | "refused" | "failed", reason = ""): void {
    const key = JSON.stringify([result, reason]);
    this.#terminations.set(key, (this.#terminations.get(key) ?? 0) + 1);
  }

  /** The counter of the bytes one connection passes on after its verdict, each way, under the policy and rule that admitted it. */
  passedBytes(policy = "", rule = ""): PassedBytesCounter {
    return this.#passedBytes.counter(policy, rule);
  }

  /** Counts an accepted client connection; the returned function counts its close (once). */
  connectionOpened(): () => void {
    this.#open++;
    this.#accepted++;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      this.#open--;
    };
  }

  /** Counts a request answered 502 or a TLS connection reset: its upstream could not be reached or failed before answering. */
  upstreamFailed(): void {
    this.#upstreamFailures++;
  }

  /** Counts a client connection switched to WebSocket after its judged upgrade request. */
  upgraded(): void {
    this.#upgrades++;
  }

  /** Client connections open now. */
  get openConnections(): number {
    return this.#open;
  }

  /** The metric families, now. */
  families(view: ViewMetrics): MetricFamily[] {
    return [
      {
        name: "palisade_proxy_requests_total",
        type: "counter",
        help: "HTTP requests judged by the proxy, by verdict (allowed, refused, misdirected, audited, malformed) and the policy and rule behind it.",
        samples: this.#requests.samples(),
      },
      {
        name: "palisade_proxy_tls_connections_total",
        type: "counter",
        help: "Connections judged by their ClientHello's server name (or refused for not being TLS where only tls rules admit them), by verdict (allowed, refused, audited, malformed) and the policy and rule behind it.",
        samples: this.#tlsConnections.samples(),
      },
      {
        name: "palisade_proxy_tls_terminations_total",
        type: "counter",
        help: "TLS connections the proxy was to terminate, by result (terminated, refused, failed) and reason (no-client-certificate, untrusted-client-certificate, expired-client-certificate, san-not-allowed, material-missing, handshake-failed, upstream-failed).",
        samples: [...this.#terminations].map(([key, value]) => {
          const [result = "", reason = ""] = JSON.parse(key) as string[];
          return { labels: { result, reason }, value };
        }),
      },
      {
        name: "palisade_proxy_passed_bytes_total",
        type: "counter",
        help: "Bytes of the connections the proxy passed on after judging them, counted at each scrape while they are open and at their end: TLS connections admitted by their server name (the TLS bytes as they are, ClientHello included), terminated connections whose stream no rule judges (the decrypted bytes) and WebSockets after their judged upgrade (the bytes after the 101), by direction (to-upstream, to-client) and the policy and rule that admitted them.",
        samples: this.#passedBytes.samples(),
      },
      {
        name: "palisade_proxy_upstream_failures_total",
        type: "counter",
        help: "Allowed requests answered 502 and allowed TLS connections reset: the upstream could not be reached or failed before answering.",
        samples: [{ value: this.#upstreamFailures }],
      },
      {
        name: "palisade_proxy_upgrades_total",
        type: "counter",
        help: "Client connections switched to WebSocket: an allowed upgrade request answered 101 by the server, its bytes spliced from then on.",
        samples: [{ value: this.#upgrades }],
      },
      { name: "palisade_proxy_connections", type: "gauge", help: "Client connections open.", samples: [{ value: this.#open }] },
      { name: "palisade_proxy_connections_total", type: "counter", help: "Client connections accepted.", samples: [{ value: this.#accepted }] },
      { name: "palisade_proxy_view_generation", type: "gauge", help: "HTTP views loaded since the proxy started (a missing file counts as one).", samples: [{ value: view.generation }] },
      { name: "palisade_proxy_view_loaded", type: "gauge", help: "Whether an HTTP view is loaded (0: its file is missing and every request is refused).", samples: [{ value: view.loaded ? 1 : 0 }] },
      { name: "palisade_proxy_view_errors_total", type: "counter", help: "Versions of the HTTP view file that could not be loaded (the previous view was kept).", samples: [{ value: view.errors }] },
      { name: "process_resident_memory_bytes", type: "gauge", help: "Resident memory of the proxy process.", samples: [{ value: process.memoryUsage.rss() }] },
    ];
  }

  /** The metrics as Prometheus text. */
  render(view: ViewMetrics): string {
    return renderPrometheus(this.families(view));
  }
}
