/**
 * A deduplicating work queue with per-key rate-limited retries, in the
 * manner of client-go's workqueue: a key added several times before a
 * worker takes it is processed once; a key added while it is being
 * processed is processed again once the current run is done, never by two
 * workers at the same time.
 *
 * @module
 */
import { jsonLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";

/** Options of a {@linkcode WorkQueue}. */
export interface WorkQueueOptions {
  /** Name for logs. */
  name?: string;
  /** Delay before a key's first retry; 5 ms by default. Each further failure doubles it. */
  baseDelayMs?: number;
  /** Longest retry delay; 30 s by default. */
  maxDelayMs?: number;
  /** Where {@linkcode WorkQueue.runWorkers} logs failures; JSON lines on stderr by default. */
  logger?: Logger;
}

/**
 * A queue of keys for workers. Each key taken with {@linkcode get} must be
 * handed back with {@linkcode done}; {@linkcode runWorkers} does both.
 *
 * @example
 * ```ts
 * const queue = new WorkQueue<string>({ name: "policies" });
 * informer.addHandlers({ onAdd: (p) => queue.add(objectKey(p)) });
 * const workers = queue.runWorkers(2, async (key) => reconcile(key)); // failures retry with backoff
 * // later
 * queue.shutdown();
 * await workers;
 * ```
 */
export class WorkQueue<K> {
  readonly #name: string;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #log: Logger;
  readonly #queue: K[] = [];
  /** Keys waiting to be processed: in #queue, or processing and due again after. */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #waiters: ((key: K | undefined) => void)[] = [];
  readonly #delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<K, number>();
  readonly #idleWaiters: (() => void)[] = [];
  #shuttingDown = false;

  /** An empty queue. */
  constructor(options: WorkQueueOptions = {}) {
    this.#name = options.name ?? "workqueue";
    this.#baseDelayMs = options.baseDelayMs ?? 5;
    this.#maxDelayMs = options.maxDelayMs ?? 30_000;
    this.#log = options.logger ?? jsonLogger();
  }

  /** Keys waiting for a worker (not counting those being processed or delayed). */
  get length(): number {
    return this.#queue.length;
  }

  /** Whether {@linkcode shutdown} was called. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Queues `key` unless it is already waiting; ignored after shutdown. */
  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      waiter(key);
    } else {
      this.#queue.push(key);
    }
  }

  /** Queues `key` after `delayMs`; if it is already due sooner, the sooner time stands. */
  addAfter(key: K, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { at, timer });
  }

  /** Queues `key` after its backoff delay ({@linkcode retryDelay}) and counts one more failure for it. */
  addRateLimited(key: K): void {
    const delay = this.retryDelay(key);
    this.#failures.set(key, (this.#failures.get(key) ?? 0) + 1);
    this.addAfter(key, delay);
  }

  /** The delay the next {@linkcode addRateLimited} of `key` would wait: base · 2^failures, capped. */
  retryDelay(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    return Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** failures);
  }

  /** How many times `key` was retried since its last {@linkcode forget}. */
  numRequeues(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Clears `key`'s failure count, after it was processed successfully or given up on. */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  /**
   * The next key, marked as processing, waiting for one if need be;
   * `undefined` once the queue is shut down. Call {@linkcode done} after.
   */
  get(): Promise<K | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ends processing of `key`; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
    if (this.#processing.size === 0) {
      for (const waiter of this.#idleWaiters.splice(0)) waiter();
    }
  }

  /**
   * Stops the queue: adds are ignored, delayed keys are dropped, waiting
   * {@linkcode get} calls resolve `undefined`. Keys already queued are still
   * handed out, so workers drain them before they stop.
   */
  shutdown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  /** Resolves when no key is being processed. */
  idle(): Promise<void> {
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Runs `count` workers calling `handler` for each key until shutdown and
   * resolves when all have stopped. A handler that resolves makes the queue
   * forget the key's failures; one that throws is logged and the key is
   * retried after its backoff delay.
   */
  async runWorkers(count: number, handler: (key: K) => Promise<void>): Promise<void> {
    const worker = async (): Promise<void> => {
      for (let key = await this.get(); key !== undefined; key = await this.get()) {
        try {
          await handler(key);
          this.forget(key);
        } catch (e) {
          const retryInMs = this.retryDelay(key);
          this.#log.warn({ queue: this.#name, key: String(key), err: e, retryInMs, failures: this.numRequeues(key) + 1 }, "Work item failed, retrying");
          this.addRateLimited(key);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: count }, worker));
  }
}
