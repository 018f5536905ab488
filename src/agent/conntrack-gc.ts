/**
 * Conntrack collection: the kernel only ages conntrack entries out of the
 * LRU map under pressure, so the agent deletes expired ones on a timer. A
 * failed run is logged and the next one tries again.
 *
 * @module
 */
import type { Logger } from "../k8s/logger.ts";
import type { AgentDatapath } from "./agent-datapath.ts";

/** How often expired conntrack entries are deleted. */
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
  readonly #datapath: Pick<AgentDatapath, "gcConntrack">;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(datapath: Pick<AgentDatapath, "gcConntrack">, log: Logger) {
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

  /** One run: deletes expired entries and returns how many; a failure is logged as a warning and counts 0. */
  collect(): number {
    try {
      const deleted = this.#datapath.gcConntrack();
      if (deleted > 0) this.#log.debug({ deleted }, "Collected expired conntrack entries");
      return deleted;
    } catch (e) {
      this.#log.warn({ err: e }, "Cannot collect expired conntrack entries");
      return 0;
    }
  }
}
