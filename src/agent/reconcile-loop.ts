/**
 * The agent's reconcile loop: when each step of the {@linkcode Reconciler}
 * runs. One worker drains a deduplicating queue of keys: an object's key
 * (`Kind/namespace/name`) syncs that object, the `identities` key hands
 * renumbered identity keys to the compiler, and each of them queues a single
 * `commit` key behind them, which turns everything so far into one write to
 * the datapath, and each commit a `report` key, which writes the node report
 * if it changed. A commit with more keys queued behind it waits for them (at
 * most {@linkcode MAX_COMMIT_DELAY_MS}, so a steady stream of events cannot
 * starve it); a failed step is retried with backoff, each key on its own (a
 * report the API server cannot take now never writes the maps again). Objects
 * are synced as their informer's list arrives ({@linkcode ReconcileLoop.syncEarly}),
 * while the other lists are still on their way; the first commit runs once
 * the caller starts the loop (after every informer listed, so it lands
 * behind every initial object) and is the full sync.
 *
 * @module
 */
import { WorkQueue } from "../k8s/workqueue.ts";
import type { WatchedKind } from "./cluster-watch.ts";
import { Reconciler } from "./reconciler.ts";
import type { ReconcilerOptions } from "./reconciler.ts";

/** A commit waits behind newly queued keys at most this long. */
export const MAX_COMMIT_DELAY_MS = 200;

/** The queue key that asks for a commit of everything processed before it. */
const COMMIT = "commit";
/** The queue key that hands identity keys whose number changed to the compiler. */
const IDENTITIES = "identities";
/** The queue key that writes the node report if it changed. */
const REPORT = "report";

/**
 * A node's reconcile loop.
 *
 * @example
 * ```ts
 * const loop = new ReconcileLoop({ nodeName: "n1", objects: watch, datapath, podInterface, writeReport, logger });
 * watch.start({ objectChanged: (kind, key) => loop.objectChanged(kind, key), identityObjectsChanged: (keys) => loop.identityObjectsChanged(keys) });
 * loop.syncEarly(); // objects are synced as their list arrives
 * if (await watch.waitForSync(signal)) loop.start();
 * await loop.ready; // the full sync reached the datapath
 * await loop.stop();
 * ```
 */
export class ReconcileLoop {
  /** The steps the loop runs, and what they hold. */
  readonly reconciler: Reconciler;
  /** Resolves once the first commit (the full sync) reached the datapath and the report was written. */
  readonly ready: Promise<void>;
  readonly #queue: WorkQueue<string>;
  readonly #abort = new AbortController();
  #markReady: () => void = () => {};
  #commitQueuedAt = 0;
  /** Whether {@linkcode start} was called: commits run only from then on. */
  #started = false;
  /** When the first change the next commit carries arrived (performance.now()), for its `wait` stage. */
  #firstChangeAt: number | undefined;
  #workers: Promise<void> | undefined;

  constructor(options: Omit<ReconcilerOptions, "onIdentitiesChanged" | "resync">) {
    this.#queue = new WorkQueue<string>({ name: "agent", baseDelayMs: 50, maxDelayMs: 10_000, logger: options.logger });
    this.reconciler = new Reconciler({
      ...options,
      onIdentitiesChanged: () => {
        this.#firstChangeAt ??= performance.now();
        this.#queue.add(IDENTITIES);
      },
      resync: (kind, key) => this.objectChanged(kind, key),
    });
    this.ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
  }

  /** The object of `kind` under cache key `key` changed: it is synced, then committed. */
  objectChanged(kind: WatchedKind, key: string): void {
    this.#firstChangeAt ??= performance.now();
    this.#queue.add(`${kind}/${key}`);
  }

  /** See {@linkcode Reconciler.identityObjectsChanged}. */
  identityObjectsChanged(keys: readonly string[]): void {
    this.reconciler.identityObjectsChanged(keys);
  }

  /**
   * Starts the worker before everything is listed: objects are synced as they are queued (their
   * conversion overlaps the lists still on their way), but nothing is committed until {@linkcode start}.
   */
  syncEarly(): void {
    this.#workers ??= this.#queue.runWorkers(1, (key) => this.#process(key));
  }

  /** Starts committing (and the worker, if {@linkcode syncEarly} did not), with the first commit queued behind everything queued so far. */
  start(): void {
    this.#started = true;
    this.#requestCommit();
    this.syncEarly();
  }

  /** Stops the worker after the step it is running; a report being written is abandoned. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#queue.shutdown();
    await this.#workers;
  }

  #requestCommit(): void {
    // Before start, the first commit (the full sync) is not due yet: start queues it.
    if (!this.#started) return;
    if (this.#commitQueuedAt === 0) this.#commitQueuedAt = Date.now();
    this.#queue.add(COMMIT);
  }

  async #process(key: string): Promise<void> {
    if (key === COMMIT) {
      await this.#commit();
      return;
    }
    if (key === REPORT) {
      await this.reconciler.writeReport(this.#abort.signal);
      this.#markReady();
      return;
    }
    this.#requestCommit();
    if (key === IDENTITIES) {
      this.reconciler.syncIdentities();
      return;
    }
    const slash = key.indexOf("/");
    await this.reconciler.sync(key.slice(0, slash) as WatchedKind, key.slice(slash + 1));
  }

  async #commit(): Promise<void> {
    if (this.#queue.length > 0 && Date.now() - this.#commitQueuedAt < MAX_COMMIT_DELAY_MS) {
      // More changes are queued behind this commit: fold them into it.
      this.#queue.add(COMMIT);
      return;
    }
    const drained = this.#queue.length === 0;
    this.#commitQueuedAt = 0;
    const receivedAt = this.#firstChangeAt;
    this.#firstChangeAt = undefined;
    await this.reconciler.commit({ drained, ...(receivedAt === undefined ? {} : { receivedAt }) });
    this.#queue.add(REPORT);
  }
}
