/**
 * The agent's identity allocator in a cluster: numbers come from the
 * operator's PalisadeIdentity objects (an informer's cache), so every node
 * uses the same number for the same key. A key without an object is
 * pending: the compiler leaves its addresses out until the object appears.
 *
 * Numbers are held while the compiler references them, and a number held
 * for one key is never handed to another here, even if the table already
 * says so (the operator reuses a number only after it collected the object,
 * which an agent may not have caught up with): that key waits until the
 * number is released, and is then reported available.
 *
 * Keys derived from addresses alone (a policy's CIDRs, the node's
 * addresses) are numbered by this node on its own, from
 * {@link FIRST_NODE_LOCAL_IDENTITY} up ({@linkcode nodeLocalIdentities}), as is a key whose object the API
 * cannot hold (a pod with more labels than a PalisadeIdentity takes: see
 * `identityObjectProblem`): they are never pending, and the first costs no
 * API object per CIDR; only the number means nothing on other nodes.
 *
 * @module
 */
import { identityObjectProblem } from "../crd/identity-rules.ts";
import type { Cache } from "../k8s/cache.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import type { Cidr } from "../policy/ip.ts";
import { FIRST_NODE_LOCAL_IDENTITY, identityInMemory, kernelIdentity } from "../policy/desired-state.ts";
import { LocalIdentityAllocator } from "../policy/identity.ts";
import type { IdentityAllocator, LocalIdentityOptions } from "../policy/identity.ts";
import { isAddressDerivedKey } from "../policy/identity-key.ts";
import { IDENTITY_KEY_INDEX, identityObject, lowestIdentityNumber } from "../policy/identity-object.ts";

/** A reference bookkeeping bug of the caller: releasing what it does not hold. */
export class ClusterIdentityReleaseError extends Error {
  override name = "ClusterIdentityReleaseError";
}

/**
 * Identities from the cluster's table (the cache of
 * src/api-objects' `identityInformer`).
 *
 * @example
 * ```ts
 * const identities = new ClusterIdentityAllocator(informer.cache, nodeLocalIdentities(), (keys) => compiler.identitiesChanged(keys));
 * new PolicyCompiler({ identities, nodeName });
 * ```
 */
export class ClusterIdentityAllocator implements IdentityAllocator {
  readonly #table: Cache<PalisadeIdentity>;
  readonly #onAvailable: (keys: string[]) => void;
  readonly #held = new Map<number, { key: string; references: number }>();
  readonly #numbersByKey = new Map<string, Set<number>>();
  /** Keys asked for while the table had no number for them (or it meant another key here). */
  readonly #waiting = new Set<string>();
  /** Numbers of this node's own, for keys the cluster does not number. */
  readonly #nodeLocal: LocalIdentityAllocator;

  /**
   * @param table The informer cache of PalisadeIdentity objects, with {@link IDENTITY_KEY_INDEX}.
   * @param nodeLocal Numbers this node gives on its own ({@linkcode nodeLocalIdentities}).
   * @param onAvailable Called with keys that were waiting for a number this allocator just released.
   */
  constructor(table: Cache<PalisadeIdentity>, nodeLocal: LocalIdentityAllocator, onAvailable: (keys: string[]) => void) {
    this.#table = table;
    this.#nodeLocal = nodeLocal;
    this.#onAvailable = onAvailable;
  }

  /**
   * The table's number for `key`, taking a reference; `undefined` while it
   * has none (or it still means another key here). A key the cluster does
   * not number gets a number of this node's own at once.
   */
  allocate(key: string): number | undefined {
    if (numberedByEachNode(key)) return this.#nodeLocal.allocate(key);
    const id = this.#tableNumber(key);
    const held = id === undefined ? undefined : this.#held.get(id);
    if (id === undefined || (held !== undefined && held.key !== key)) {
      this.#waiting.add(key);
      return undefined;
    }
    this.#waiting.delete(key);
    if (held !== undefined) held.references++;
    else {
      this.#held.set(id, { key, references: 1 });
      let numbers = this.#numbersByKey.get(key);
      if (numbers === undefined) {
        numbers = new Set();
        this.#numbersByKey.set(key, numbers);
      }
      numbers.add(id);
    }
    return id;
  }

  /** A policy prefix's own number: prefixes are address-derived, so this node's own. */
  allocatePrefix(prefix: Cidr): number {
    return this.#nodeLocal.allocatePrefix(prefix);
  }

  /** Drops a reference taken by {@link ClusterIdentityAllocator.allocatePrefix}. */
  releasePrefix(prefix: Cidr): void {
    this.#nodeLocal.releasePrefix(prefix);
  }

  /**
   * Drops a reference to `id` for `key`.
   *
   * @throws {ClusterIdentityReleaseError} when `key` holds no reference to `id`.
   */
  release(key: string, id: number): void {
    if (kernelIdentity(id) >= FIRST_NODE_LOCAL_IDENTITY) {
      this.#nodeLocal.release(key);
      return;
    }
    const held = this.#held.get(id);
    if (held === undefined || held.key !== key) {
      throw new ClusterIdentityReleaseError(`Cannot release identity ${id} of key ${JSON.stringify(key)}: it holds no reference`);
    }
    if (--held.references > 0) return;
    this.#held.delete(id);
    const numbers = this.#numbersByKey.get(key) as Set<number>;
    numbers.delete(id);
    if (numbers.size === 0) this.#numbersByKey.delete(key);
    const other = this.#table.get(String(id))?.spec.key;
    if (other !== undefined && other !== key && this.#tableNumber(other) === id) this.#onAvailable([other]);
  }

  /**
   * Whether the table's answer for `key` differs from what is held for it:
   * a pending key that got a number (even the one still held for it, when
   * its object was deleted and created again), or a held key whose number
   * changed.
   */
  changed(key: string): boolean {
    if (numberedByEachNode(key)) return false;
    if (this.#waiting.has(key)) return this.#tableNumber(key) !== undefined;
    const numbers = this.#numbersByKey.get(key);
    const id = this.#tableNumber(key);
    return numbers === undefined ? id !== undefined : numbers.size !== 1 || id === undefined || !numbers.has(id);
  }

  /** How many numbers are held. */
  get size(): number {
    return this.#held.size;
  }

  #tableNumber(key: string): number | undefined {
    return lowestIdentityNumber(this.#table.byIndex(IDENTITY_KEY_INDEX, key));
  }
}

/**
 * The allocator of this node's own numbers, {@link FIRST_NODE_LOCAL_IDENTITY}
 * to 2^32 - 1, handed out in their in-memory form (`identityInMemory`: small
 * integers, not a heap number each); `inUse` as {@link LocalIdentityOptions}.
 *
 * @example
 * ```ts
 * nodeLocalIdentities().allocate('["cidr","10.0.0.0/8"]'); // -268435456, written to the kernel as 0xf0000000
 * ```
 */
export function nodeLocalIdentities(inUse?: LocalIdentityOptions["inUse"]): LocalIdentityAllocator {
  return new LocalIdentityAllocator({ first: identityInMemory(FIRST_NODE_LOCAL_IDENTITY), last: identityInMemory(0xffff_ffff), ...(inUse === undefined ? {} : { inUse }) });
}

/** Whether each node numbers `key` on its own: it is derived from addresses alone, or no PalisadeIdentity can hold it. */
function numberedByEachNode(key: string): boolean {
  return isAddressDerivedKey(key) || identityObjectProblem(identityObject(FIRST_NODE_LOCAL_IDENTITY, key).spec) !== undefined;
}
