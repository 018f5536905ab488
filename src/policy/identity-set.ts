/**
 * A set of identity numbers kept as a sorted typed array: what each rule's
 * targets are held in. A `Set<number>` costs about 30 bytes per member and
 * 100 per empty set; this costs 4 bytes per member (6 with its room to
 * grow), and the compiler holds millions of members at 100k CIDRs. Membership
 * is a binary search and a change moves the members after it, cheap at the
 * sizes rules target (thousands at most). Members are stored as the kernel's
 * numbers (`kernelIdentity`), so that every one fits 32 unsigned bits,
 * and read back in their in-memory form.
 *
 * @module
 */
import { identityInMemory, kernelIdentity } from "./desired-state.ts";

const NONE = new Uint32Array(0);

/**
 * Members a set filled by {@link IdentitySet.addAll} takes before its first copy: the full sync fills
 * every set that way, and a namespace relabelled then adds its pods' new identities (3 at full size,
 * `bench/scale.ts`) to the sets of the selectors and rules matching them, which were each copied to grow
 * while they had no room.
 */
const ROOM = 4;

/**
 * A set of identity numbers in their in-memory form (`identityInMemory`),
 * iterated in the ascending order of the kernel's numbers.
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
    const stored = kernelIdentity(id);
    const at = this.#position(stored);
    return at < this.#size && this.#ids[at] === stored;
  }

  /** Adds `id`; whether it was absent. */
  add(id: number): boolean {
    const stored = kernelIdentity(id);
    const at = this.#position(stored);
    if (at < this.#size && this.#ids[at] === stored) return false;
    if (this.#size === this.#ids.length) {
      const grown = new Uint32Array(Math.max(4, this.#size + (this.#size >> 1)));
      grown.set(this.#ids);
      this.#ids = grown;
    }
    this.#ids.copyWithin(at + 1, at, this.#size);
    this.#ids[at] = stored;
    this.#size++;
    return true;
  }

  /** Removes `id`; whether it was present. */
  delete(id: number): boolean {
    const stored = kernelIdentity(id);
    const at = this.#position(stored);
    if (at >= this.#size || this.#ids[at] !== stored) return false;
    this.#ids.copyWithin(at, at + 1, this.#size);
    this.#size--;
    // Room for four times the members is given back; a set that grows again gets half as much again.
    if (this.#size <= this.#ids.length >> 2) this.#ids = this.#ids.slice(0, this.#size);
    return true;
  }

  /** Adds every number of `ids` (in any order, duplicates allowed) with one sort, not one insertion each, leaving {@link ROOM}. */
  addAll(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const count = this.#size + ids.length;
    const all = new Uint32Array(count + ROOM);
    all.set(this.#ids.subarray(0, this.#size));
    for (let i = 0; i < ids.length; i++) all[this.#size + i] = kernelIdentity(ids[i] as number);
    const members = all.subarray(0, count).sort();
    let kept = 0;
    for (const id of members) if (kept === 0 || all[kept - 1] !== id) all[kept++] = id;
    this.#ids = kept + ROOM < all.length ? all.slice(0, kept + ROOM) : all;
    this.#size = kept;
  }

  /** The numbers as of the call, in the ascending order of the kernel's. */
  *[Symbol.iterator](): Iterator<number> {
    const ids = this.#ids.subarray(0, this.#size);
    for (const stored of ids) yield identityInMemory(stored);
  }

  /** The index of the first member not below `stored` (a kernel's number). */
  #position(stored: number): number {
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ids[mid] as number) < stored) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
