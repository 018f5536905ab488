/**
 * Conntrack collection: the kernel only ages conntrack entries out of the
 * LRU map under pressure, so the agent deletes expired ones on a timer. Each
 * run then recounts the connections of every source of a rule with TCP
 * connection limits from the counted conntrack entries alive, and corrects
 * the kernel's counts: a counted flow whose entry expired or was evicted
 * never gave its connection back, and this is where it does. A failed run
 * is logged and the next one tries again.
 *
 * @module
 */
import type { Logger } from "../k8s/logger.ts";
import type { TcpSourceRecount } from "../datapath/index.ts";
import type { AgentDatapath } from "./agent-datapath.ts";

/** How often expired conntrack entries are deleted (and connection counts recounted). */
export const CONNTRACK_GC_INTERVAL_MS = 30_000;

/**
 * Deletes expired conntrack entries every {@linkcode CONNTRACK_GC_INTERVAL_MS}
 * between {@linkcode start} and {@linkcode stop}.
 *
 * @example
 * ```ts
 * const gc = new ConntrackCollector(datapath, log);
 * gc.start();
 * // on shutdown
 * gc.stop();
 * ```
 */
export class ConntrackCollector {
  readonly #datapath: Pick<AgentDatapath, "gcConntrack" | "recountTcpSources">;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(datapath: Pick<AgentDatapath, "gcConntrack" | "recountTcpSources">, log: Logger) {
    this.#datapath = datapath;
    this.#log = log;
  }

  /** Starts collecting on the timer; a second start is ignored. */
  start(): void {
    this.#timer ??= setInterval(() => this.collect(), CONNTRACK_GC_INTERVAL_MS);
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One run: deletes expired entries and returns how many, then recounts
   * connection limits' sources (after the deletion, so the expired entries'
   * connections are given back). A failure of either is logged as a
   * warning (a failed deletion counts 0) and does not stop the other.
   */
  collect(): number {
    let deleted = 0;
    try {
      deleted = this.#datapath.gcConntrack();
      if (deleted > 0) this.#log.debug({ deleted }, "Collected expired conntrack entries");
    } catch (e) {
      this.#log.warn({ err: e }, "Cannot collect expired conntrack entries");
    }
    this.recount();
    return deleted;
  }

  /** Recounts the sources of limited rules; a failure is logged as a warning and counts nothing. */
  recount(): TcpSourceRecount {
    try {
      const recount = this.#datapath.recountTcpSources();
      if (recount.corrected > 0 || recount.removed > 0) this.#log.debug({ ...recount }, "Recounted TCP connection limits' sources");
      return recount;
    } catch (e) {
      this.#log.warn({ err: e }, "Cannot recount TCP connection limits' sources");
      return { corrected: 0, removed: 0 };
    }
  }
}
