/**
 * The operator's identity table: the single allocator of the cluster. It
 * starts from the PalisadeIdentity objects that exist (so numbers survive
 * restarts and failovers), gives a new key the lowest number no object and
 * no pending creation holds, counts the compiler's references per key, and
 * says which numbers have gone unused for the grace period and may be
 * collected. A number is free again only once its object is seen deleted.
 *
 * Address-derived keys are not the cluster's: each agent numbers them, so
 * the table gives them throwaway numbers of its own and never an object.
 * (The operator's compiler keeps no prefix entries, so these are the node
 * addresses' host keys.)
 *
 * @module
 */
import { FIRST_ALLOCATED_IDENTITY, FIRST_NODE_LOCAL_IDENTITY } from "../policy/desired-state.ts";
import { IdentitySpaceExhaustedError, LocalIdentityAllocator } from "../policy/identity.ts";
import type { IdentityAllocator } from "../policy/identity.ts";
import { isAddressDerivedKey } from "../policy/identity-key.ts";
import { MAX_IDENTITY } from "../policy/identity-object.ts";
import type { Cidr } from "../policy/ip.ts";

/** An identity number and the key it stands for. */
export interface IdentityEntry {
  id: number;
  key: string;
}

/**
 * The cluster's identity table, as the leading operator keeps it.
 *
 * @example
 * ```ts
 * const table = new OperatorIdentityAllocator([{ id: 256, key: '["pod","shop",[],[["app","api"]],[],null]' }]);
 * const ipcache = new IpcacheCompiler({ identities: table });
 * // feed and commit, then create table.missing(exists) and delete table.collectible(30_000)
 * ```
 */
export class OperatorIdentityAllocator implements IdentityAllocator {
  readonly #keyOf = new Map<number, string>();
  readonly #numbersOf = new Map<string, Set<number>>();
  readonly #references = new Map<string, number>();
  readonly #unusedSince = new Map<number, number>();
  readonly #now: () => number;
  readonly #addressDerived = new LocalIdentityAllocator({ first: FIRST_NODE_LOCAL_IDENTITY });

  /**
   * @param existing The objects that exist now.
   * @param now The clock, in milliseconds.
   */
  constructor(existing: Iterable<IdentityEntry>, now: () => number = Date.now) {
    this.#now = now;
    for (const { id, key } of existing) this.#add(id, key);
  }

  /** The number of `key` (the lowest of its objects), or a new one: the lowest free number. Takes a reference. */
  allocate(key: string): number {
    if (isAddressDerivedKey(key)) return this.#addressDerived.allocate(key);
    let id = this.numberOf(key);
    if (id === undefined) {
      id = FIRST_ALLOCATED_IDENTITY;
      while (this.#keyOf.has(id)) id++;
      if (id > MAX_IDENTITY) throw new IdentitySpaceExhaustedError(`Cannot allocate an identity for key ${JSON.stringify(key)}: all ${MAX_IDENTITY - FIRST_ALLOCATED_IDENTITY + 1} numbers are taken`);
      this.#add(id, key);
    }
    this.#references.set(key, (this.#references.get(key) ?? 0) + 1);
    this.#unusedSince.delete(id);
    return id;
  }

  /** Drops a reference; the key's numbers start their grace period at the last one. */
  release(key: string): void {
    if (isAddressDerivedKey(key)) return this.#addressDerived.release(key);
    const references = (this.#references.get(key) ?? 0) - 1;
    if (references > 0) {
      this.#references.set(key, references);
      return;
    }
    this.#references.delete(key);
    for (const id of this.#numbersOf.get(key) ?? []) this.#unusedSince.set(id, this.#now());
  }

  /** A policy prefix's own number: address-derived, so a throwaway one (the operator's compiler keeps no prefix entries). */
  allocatePrefix(prefix: Cidr): number {
    return this.#addressDerived.allocatePrefix(prefix);
  }

  /** Drops a reference taken by {@link OperatorIdentityAllocator.allocatePrefix}. */
  releasePrefix(prefix: Cidr): void {
    this.#addressDerived.releasePrefix(prefix);
  }

  /** The number every reader uses for `key`: the lowest of its entries. */
  numberOf(key: string): number | undefined {
    let lowest: number | undefined;
    for (const id of this.#numbersOf.get(key) ?? []) if (lowest === undefined || id < lowest) lowest = id;
    return lowest;
  }

  /** The key of number `id`. */
  keyOf(id: number): string | undefined {
    return this.#keyOf.get(id);
  }

  /**
   * An object seen in the API. Returns the keys whose number changed (a
   * lower duplicate appeared), or `"conflict"` when the number is entered
   * here for another key (another writer created it first): the table must
   * be rebuilt from the API.
   */
  observe(id: number, key: string): string[] | "conflict" {
    const known = this.#keyOf.get(id);
    if (known === key) return [];
    if (known !== undefined) return "conflict";
    const before = this.numberOf(key);
    this.#add(id, key);
    return before !== undefined && before !== this.numberOf(key) ? [key] : [];
  }

  /** An object seen deleted: its number is free again, unless it is in use (then its object must be created again). */
  forget(id: number): void {
    const key = this.#keyOf.get(id);
    if (key === undefined || this.#inUse(id, key)) return;
    this.#keyOf.delete(id);
    this.#unusedSince.delete(id);
    const numbers = this.#numbersOf.get(key) as Set<number>;
    numbers.delete(id);
    if (numbers.size === 0) this.#numbersOf.delete(key);
  }

  /** Entries in use whose object does not exist (per `exists`): the ones to create. */
  missing(exists: (entry: IdentityEntry) => boolean): IdentityEntry[] {
    const out: IdentityEntry[] = [];
    for (const key of this.#references.keys()) {
      const id = this.numberOf(key) as number;
      if (!exists({ id, key })) out.push({ id, key });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /**
   * Numbers unused for at least `graceMs`: their key has no reference, or
   * the key's number is a lower duplicate. A number first seen unused here
   * starts its grace period now.
   */
  collectible(graceMs: number): IdentityEntry[] {
    const now = this.#now();
    const out: IdentityEntry[] = [];
    for (const [id, key] of this.#keyOf) {
      if (this.#inUse(id, key)) {
        this.#unusedSince.delete(id);
        continue;
      }
      const since = this.#unusedSince.get(id);
      if (since === undefined) this.#unusedSince.set(id, now);
      else if (now - since >= graceMs) out.push({ id, key });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Entries in the table (objects and pending creations). */
  get size(): number {
    return this.#keyOf.size;
  }

  /** Keys the compiler references. */
  get inUse(): number {
    return this.#references.size;
  }

  #inUse(id: number, key: string): boolean {
    return this.#references.has(key) && this.numberOf(key) === id;
  }

  #add(id: number, key: string): void {
    this.#keyOf.set(id, key);
    let numbers = this.#numbersOf.get(key);
    if (numbers === undefined) {
      numbers = new Set();
      this.#numbersOf.set(key, numbers);
    }
    numbers.add(id);
  }
}
