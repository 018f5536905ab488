/**
 * The informer: keeps a {@linkcode Cache} of one resource in step with the
 * API server and tells handlers what changed. It lists (in pages), then
 * watches from the list's resourceVersion with bookmarks; it restarts a
 * watch the server ends from the last resourceVersion it saw, re-lists on
 * 410 Gone and reports the difference as adds, updates and deletes, waits
 * as long as a 429 answer says (the server's storage of a resource is being
 * rebuilt after its CRD changed: every watcher hears it at once, and a
 * growing backoff would leave them all blind well after the storage is
 * back), and retries every other failure with jittered exponential backoff.
 * It only stops when told to.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { Backoff, sleep } from "./backoff.ts";
import type { BackoffOptions } from "./backoff.ts";
import { Cache, objectKey } from "./cache.ts";
import type { IndexFunction, ReplaceDelta } from "./cache.ts";
import type { KubeClient, Query } from "./client.ts";
import { isGone, retryAfterMs } from "./errors.ts";
import { jsonLogger } from "./logger.ts";
import type { LogFields, Logger } from "./logger.ts";
import { apiVersionOf, resourceName, resourcePath } from "./resource.ts";
import type { ResourceRef } from "./resource.ts";

/**
 * Callbacks for changes. They run synchronously in the informer's loop, so
 * they should be quick (typically: put a key on a {@linkcode WorkQueue}).
 * A handler that throws is logged and does not stop the informer.
 */
export interface InformerHandlers<T> {
  /** An object appeared (or was present at the first list). */
  onAdd?(obj: T): void;
  /** An object changed; on a resync, `old` and `current` are the same instance. */
  onUpdate?(old: T, current: T): void;
  /** An object is gone; `obj` is its last known state. */
  onDelete?(obj: T): void;
}

/**
 * Handlers calling `fn` on every add, update and delete.
 *
 * @example
 * ```ts
 * informer.addHandlers(onAny((obj) => queue.add(objectKey(obj))));
 * ```
 */
export function onAny<T>(fn: (obj: T) => void): InformerHandlers<T> {
  return { onAdd: fn, onUpdate: (_, obj) => fn(obj), onDelete: fn };
}

/** Options of an {@linkcode Informer}. */
export interface InformerOptions<T> {
  /** The API server to talk to. */
  client: KubeClient;
  /** What to watch. */
  resource: ResourceRef;
  /** Only this namespace; all namespaces if absent. Ignored for cluster-scoped resources. */
  namespace?: string;
  /** A label selector, e.g. `"app=web,tier!=db"`. */
  labelSelector?: string;
  /** A field selector, e.g. `"spec.nodeName=node-1"`. */
  fieldSelector?: string;
  /** Objects per list page; 500 by default. */
  pageSize?: number;
  /** Every so often, call `onUpdate(obj, obj)` for every cached object; off (0) by default. */
  resyncPeriodMs?: number;
  /** How long the server keeps one watch open; random in [300, 600) s by default, like client-go. */
  watchTimeoutSeconds?: number;
  /** Indexes of the cache besides the namespace one. */
  indexers?: Record<string, IndexFunction<T>>;
  /** Trims or reshapes each object before it is cached (after `metadata.managedFields` is dropped). */
  transform?: (obj: T) => T;
  /** Retry delays after failures; 500 ms doubling to 30 s by default. */
  backoff?: BackoffOptions;
  /** Where to log; JSON lines on stderr at level info by default. */
  logger?: Logger;
}

interface ListPage<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/** A watch that ends sooner than this without any event counts as a failure, so a server that keeps closing watches cannot make us spin. */
const MIN_HEALTHY_WATCH_MS = 1_000;

/**
 * A list+watch loop over one resource with an indexed cache.
 *
 * @example
 * ```ts
 * const pods = new Informer<V1Pod>({ client, resource: Resources.pods, indexers: { [NODE_NAME_INDEX]: podNodeNameIndex } });
 * pods.addHandlers({ onAdd: (p) => queue.add(objectKey(p)), onUpdate: (_, p) => queue.add(objectKey(p)), onDelete: (p) => queue.add(objectKey(p)) });
 * pods.start();
 * await pods.waitForSync();
 * pods.cache.byIndex(NODE_NAME_INDEX, "node-1");
 * await pods.stop();
 * ```
 */
