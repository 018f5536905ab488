/**
 * A longest-prefix trie whose full-length entries a hash map holds again
 * (`pal_policy` with `pal_policy_exact`, `pal_ipcache` with
 * `pal_ipcache_hosts`): the kernel tries the hash first, one hash lookup
 * instead of a trie walk, and asks the trie on a miss. A full-length entry is
 * the longest match its key can have, so a hit is the trie's own answer as
 * long as the hash holds nothing the trie does not hold with the same value.
 * Every write through this handle keeps that: the hash is written after the
 * trie and deleted from before it; an entry missing from the hash costs only
 * the trie walk.
 *
 * @module
 */
import { BpfMap, type EncodedEntry } from "./bpf-map.ts";
import type { Codec } from "./abi.ts";
import type { MapDescription } from "./native.ts";

/**
 * The typed handle of a trie and its hash of full-length entries. Reads are
 * the trie's; writes go to both, in the order above.
 *
 * @example
 * ```ts
 * datapath.maps.policy.upsert([[key, value]]); // the trie, then (an exact-port key) pal_policy_exact
 * datapath.maps.policy.exact.lookup(key);      // what the kernel finds in the hash
 * ```
 */
export class TrieWithExactMap<K, V> extends BpfMap<K, V> {
  /** The hash of full-length entries; read it, write through this handle only. */
  readonly exact: BpfMap<K, V>;
  readonly #isFull: (key: Buffer) => boolean;
  readonly #keySize: number;
  readonly #valueSize: number;

  /**
   * The trie `description` with its hash `exact`; `isFull` tells an encoded
   * key of a full-length entry. The other arguments are {@link BpfMap}'s.
   */
  constructor(
    description: MapDescription,
    exact: BpfMap<K, V>,
    key: Codec<K>,
    value: Codec<V>,
    where: string,
    checkOpen: () => void,
    isFull: (key: Buffer) => boolean,
  ) {
    super(description, key, value, where, checkOpen);
    this.exact = exact;
    this.#isFull = isFull;
    this.#keySize = key.layout.size;
    this.#valueSize = value.layout.size;
  }

  override update(key: K, value: V): void {
    super.update(key, value);
    if (this.#isFull(this.encodeKey(key))) this.exact.update(key, value);
  }

  override delete(key: K): boolean {
    if (this.#isFull(this.encodeKey(key))) this.exact.delete(key);
    return super.delete(key);
  }

  /**
   * For a full sync, with `trie` what the trie holds before it (as
   * {@link BpfMap.encodedEntries} read it) and `desired` what it will hold:
   * deletes from the hash now every entry the trie does not hold with the
   * same value (left by a crash between two writes, or by an agent that did
   * not know the hash), and returns the desired full-length entries the hash
   * lacks, to write with {@link writeExact} after the trie's writes.
   */
  pruneExact(trie: ReadonlyMap<string, EncodedEntry>, desired: readonly EncodedEntry[]): EncodedEntry[] {
    const held = this.exact.encodedEntries();
    const stale = [...held].filter(([hex, entry]) => !trie.get(hex)?.value.equals(entry.value)).map(([, entry]) => entry.key);
    this.exact.deleteEncoded(stale);
    // An entry the trie lacks or holds otherwise is upserted by the sync, and so mirrored by its own writes.
    return desired.filter((entry) => {
      const hex = entry.key.toString("hex");
      return this.#isFull(entry.key) && trie.get(hex)?.value.equals(entry.value) === true && held.get(hex)?.value.equals(entry.value) !== true;
    });
  }

  /** Writes full-length entries the trie already holds into the hash; returns how many. */
  writeExact(entries: readonly EncodedEntry[]): number {
    return this.exact.writeEncoded(entries);
  }

  protected override writeBatch(keys: Buffer, values: Buffer, count: number): void {
    super.writeBatch(keys, values, count);
    const full: EncodedEntry[] = [];
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * this.#keySize, (i + 1) * this.#keySize);
      if (this.#isFull(key)) full.push({ key, value: values.subarray(i * this.#valueSize, (i + 1) * this.#valueSize) });
    }
    this.exact.writeEncoded(full);
  }

  protected override deleteBatch(keys: Buffer, count: number): number {
    const full: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * this.#keySize, (i + 1) * this.#keySize);
      if (this.#isFull(key)) full.push(key);
    }
    this.exact.deleteEncoded(full);
    return super.deleteBatch(keys, count);
  }
}
