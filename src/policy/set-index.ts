/**
 * Maps of sets (an index from a key to the values filed under it), the
 * shape the compiler's lookups by namespace take.
 *
 * @module
 */

/**
 * Files `value` under `key`, creating the key's set at its first value.
 *
 * @example
 * ```ts
 * const podsByNamespace = new Map<string, Set<string>>();
 * indexAdd(podsByNamespace, "shop", "shop/api"); // Map { "shop" => Set { "shop/api" } }
 * ```
 */
export function indexAdd<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (!set) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

/**
 * Unfiles `value` from `key`, dropping the key's set with its last value.
 *
 * @example
 * ```ts
 * indexDelete(podsByNamespace, "shop", "shop/api"); // Map {}
 * ```
 */
export function indexDelete<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set?.delete(value) && set.size === 0) index.delete(key);
}
