/**
 * A map some of whose entries a second map holds again, for the kernel to
 * find them with a cheaper lookup: the full-length entries of a longest-prefix
 * trie in a hash (`pal_policy` in `pal_policy_exact`, `pal_ipcache` in
 * `pal_ipcache_hosts`: a full-length entry is the longest match its key can
 * have), the endpoints of small interface indexes in an array indexed by them
 * (`pal_endpoints` in `pal_endpoints_by_ifindex`). The kernel tries the
 * mirror first and asks the map itself when the mirror has nothing, so a
 * mirror hit is the map's own answer as long as the mirror holds nothing the
 * map does not hold with the same value. Every write through this handle
 * keeps that: the mirror is written after the map and cleared before it; an
 * entry missing from the mirror costs only the slower lookup.
 *
 * @module
 */
import { BpfMap, type EncodedEntry, type MapContents } from "./bpf-map.ts";
import type { Codec } from "./abi.ts";
import type { MapDescription } from "./native.ts";

/** Which entries a {@link MirroredMap}'s mirror holds, and how it lets one go. */
export interface MirrorOptions<K, V> {
  /** The second map (its key and value encoded as the first one's). */
  map: BpfMap<K, V>;
  /** Whether the mirror holds the entry of an encoded key. */
  covers: (key: Buffer) => boolean;
  /**
   * For an array, whose entries cannot be deleted: the value that reads as
   * "nothing here", written instead. Undefined: entries are deleted.
   */
  absent?: Buffer;
}

/**
 * The typed handle of a map and its mirror. Reads are the map's; writes go to
 * both, in the order above.
 *
 * @example
 * ```ts
 * datapath.maps.policy.upsert([[key, value]]); // the trie, then (an exact-port key) pal_policy_exact
 * datapath.maps.policy.mirror.lookup(key);     // what the kernel finds in the hash
 * ```
 */
export class MirroredMap<K, V> extends BpfMap<K, V> {
  /** The mirror; read it, write through this handle only. */
  readonly mirror: BpfMap<K, V>;
  readonly #covers: (key: Buffer) => boolean;
  readonly #absent: Buffer | undefined;
  readonly #keySize: number;
  readonly #valueSize: number;

  /** The map `description` mirrored as `mirror` says; the other arguments are {@link BpfMap}'s. */
  constructor(description: MapDescription, key: Codec<K>, value: Codec<V>, where: string, checkOpen: () => void, mirror: MirrorOptions<K, V>) {
    super(description, key, value, where, checkOpen);
    this.mirror = mirror.map;
    this.#covers = mirror.covers;
    this.#absent = mirror.absent;
    this.#keySize = key.layout.size;
    this.#valueSize = value.layout.size;
  }

  override update(key: K, value: V): void {
    super.update(key, value);
    if (this.#covers(this.encodeKey(key))) this.mirror.update(key, value);
  }

  override delete(key: K): boolean {
    const encoded = this.encodeKey(key);
    if (this.#covers(encoded)) this.#clear([encoded]);
    return super.delete(key);
  }

  /**
   * For a full sync, with `current` what the map holds before it (as
   * {@link BpfMap.read} read it) and `desired` what it will hold (as
   * {@link BpfMap.encodeAll} encoded it):
   * clears in the mirror now every entry of those keys that the map does not
   * hold with the same value (left by a crash between two writes), and
   * returns the desired entries the mirror lacks, to write with
   * {@link writeMirror} after the map's writes. The mirror is read whole, in
   * one pass, but only those keys are considered: what an agent that did not
   * know the mirror left at other keys stays.
   */
  pruneMirror(current: MapContents<K, V>, desired: MapContents<K, V>): EncodedEntry[] {
    const mirror = this.mirror.read();
    const absent = this.#absent;
    // Where the mirror holds an entry (not the array's "nothing here") for a key, or -1.
    const heldAt = (at: number): number => (at >= 0 && (absent === undefined || !mirror.holdsValue(at, absent)) ? at : -1);
    const stale = new Set<number>();
    for (let i = 0; i < current.count; i++) {
      if (!current.isLast(i) || !this.#covers(current.encodedKey(i))) continue;
      const at = heldAt(current.findIn(mirror, i));
      if (at >= 0 && !mirror.sameValue(at, current, i)) stale.add(at);
    }
    const missing: EncodedEntry[] = [];
    for (let i = 0; i < desired.count; i++) {
      if (!this.#covers(desired.encodedKey(i))) continue;
      const inMap = desired.findIn(current, i);
      const at = heldAt(desired.findIn(mirror, i));
      // A key the map lacks is upserted by the sync, and so mirrored by its own writes; one held otherwise too.
      if (inMap < 0 && at >= 0) stale.add(at);
      else if (inMap >= 0 && current.sameValue(inMap, desired, i) && !(at >= 0 && mirror.sameValue(at, desired, i))) missing.push(desired.encoded(i));
    }
    this.#clear([...stale].map((at) => mirror.encodedKey(at)));
    return missing;
  }

  /** Writes entries the map already holds into the mirror; returns how many. */
  writeMirror(entries: readonly EncodedEntry[]): number {
    return this.mirror.writeEncoded(entries);
  }

  protected override writeBatch(keys: Buffer, values: Buffer, count: number): void {
    super.writeBatch(keys, values, count);
    const covered: EncodedEntry[] = [];
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * this.#keySize, (i + 1) * this.#keySize);
      if (this.#covers(key)) covered.push({ key, value: values.subarray(i * this.#valueSize, (i + 1) * this.#valueSize) });
    }
    this.mirror.writeEncoded(covered);
  }

  protected override deleteBatch(keys: Buffer, count: number): number {
    const covered: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * this.#keySize, (i + 1) * this.#keySize);
      if (this.#covers(key)) covered.push(key);
    }
    this.#clear(covered);
    return super.deleteBatch(keys, count);
  }

  #clear(keys: readonly Buffer[]): void {
    const absent = this.#absent;
    if (absent === undefined) this.mirror.deleteEncoded(keys);
    else this.mirror.writeEncoded(keys.map((key) => ({ key, value: absent })));
  }
}
