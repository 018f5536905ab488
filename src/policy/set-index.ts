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
