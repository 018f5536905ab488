/**
 * Dense numbers for keys: each key held has a small integer of its own, a
 * number freed when its key goes is the next one handed out, so every
 * number held stays below the most keys ever held at once. What a key holds
 * can then live in typed arrays indexed by its number (struct of arrays),
 * not in an object per key: the ipcache compiler's 100k policy prefixes.
 *
 * @module
 */

/**
 * Keys and their dense numbers.
 *
 * @example
 * ```ts
 * const numbers = new DenseNumbers<string>();
 * numbers.number("10.0.0.0/8"); // 0
 * numbers.number("10.1.0.0/16"); // 1
 * numbers.delete("10.0.0.0/8");
 * numbers.number("192.168.0.0/16"); // 0, the number freed
 * numbers.capacity; // 2: arrays by number need two slots
 * ```
 */
export class DenseNumbers<K> {
  readonly #numbers = new Map<K, number>();
  /** Numbers freed and not handed out again: the last freed goes first. */
  readonly #free: number[] = [];
  #capacity = 0;

  /** The number of `key`, if it has one. */
  get(key: K): number | undefined {
    return this.#numbers.get(key);
  }

  /** The number of `key`, numbering it if it has none: a freed number if any, else the next past every number made. */
  number(key: K): number {
    const held = this.#numbers.get(key);
    if (held !== undefined) return held;
    const fresh = this.#free.pop() ?? this.#capacity++;
    this.#numbers.set(key, fresh);
    return fresh;
  }

  /** Frees the number of `key` (no-op if it has none). */
  delete(key: K): void {
    const held = this.#numbers.get(key);
    if (held === undefined) return;
    this.#numbers.delete(key);
    this.#free.push(held);
  }

  /** How many keys have a number. */
  get size(): number {
    return this.#numbers.size;
  }

  /** How many numbers were ever made: every number is below it, and it is at most the most keys held at once. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The numbers held, in the order their keys were numbered. */
  values(): IterableIterator<number> {
    return this.#numbers.values();
  }

  /** Every key and its number, in the order numbered. */
  entries(): IterableIterator<[K, number]> {
    return this.#numbers.entries();
  }
}
