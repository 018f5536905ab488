/**
 * An indexed in-memory store of Kubernetes objects keyed by
 * `namespace/name` (or `name` when cluster-scoped), as an informer fills
 * it, with the indexes its user asks for: functions from an object to the
 * index values it files under.
 *
 * @module
 */
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";

/** Maps an object to the values it is filed under in one index (none, one or several). */
export type IndexFunction<T> = (obj: T) => readonly string[];

/** Name under which to register {@linkcode namespaceIndex}. */
export const NAMESPACE_INDEX = "namespace";

/**
 * Files an object under `metadata.namespace` (`""` when cluster-scoped). Not
 * kept unless asked for: the agent never reads it, and its sets of keys cost
 * 0.8 MB over the scale world's 21k namespaces, pods and policies
 * (`bench/scale.ts`, factor 1).
 */
export const namespaceIndex: IndexFunction<KubernetesObject> = (obj) => [obj.metadata?.namespace ?? ""];

/** Name under which to register {@linkcode podNodeNameIndex}. */
export const NODE_NAME_INDEX = "nodeName";

/** Files a pod under `spec.nodeName`; unscheduled pods are filed nowhere. */
export const podNodeNameIndex: IndexFunction<V1Pod> = (pod) => (pod.spec?.nodeName ? [pod.spec.nodeName] : []);

/**
 * The cache key of an object: `namespace/name`, or `name` for cluster-scoped
 * objects. {@linkcode parseObjectKey} reads it back.
 *
 * @example
 * ```ts
 * objectKey({ metadata: { namespace: "x", name: "a" } }); // "x/a"
 * objectKey({ metadata: { name: "node-1" } });            // "node-1"
 * ```
 */
export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

/**
 * The namespace and name of a key made by {@linkcode objectKey}: the
 * namespace is `""` for a cluster-scoped object's key (one without `/`).
 * Names hold no `/`, so the first one ends the namespace; a key with a
 * second `/` yields a name containing it, which callers checking user input
 * refuse.
 *
 * @example
 * ```ts
 * parseObjectKey("x/a");    // { namespace: "x", name: "a" }
 * parseObjectKey("node-1"); // { namespace: "", name: "node-1" }
 * ```
 */
export function parseObjectKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return slash < 0 ? { namespace: "", name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** What {@linkcode Cache.replace} changed, as the informer reports it to handlers. */
export interface ReplaceDelta<T> {
  /** Objects that were not in the cache. */
  readonly added: T[];
  /** Pairs of old and new state for objects whose resourceVersion changed. */
  readonly updated: { readonly old: T; readonly current: T }[];
  /** Last known state of objects that are gone. */
  readonly deleted: T[];
}

/**
 * Objects by key, with indexes kept in step on every write. Stored objects
 * are shared with every reader: treat them as read-only.
 *
 * @example
 * ```ts
 * const pods = new Cache<V1Pod>({ [NODE_NAME_INDEX]: podNodeNameIndex, [NAMESPACE_INDEX]: namespaceIndex });
 * pods.upsert(pod);
 * pods.byIndex(NODE_NAME_INDEX, "node-1"); // pods scheduled on node-1
 * pods.byIndex(NAMESPACE_INDEX, "x");      // pods in namespace x
 * ```
 */
export class Cache<T extends KubernetesObject> {
  readonly #items = new Map<string, T>();
  readonly #indexers = new Map<string, IndexFunction<T>>();
  readonly #indexes = new Map<string, Map<string, Set<string>>>();

  /** An empty cache with the indexes `indexers`. */
  constructor(indexers: Record<string, IndexFunction<T>> = {}) {
    for (const [name, fn] of Object.entries(indexers)) this.addIndex(name, fn);
  }

  /** Registers an index and files every object already cached under it. Throws if the name is taken. */
  addIndex(name: string, fn: IndexFunction<T>): void {
    if (this.#indexers.has(name)) throw new Error(`Cannot add index "${name}": an index of that name exists`);
    this.#indexers.set(name, fn);
    for (const [key, obj] of this.#items) this.#file(name, fn, key, obj);
  }

  /** Number of cached objects. */
  get size(): number {
    return this.#items.size;
  }

  /** The object at `key` (see {@linkcode objectKey}). */
  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  /** The object named `name` in `namespace` (`undefined` namespace for cluster-scoped objects). */
  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Every cached object, in insertion order. */
  list(): T[] {
    return [...this.#items.values()];
  }

  /** Every key. */
  keys(): string[] {
    return [...this.#items.keys()];
  }

  /** Objects filed under `value` in index `name`. Throws if there is no such index. */
  byIndex(name: string, value: string): T[] {
    const keys = this.#index(name).get(value);
    if (!keys) return [];
    return [...keys].map((key) => this.#items.get(key) as T);
  }

  /** The values of index `name` that have at least one object. */
  indexValues(name: string): string[] {
    return [...this.#index(name).keys()];
  }

  /** Stores `obj` under its key and returns the object it replaced, if any. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    if (old) this.#unfileAll(key, old);
    this.#items.set(key, obj);
    for (const [name, fn] of this.#indexers) this.#file(name, fn, key, obj);
    return old;
  }

  /** Removes the object at `key` and returns it, if it was there. */
  delete(key: string): T | undefined {
    const old = this.#items.get(key);
    if (!old) return undefined;
    this.#unfileAll(key, old);
    this.#items.delete(key);
    return old;
  }

  /**
   * Makes the cache hold exactly `objs` and returns the difference: what
   * was added, what changed resourceVersion, what disappeared. Objects whose
   * resourceVersion is unchanged keep their cached instance.
   */
  replace(objs: readonly T[]): ReplaceDelta<T> {
    const delta: ReplaceDelta<T> = { added: [], updated: [], deleted: [] };
    const seen = new Set<string>();
    for (const obj of objs) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.#items.get(key);
      if (!old) {
        this.upsert(obj);
        delta.added.push(obj);
      } else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
        this.upsert(obj);
        delta.updated.push({ old, current: obj });
      }
    }
    for (const key of [...this.#items.keys()]) {
      if (!seen.has(key)) delta.deleted.push(this.delete(key) as T);
    }
    return delta;
  }

  #index(name: string): Map<string, Set<string>> {
    if (!this.#indexers.has(name)) throw new Error(`Cannot query index "${name}": no index of that name`);
    let index = this.#indexes.get(name);
    if (!index) {
      index = new Map();
      this.#indexes.set(name, index);
    }
    return index;
  }

  #file(name: string, fn: IndexFunction<T>, key: string, obj: T): void {
    const index = this.#index(name);
    for (const value of fn(obj)) {
      let keys = index.get(value);
      if (!keys) {
        keys = new Set();
        index.set(value, keys);
      }
      keys.add(key);
    }
  }

  #unfileAll(key: string, obj: T): void {
    for (const [name, fn] of this.#indexers) {
      const index = this.#index(name);
      for (const value of fn(obj)) {
        const keys = index.get(value);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(value);
      }
    }
  }
}