export class Informer<T extends KubernetesObject> {
  /** The objects as last seen; filled by the informer, read by everyone else. */
  readonly cache: Cache<T>;
  readonly #options: InformerOptions<T>;
  readonly #path: string;
  readonly #log: Logger;
  readonly #logFields: LogFields;
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #abort = new AbortController();
  readonly #syncWaiters = new Set<() => void>();
  #resourceVersion = "";
  #synced = false;
  #running: Promise<void> | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;

  /** An informer that does nothing until {@linkcode start}. */
  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.cache = new Cache<T>(options.indexers ?? {});
    const namespace = options.resource.namespaced ? options.namespace : undefined;
    this.#path = resourcePath(options.resource, { namespace });
    this.#log = options.logger ?? jsonLogger();
    this.#logFields = { resource: resourceName(options.resource), ...(namespace ? { namespace } : {}) };
  }

  /**
   * Adds handlers; objects already cached are replayed to `onAdd` at once.
   * Returns a function that removes them again.
   */
  addHandlers(handlers: InformerHandlers<T>): () => void {
    this.#handlers.add(handlers);
    if (handlers.onAdd) {
      for (const obj of this.cache.list()) this.#call(handlers, "onAdd", obj);
    }
    return () => this.#handlers.delete(handlers);
  }

  /** Starts listing and watching in the background. Throws if started before. */
  start(): void {
    if (this.#running) throw new Error(`Cannot start informer of "${this.#logFields["resource"]}": it was started before`);
    this.#running = this.#run();
    const period = this.#options.resyncPeriodMs ?? 0;
    if (period > 0) this.#resyncTimer = setInterval(() => this.#resync(), period);
  }

  /** Whether the first list has reached the cache and the handlers. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** The resourceVersion the next watch starts from (the last one seen, bookmarks included). */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Resolves `true` once synced, or `false` if the informer stops or `signal` fires first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    if (this.#abort.signal.aborted || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (value: boolean): void => {
        this.#syncWaiters.delete(onSync);
        this.#abort.signal.removeEventListener("abort", onStop);
        signal?.removeEventListener("abort", onStop);
        resolve(value);
      };
      const onSync = (): void => finish(true);
      const onStop = (): void => finish(false);
      this.#syncWaiters.add(onSync);
      this.#abort.signal.addEventListener("abort", onStop, { once: true });
      signal?.addEventListener("abort", onStop, { once: true });
    });
  }

  /** Stops watching and resyncing; resolves once the loop has ended. The cache keeps its last contents. */
  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#resyncTimer) clearInterval(this.#resyncTimer);
    await this.#running;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = new Backoff(this.#options.backoff);
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.#list();
          needList = false;
          backoff.reset();
        }
        const started = Date.now();
        const events = await this.#watch();
        if (signal.aborted) break;
        if (events === 0 && Date.now() - started < MIN_HEALTHY_WATCH_MS) {
          const wait = backoff.next();
          this.#log.warn({ ...this.#logFields, retryInMs: wait }, "Watch ended at once, restarting after a delay");
          await sleep(wait, signal);
        } else {
          backoff.reset();
          this.#log.debug({ ...this.#logFields, resourceVersion: this.#resourceVersion, events }, "Watch ended, restarting from the last resourceVersion");
        }
      } catch (e) {
        if (signal.aborted) break;
        if (isGone(e)) {
          needList = true;
          this.#log.info({ ...this.#logFields, resourceVersion: this.#resourceVersion, err: e }, "ResourceVersion expired, re-listing");
          if (backoff.attempt > 0) await sleep(backoff.next(), signal);
          continue;
        }
        const asked = retryAfterMs(e);
        if (asked !== undefined) {
          this.#log.info({ ...this.#logFields, err: e, retryInMs: asked, listing: needList }, "The API server asked to retry later");
          await sleep(asked, signal);
          continue;
        }
        const wait = backoff.next();
        this.#log.warn({ ...this.#logFields, err: e, retryInMs: wait, listing: needList }, needList ? "List failed, retrying" : "Watch failed, retrying");
        await sleep(wait, signal);
      }
    }
  }

  async #list(): Promise<void> {
    const started = performance.now();
    const items: T[] = [];
    let resourceVersion = "";
    let continueToken: string | undefined;
    do {
      const page = await this.#options.client.request<ListPage<T>>("GET", this.#path, {
        query: { ...this.#selectors(), limit: this.#options.pageSize ?? 500, continue: continueToken },
        signal: this.#abort.signal,
        timeoutMs: 60_000,
      });
      // Every page of a paged list is served from the first page's snapshot.
      if (resourceVersion === "") resourceVersion = page.metadata?.resourceVersion ?? "";
      for (const item of page.items ?? []) items.push(this.#prepare(item));
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken !== undefined && !this.#abort.signal.aborted);
    if (this.#abort.signal.aborted) return;
    const delta = this.cache.replace(items);
    this.#resourceVersion = resourceVersion;
    this.#dispatchDelta(delta);
    this.#log.info({ ...this.#logFields, resourceVersion, items: items.length, ms: Math.round(performance.now() - started) }, "Listed");
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of [...this.#syncWaiters]) waiter();
    }
  }

  /** Watches until the stream ends; returns the number of events seen. */
  async #watch(): Promise<number> {
    const timeoutSeconds = this.#options.watchTimeoutSeconds ?? Math.floor(300 * (1 + Math.random()));
    const query: Query = {
      ...this.#selectors(),
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
    };
    let events = 0;
    const stream = this.#options.client.watch<T>(this.#path, query, {
      signal: this.#abort.signal,
      idleTimeoutMs: (timeoutSeconds + 60) * 1000,
    });
    for await (const event of stream) {
      events++;
      const resourceVersion = event.object.metadata?.resourceVersion;
      if (event.type === "BOOKMARK") {
        if (resourceVersion) this.#resourceVersion = resourceVersion;
        continue;
      }
      const obj = this.#prepare(event.object);
      const key = objectKey(obj);
      if (event.type === "DELETED") {
        this.cache.delete(key);
        this.#dispatch("onDelete", obj);
      } else {
        const old = this.cache.upsert(obj);
        if (old) this.#dispatch("onUpdate", old, obj);
        else this.#dispatch("onAdd", obj);
      }
      if (resourceVersion) this.#resourceVersion = resourceVersion;
    }
    return events;
  }

  #selectors(): Query {
    return { labelSelector: this.#options.labelSelector, fieldSelector: this.#options.fieldSelector };
  }

  #prepare(obj: T): T {
    // List items carry no apiVersion/kind; watch events do. Make them alike.
    obj.apiVersion ??= apiVersionOf(this.#options.resource);
    obj.kind ??= this.#options.resource.kind;
    if (obj.metadata) delete obj.metadata.managedFields;
    return this.#options.transform ? this.#options.transform(obj) : obj;
  }

  #resync(): void {
    if (!this.#synced) return;
    for (const obj of this.cache.list()) this.#dispatch("onUpdate", obj, obj);
  }

  #dispatchDelta(delta: ReplaceDelta<T>): void {
    for (const obj of delta.added) this.#dispatch("onAdd", obj);
    for (const { old, current } of delta.updated) this.#dispatch("onUpdate", old, current);
    for (const obj of delta.deleted) this.#dispatch("onDelete", obj);
  }

  #dispatch(which: "onAdd" | "onDelete", obj: T): void;
  #dispatch(which: "onUpdate", old: T, current: T): void;
  #dispatch(which: keyof InformerHandlers<T>, a: T, b?: T): void {
    for (const handlers of this.#handlers) this.#call(handlers, which, a, b);
  }

  #call(handlers: InformerHandlers<T>, which: keyof InformerHandlers<T>, a: T, b?: T): void {
    try {
      if (which === "onUpdate") handlers.onUpdate?.(a, b as T);
      else handlers[which]?.(a);
    } catch (e) {
      this.#log.error({ ...this.#logFields, handler: which, object: objectKey(b ?? a), err: e }, "Informer handler threw");
    }
  }
}
