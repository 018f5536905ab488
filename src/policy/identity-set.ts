/**
 * A set of identity numbers kept as a sorted array: what each rule's targets
 * are held in. A `Set<number>` costs about 30 bytes per member and 100 per
 * empty set; an array of small integers costs 8 bytes per member, and the
 * compiler holds about a million of them at 100k CIDRs. Membership is a
 * binary search and a change moves the members after it, cheap at the sizes
 * rules target (thousands at most).
 *
 * @module
 */

/**
 * A set of non-negative integers (identity numbers), iterated in ascending order.
 *
 * @example
 * ```ts
 * const ids = new IdentitySet();
 * ids.addAll([300, 256, 300]); // IdentitySet { 256, 300 }
 * ids.add(260);                // true
 * ids.has(300);                // true
 * [...ids];                    // [256, 260, 300]
 * ```
 */
export class IdentitySet implements Iterable<number> {
  /** Sorted, without duplicates. */
  #ids: number[] = [];

  /** How many numbers the set holds. */
  get size(): number {
    return this.#ids.length;
  }

  /** Whether the set holds `id`. */
  has(id: number): boolean {
    const at = this.#position(id);
    return this.#ids[at] === id;
  }

  /** Adds `id`; whether it was absent. */
  add(id: number): boolean {
    const at = this.#position(id);
    if (this.#ids[at] === id) return false;
    this.#ids.splice(at, 0, id);
    return true;
  }

  /** Removes `id`; whether it was present. */
  delete(id: number): boolean {
    const at = this.#position(id);
    if (this.#ids[at] !== id) return false;
    this.#ids.splice(at, 1);
    return true;
  }

  /** Adds every number of `ids` (in any order, duplicates allowed) with one sort, not one insertion each. */
  addAll(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const all = [...this.#ids, ...ids].sort((a, b) => a - b);
    let kept = 0;
    for (const id of all) if (kept === 0 || all[kept - 1] !== id) all[kept++] = id;
    all.length = kept;
    this.#ids = all;
  }

  /** The numbers in ascending order. */
  [Symbol.iterator](): Iterator<number> {
    return this.#ids[Symbol.iterator]();
  }

  /** The index of the first member not below `id`. */
  #position(id: number): number {
    let lo = 0;
    let hi = this.#ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ids[mid] as number) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
