/**
 * A small set of keys held as compactly as V8 allows: `undefined` when
 * empty, the key itself when one, a `Set` from the second on. An address is
 * claimed by one pod nearly always, and a `Set` of one costs about 150
 * bytes: at 10k pods such sets held 1.5 MB of the ipcache compiler's heap
 * and as much of the agent's address claims (`bench/scale.ts`, factor 1).
 *
 * @module
 */

/** Keys: none, one, or a set of two or more. */
export type KeySet = string | Set<string> | undefined;

/**
 * `keys` with `key` added (a set given is changed and returned).
 *
 * @example
 * ```ts
 * withKey(withKey(undefined, "x/a"), "x/b"); // Set {"x/a", "x/b"}
 * ```
 */
export function withKey(keys: KeySet, key: string): KeySet {
  if (keys === undefined || keys === key) return key;
  if (typeof keys === "string") return new Set([keys, key]);
  keys.add(key);
  return keys;
}

/**
 * `keys` without `key` (a set given is changed; its last key is returned on its own).
 *
 * @example
 * ```ts
 * withoutKey(new Set(["x/a", "x/b"]), "x/b"); // "x/a"
 * ```
 */
export function withoutKey(keys: KeySet, key: string): KeySet {
  if (keys === key) return undefined;
  if (!(keys instanceof Set) || !keys.delete(key)) return keys;
  return keys.size === 1 ? (keys.values().next().value as string) : keys;
}

/** The keys, in the order they were added. */
export function keysOf(keys: KeySet): Iterable<string> {
  return keys === undefined ? [] : typeof keys === "string" ? [keys] : keys;
}
