/**
 * Security identity allocation: one small integer per distinct identity key
 * (the security-relevant attributes of an address). An interface, because
 * the operator allocates cluster-wide through the API so that every node
 * agrees; the local allocator serves a single process and tests.
 *
 * @module
 */
import { FIRST_ALLOCATED_IDENTITY } from "./desired-state.ts";

/**
 * Hands out identities for keys. `allocate` returns the key's identity,
 * creating it on first use; each `allocate` that returns a number takes a
 * reference and each `release` drops one, and an identity stays valid (and
 * its number is not given to another key) while it has references.
 *
 * An allocator that learns numbers from elsewhere (the operator's table in
 * the API) may answer `undefined`: the key is pending, no reference was
 * taken, and the caller asks again when the table changed.
 */
export interface IdentityAllocator {
  /** The identity of `key`, taking a reference to it; `undefined` while the key has no number yet. */
  allocate(key: string): number | undefined;
  /** Drops a reference taken by {@link IdentityAllocator.allocate}, which returned `id`. */
  release(key: string, id: number): void;
}

/** Releasing a key that holds no reference: a bookkeeping bug of the caller. */
export class IdentityReleaseError extends Error {
  override name = "IdentityReleaseError";
}

/**
 * An in-process allocator: identities from {@link FIRST_ALLOCATED_IDENTITY}
 * upward, reference counted, and never reused within the process, so a stale
 * identity in a map can never be mistaken for a new one.
 *
 * @example
 * ```ts
 * const ids = new LocalIdentityAllocator();
 * ids.allocate("a"); // 256
 * ids.allocate("a"); // 256 (second reference)
 * ids.allocate("b"); // 257
 * ```
 */
export class LocalIdentityAllocator implements IdentityAllocator {
  readonly #byKey = new Map<string, { id: number; references: number }>();
  #next: number;

  /** An allocator numbering from `first` upward ({@link FIRST_ALLOCATED_IDENTITY} by default). */
  constructor(first: number = FIRST_ALLOCATED_IDENTITY) {
    this.#next = first;
  }

  /** The identity of `key`, taking a reference to it. */
  allocate(key: string): number {
    const entry = this.#byKey.get(key);
    if (entry) {
      entry.references++;
      return entry.id;
    }
    const id = this.#next++;
    this.#byKey.set(key, { id, references: 1 });
    return id;
  }

  /**
   * Drops a reference; the key's identity is forgotten at the last one.
   *
   * @throws {IdentityReleaseError} when the key holds no reference.
   */
  release(key: string): void {
    const entry = this.#byKey.get(key);
    if (!entry) throw new IdentityReleaseError(`Cannot release identity key "${key}": it holds no reference`);
    if (--entry.references === 0) this.#byKey.delete(key);
  }

  /** How many keys currently hold an identity. */
  get size(): number {
    return this.#byKey.size;
  }
}
