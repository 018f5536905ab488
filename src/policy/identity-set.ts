/**
 * A set of identity numbers kept as a sorted typed array: what each rule's
 * targets are held in. A `Set<number>` costs about 30 bytes per member and
 * 100 per empty set; this costs 4 bytes per member (6 with its room to
 * grow), and the compiler holds millions of members at 100k CIDRs. Membership
 * is a binary search and a change moves the members after it, cheap at the
 * sizes rules target (thousands at most).
 *
 * @module
 */

const NONE = new Uint32Array(0);

/**
 * A set of identity numbers (unsigned 32-bit integers), iterated in ascending order.
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
  /** Sorted, without duplicates, in the first {@link IdentitySet.size} elements; the rest is room to grow. */
  #ids = NONE;
  #size = 0;

  /** How many numbers the set holds. */
  get size(): number {
    return this.#size;
  }

  /** Whether the set holds `id`. */
  has(id: number): boolean {
    const at = this.#position(id);
    return at < this.#size && this.#ids[at] === id;
  }

  /** Adds `id`; whether it was absent. */
  add(id: number): boolean {
    const at = this.#position(id);
    if (at < this.#size && this.#ids[at] === id) return false;
    if (this.#size === this.#ids.length) {
      const grown = new Uint32Array(Math.max(4, this.#size + (this.#size >> 1)));
      grown.set(this.#ids);
      this.#ids = grown;
    }
    this.#ids.copyWithin(at + 1, at, this.#size);
    this.#ids[at] = id;
    this.#size++;
    return true;
  }

  /** Removes `id`; whether it was present. */
  delete(id: number): boolean {
    const at = this.#position(id);
    if (at >= this.#size || this.#ids[at] !== id) return false;
    this.#ids.copyWithin(at, at + 1, this.#size);
    this.#size--;
    // Room for four times the members is given back; a set that grows again gets half as much again.
    if (this.#size <= this.#ids.length >> 2) this.#ids = this.#ids.slice(0, this.#size);
    return true;
  }

  /** Adds every number of `ids` (in any order, duplicates allowed) with one sort, not one insertion each. */
  addAll(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const all = new Uint32Array(this.#size + ids.length);
    all.set(this.#ids.subarray(0, this.#size));
    all.set(ids, this.#size);
    all.sort();
    let kept = 0;
    for (const id of all) if (kept === 0 || all[kept - 1] !== id) all[kept++] = id;
    this.#ids = kept === all.length ? all : all.slice(0, kept);
    this.#size = kept;
  }

  /** The numbers in ascending order. */
  [Symbol.iterator](): Iterator<number> {
    return this.#ids.subarray(0, this.#size).values();
  }

  /** The index of the first member not below `id`. */
  #position(id: number): number {
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ids[mid] as number) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
