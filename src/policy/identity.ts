/**
 * Security identity allocation: one small integer per distinct identity key
 * (the security-relevant attributes of an address). An interface, because
 * the operator allocates cluster-wide through the API so that every node
 * agrees; the local allocator serves a single process and tests.
 *
 * @module
 */
import { FIRST_ALLOCATED_IDENTITY } from "./desired-state.ts";
import { cidrIdentityKey, IdentityKeyError, identityKeyFields } from "./identity-key.ts";
import { CidrMap, formatCidr, IpParseError, parseCidr } from "./ip.ts";
import type { Cidr } from "./ip.ts";

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
  /**
   * The identity of a policy prefix's own key (`cidrIdentityKey` of its
   * canonical text), taking a reference: what `allocate` of that key gives,
   * without the key's text, which 100k prefixes would each build at their
   * allocation and hold (~40 bytes each).
   */
  allocatePrefix(prefix: Cidr): number | undefined;
  /** Drops a reference taken by {@link IdentityAllocator.allocate}, which returned `id`. */
  release(key: string, id: number): void;
  /** Drops a reference taken by {@link IdentityAllocator.allocatePrefix}, which returned `id`. */
  releasePrefix(prefix: Cidr, id: number): void;
}

/**
 * A base for allocators that number a prefix's key by its text like any
 * other key: tables of keys learnt elsewhere, and tests' doubles.
 *
 * @example
 * ```ts
 * class Counting extends TextKeyedAllocator {
 *   readonly keys = new Map<string, number>();
 *   allocate(key: string): number { return this.keys.get(key) ?? this.keys.set(key, 256 + this.keys.size).get(key)!; }
 *   release(): void {}
 * }
 * new Counting().allocatePrefix(parseCidr("10.0.0.0/8")); // 256, the number of '["cidr","10.0.0.0/8"]'
 * ```
 */
export abstract class TextKeyedAllocator implements IdentityAllocator {
  abstract allocate(key: string): number | undefined;
  abstract release(key: string, id: number): void;

  allocatePrefix(prefix: Cidr): number | undefined {
    return this.allocate(cidrIdentityKey(formatCidr(prefix)));
  }

  releasePrefix(prefix: Cidr, id: number): void {
    this.release(cidrIdentityKey(formatCidr(prefix)), id);
  }
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
  /** The numbers of prefixes' own keys, by prefix: no key text per prefix (see {@link IdentityAllocator.allocatePrefix}). */
  readonly #byPrefix = new CidrMap<number>();
  /** References of the numbers having more than one: most (every CIDR's) have one, and a count object each would cost ~40 bytes. */
  readonly #shared = new Map<number, number>();
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
    const prefix = prefixOfKey(key);
    if (prefix !== undefined) return this.allocatePrefix(prefix);
    const held = this.#byKey.get(key);
    if (held !== undefined) return this.#reference(held);
    const id = this.#take(key);
    this.#byKey.set(key, id);
    return id;
  }

  /**
   * The identity of a prefix's own key, taking a reference to it, as {@link LocalIdentityAllocator.allocate} of that key.
   *
   * @throws {IdentitySpaceExhaustedError} when every number of the range is held.
   */
  allocatePrefix(prefix: Cidr): number {
    const held = this.#byPrefix.get(prefix);
    if (held !== undefined) return this.#reference(held);
    // The key's text only while numbers kept for keys (a restarted agent's) may hold it.
    const id = this.#take(this.#kept.size > 0 ? cidrIdentityKey(formatCidr(prefix)) : prefix);
    this.#byPrefix.set(prefix, id);
    return id;
  }

  /**
   * Drops a reference; the key's identity is forgotten at the last one.
   *
   * @throws {IdentityReleaseError} when the key holds no reference.
   */
  release(key: string): void {
    const prefix = prefixOfKey(key);
    if (prefix !== undefined) return this.releasePrefix(prefix);
    const id = this.#byKey.get(key);
    if (id === undefined) throw new IdentityReleaseError(`Cannot release identity key "${key}": it holds no reference`);
    if (this.#unreference(id)) this.#byKey.delete(key);
  }

  /**
   * Drops a reference to a prefix's own key, as {@link LocalIdentityAllocator.release} of that key.
   *
   * @throws {IdentityReleaseError} when the key holds no reference.
   */
  releasePrefix(prefix: Cidr): void {
    const id = this.#byPrefix.get(prefix);
    if (id === undefined) throw new IdentityReleaseError(`Cannot release identity key ${cidrIdentityKey(formatCidr(prefix))}: it holds no reference`);
    if (this.#unreference(id)) this.#byPrefix.delete(prefix);
  }

  /** How many keys currently hold an identity. */
  get size(): number {
    return this.#byKey.size + this.#byPrefix.size;
  }

  #reference(id: number): number {
    this.#shared.set(id, (this.#shared.get(id) ?? 1) + 1);
    return id;
  }

  /** Drops a reference to `id`; whether it was the last. */
  #unreference(id: number): boolean {
    const references = this.#shared.get(id) ?? 1;
    if (references > 1) {
      if (references === 2) this.#shared.delete(id);
      else this.#shared.set(id, references - 1);
      return false;
    }
    this.#taken?.delete(id);
    return true;
  }

  /** A number for a new key: its text, or a prefix whose text is not needed (no number is kept for a key). */
  #take(key: string | Cidr): number {
    let id: number | undefined;
    if (typeof key === "string") {
      id = this.#kept.get(key);
      this.#kept.delete(key);
    }
    id ??= this.#nextFree(key);
    this.#taken?.add(id);
    return id;
  }

  #nextFree(key: string | Cidr): number {
    const span = this.#last - this.#first + 1;
    for (let tried = 0; tried < span; tried++) {
      if (this.#next > this.#last) {
        this.#next = this.#first;
        this.#taken ??= new Set([...this.#byKey.values(), ...this.#byPrefix.values(), ...this.#kept.values(), ...this.#unkeyed]);
      }
      const id = this.#next++;
      if (this.#taken === undefined || !this.#taken.has(id)) return id;
    }
    const text = typeof key === "string" ? key : cidrIdentityKey(formatCidr(key));
    throw new IdentitySpaceExhaustedError(`Cannot allocate an identity for key ${JSON.stringify(text)}: all ${span} numbers from ${this.#first} are held`);
  }
}

/** Every number of an allocator's range is held. */
export class IdentitySpaceExhaustedError extends Error {
  override name = "IdentitySpaceExhaustedError";
}

/** The prefix of a policy prefix's own key in its canonical text; undefined for any other key. */
function prefixOfKey(key: string): Cidr | undefined {
  if (!key.startsWith('["cidr",')) return undefined;
  try {
    const text = identityKeyFields(key).cidr as string;
    const prefix = parseCidr(text);
    return formatCidr(prefix) === text ? prefix : undefined;
  } catch (cause) {
    // Not a key a prefix makes: numbered by its text like any other.
    if (cause instanceof IdentityKeyError || cause instanceof IpParseError) return undefined;
    throw cause;
  }
}
