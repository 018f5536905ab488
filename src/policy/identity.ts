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

/** Where a {@link LocalIdentityAllocator} numbers from and what it keeps for whom. */
export interface LocalIdentityOptions {
  /** The first number ({@link FIRST_ALLOCATED_IDENTITY} by default). */
  first?: number;
  /** The last number (2^32 - 1 by default); past it numbering starts again at `first`, skipping numbers held. */
  last?: number;
  /**
   * Numbers that are still written somewhere (a restarted agent's pinned
   * maps), with the key each meant if known: a key listed gets its number
   * back at its first allocation, and no other key gets one of them, so a
   * number never means two keys at once.
   */
  inUse?: Iterable<{ id: number; key?: string }>;
}

/**
 * An in-process allocator: identities from `first` upward, reference
 * counted, and not reused within the process until the range wraps, so a
 * stale identity in a map is not mistaken for a new one.
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
  readonly #byKey = new Map<string, number>();
  /** References of the keys having more than one: most (every CIDR's) have one, and a count object each would cost ~40 bytes. */
  readonly #shared = new Map<string, number>();
  readonly #kept = new Map<string, number>();
  /** Numbers `inUse` keeps back for nobody. */
  readonly #unkeyed: number[] = [];
  /**
   * Every number held or kept back, made when numbering first wraps: until
   * then each number handed out is above all of them, and a set of 100k CIDRs'
   * numbers would cost some 3 MB.
   */
  #taken: Set<number> | undefined;
  readonly #first: number;
  readonly #last: number;
  #next: number;

  constructor(options: LocalIdentityOptions = {}) {
    this.#first = options.first ?? FIRST_ALLOCATED_IDENTITY;
    this.#last = options.last ?? 0xffff_ffff;
    this.#next = this.#first;
    for (const { id, key } of options.inUse ?? []) {
      if (id < this.#first || id > this.#last) continue;
      if (key !== undefined) this.#kept.set(key, id);
      else this.#unkeyed.push(id);
      if (id >= this.#next) this.#next = id + 1;
    }
  }

  /**
   * The identity of `key`, taking a reference to it.
   *
   * @throws {IdentitySpaceExhaustedError} when every number of the range is held.
   */
  allocate(key: string): number {
    const held = this.#byKey.get(key);
    if (held !== undefined) {
      this.#shared.set(key, (this.#shared.get(key) ?? 1) + 1);
      return held;
    }
    const kept = this.#kept.get(key);
    this.#kept.delete(key);
    const id = kept ?? this.#nextFree(key);
    this.#taken?.add(id);
    this.#byKey.set(key, id);
    return id;
  }

  /**
   * Drops a reference; the key's identity is forgotten at the last one.
   *
   * @throws {IdentityReleaseError} when the key holds no reference.
   */
  release(key: string): void {
    const id = this.#byKey.get(key);
    if (id === undefined) throw new IdentityReleaseError(`Cannot release identity key "${key}": it holds no reference`);
    const references = this.#shared.get(key) ?? 1;
    if (references > 1) {
      if (references === 2) this.#shared.delete(key);
      else this.#shared.set(key, references - 1);
      return;
    }
    this.#byKey.delete(key);
    this.#taken?.delete(id);
  }

  /** How many keys currently hold an identity. */
  get size(): number {
    return this.#byKey.size;
  }

  #nextFree(key: string): number {
    const span = this.#last - this.#first + 1;
    for (let tried = 0; tried < span; tried++) {
      if (this.#next > this.#last) {
        this.#next = this.#first;
        this.#taken ??= new Set([...this.#byKey.values(), ...this.#kept.values(), ...this.#unkeyed]);
      }
      const id = this.#next++;
      if (this.#taken === undefined || !this.#taken.has(id)) return id;
    }
    throw new IdentitySpaceExhaustedError(`Cannot allocate an identity for key ${JSON.stringify(key)}: all ${span} numbers from ${this.#first} are held`);
  }
}

/** Every number of an allocator's range is held. */
export class IdentitySpaceExhaustedError extends Error {
  override name = "IdentitySpaceExhaustedError";
}
