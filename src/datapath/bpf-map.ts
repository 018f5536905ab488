/**
 * A typed handle on one map of a loaded object: it knows the map's key and
 * value codecs, so callers read and write values and never handle file
 * descriptors, sizes or the native binding. The encoded level (keys and
 * values as the kernel holds them) is there for writers that diff against
 * the kernel byte for byte and write in batches.
 *
 * @module
 */
import { encodeArray, type Codec } from "./abi.ts";
import { DatapathError } from "./datapath-error.ts";
import { KeyIndex, sameBytes } from "./key-index.ts";
import { mapDelete, mapDeleteBatch, mapLookup, mapLookupAll, mapUpdate, mapUpdateBatch, type MapDescription, type MapEntries } from "./native.ts";

/** A key and value encoded for a map. */
export interface EncodedEntry {
  key: Buffer;
  value: Buffer;
}

/** Entries per batch system call: large enough to amortize the call, small enough to bound the buffers. */
const BATCH_ENTRIES = 16_384;

/**
 * What a map held at one read (or, from {@link BpfMap.encodeAll}, what it is
 * to hold): its entries encoded back to back, decoded or viewed one at a
 * time, so that no read makes a Buffer per entry.
 *
 * @example
 * ```ts
 * const contents = datapath.maps.ipcache.read();
 * for (let i = 0; i < contents.count; i++) console.log(contents.key(i), contents.value(i));
 * ```
 */
export class MapContents<K, V> {
  /** How many entries were read. */
  readonly count: number;
  /** The writes through the handle before this read (see {@link BpfMap.unchangedSince}). */
  readonly writesBefore: number;
  readonly #entries: MapEntries;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;
  readonly #keySize: number;
  readonly #valueSize: number;
  #index: KeyIndex | undefined;

  constructor(entries: MapEntries, key: Codec<K>, value: Codec<V>, writesBefore: number) {
    this.count = entries.count;
    this.writesBefore = writesBefore;
    this.#entries = entries;
    this.#key = key;
    this.#value = value;
    this.#keySize = entries.count === 0 ? 0 : entries.keys.length / entries.count;
    this.#valueSize = entries.count === 0 ? 0 : entries.values.length / entries.count;
  }

  /** The `i`th key, decoded. */
  key(i: number): K {
    return this.#key.decode(this.#entries.keys, i * this.#keySize);
  }

  /** The `i`th value, decoded. */
  value(i: number): V {
    return this.#value.decode(this.#entries.values, i * this.#valueSize);
  }

  /** The `i`th key and value as the kernel holds them: views into the read's two buffers. */
  encoded(i: number): EncodedEntry {
    const { keys, values } = this.#entries;
    return {
      key: keys.subarray(i * this.#keySize, (i + 1) * this.#keySize),
      value: values.subarray(i * this.#valueSize, (i + 1) * this.#valueSize),
    };
  }

  /** The `i`th key as the kernel holds it: a view into the read's buffer. */
  encodedKey(i: number): Buffer {
    return this.#entries.keys.subarray(i * this.#keySize, (i + 1) * this.#keySize);
  }

  /** Whether the `i`th value is `value` (encoded), byte for byte. */
  holdsValue(i: number, value: Uint8Array): boolean {
    return value.length === this.#valueSize && sameBytes(this.#entries.values, i * this.#valueSize, value, 0, this.#valueSize);
  }

  /** Whether the `i`th value is the `j`th value of `other`, byte for byte. */
  sameValue(i: number, other: MapContents<K, V>, j: number): boolean {
    return this.#valueSize === other.#valueSize && sameBytes(this.#entries.values, i * this.#valueSize, other.#entries.values, j * other.#valueSize, this.#valueSize);
  }

  /** Where the `i`th key of this read was read in `other`, or -1 (a key read twice there: where it was read last). The first call on `other` indexes its keys. */
  findIn(other: MapContents<K, V>, i: number): number {
    return other.#keyIndex().find(this.#entries.keys, i * this.#keySize);
  }

  /** Whether the `i`th entry is the one {@link find} finds for its key: false for an earlier read of a key read twice. */
  isLast(i: number): boolean {
    return this.#keyIndex().holds(i);
  }

  #keyIndex(): KeyIndex {
    this.#index ??= new KeyIndex(this.#entries.keys, this.#keySize, this.count);
    return this.#index;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One map, typed by its codecs. Single operations let the binding's
 * `BpfError` through; batch writes fail with a {@link DatapathError}
 * naming the map.
 *
 * @example
 * ```ts
 * datapath.maps.policy.lookup({ slot: 1, identity: 0, direction: 0, protocol: 6, port: 80, portPrefixLen: 16 });
 * datapath.maps.ipcache.upsert(peers.map((peer) => [peer.key, { identity: peer.identity, flags: 0 }]));
 * ```
 */
export class BpfMap<K, V> {
  /** The map's name, as pinned. */
  readonly name: string;
  readonly #description: MapDescription;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;
  readonly #where: string;
  readonly #checkOpen: () => void;
  /** Writes made through this handle, so a read can tell whether it still holds. */
  #writes = 0;

  /**
   * A handle on the map `description` of an open object; `where` says where
   * it lives for messages (e.g. `pin root "/sys/fs/bpf/palisade"`), and
   * `checkOpen` throws once the object is closed.
   */
  constructor(description: MapDescription, key: Codec<K>, value: Codec<V>, where: string, checkOpen: () => void) {
    this.name = description.name;
    this.#description = description;
    this.#key = key;
    this.#value = value;
    this.#where = where;
    this.#checkOpen = checkOpen;
  }

  /** The value of `key`, or undefined when the map has none. */
  lookup(key: K): V | undefined {
    const value = mapLookup(this.#fd(), this.#key.encode(key), this.#description.valueSize);
    return value === null ? undefined : this.#value.decode(value);
  }

  /** Creates or replaces the entry of `key`. */
  update(key: K, value: V): void {
    this.#writes++;
    mapUpdate(this.#fd(), this.#key.encode(key), this.#value.encode(value));
  }

  /** Deletes the entry of `key`; false when there was none. */
  delete(key: K): boolean {
    this.#writes++;
    return mapDelete(this.#fd(), this.#key.encode(key));
  }

  /**
   * Everything the map holds, in one read (a few thousand entries per system
   * call). An entry written or deleted by another process meanwhile may be
   * missed or, in a trie or an array, read twice.
   */
  read(): MapContents<K, V> {
    const entries = mapLookupAll(this.#fd(), this.#description.keySize, this.#description.valueSize);
    return new MapContents(entries, this.#key, this.#value, this.#writes);
  }

  /**
   * Whether `contents` is still what the map holds as far as this handle
   * knows: no write went through it since that read. Writes by other
   * processes, or other handles on the same map, are not seen.
   */
  unchangedSince(contents: MapContents<K, V>): boolean {
    return contents.writesBefore === this.#writes;
  }

  /** Every key, collected before the caller changes the map. */
  keys(): K[] {
    const contents = this.read();
    return Array.from({ length: contents.count }, (_, i) => contents.key(i));
  }

  /**
   * `entries` encoded back to back, as a read of the map would hold them:
   * what a full sync compares with a read, without a Buffer per entry.
   */
  encodeAll(entries: readonly { readonly key: K; readonly value: V }[]): MapContents<K, V> {
    const keySize = this.#key.layout.size;
    const valueSize = this.#value.layout.size;
    const keys = Buffer.alloc(keySize * entries.length);
    const values = Buffer.alloc(valueSize * entries.length);
    entries.forEach(({ key, value }, i) => {
      this.#key.encode(key, keys, i * keySize);
      this.#value.encode(value, values, i * valueSize);
    });
    return new MapContents({ count: entries.length, keys, values }, this.#key, this.#value, this.#writes);
  }

  /** Every entry, decoded. */
  entries(): [K, V][] {
    const contents = this.read();
    return Array.from({ length: contents.count }, (_, i) => [contents.key(i), contents.value(i)]);
  }

  /** Creates or replaces entries in batches, encoding a batch at a time; returns how many. */
  upsert(entries: Iterable<readonly [K, V]>): number {
    let written = 0;
    let batch: (readonly [K, V])[] = [];
    const flush = (): void => {
      this.writeBatch(encodeArray(this.#key, batch.map(([key]) => key)), encodeArray(this.#value, batch.map(([, value]) => value)), batch.length);
      written += batch.length;
      batch = [];
    };
    for (const entry of entries) {
      batch.push(entry);
      if (batch.length === BATCH_ENTRIES) flush();
    }
    if (batch.length > 0) flush();
    return written;
  }

  /** Deletes the entries of `keys` in batches, skipping absent ones; returns how many were deleted. */
  remove(keys: Iterable<K>): number {
    return this.deleteEncoded([...keys].map((key) => this.#key.encode(key)));
  }

  /** An entry encoded as the kernel holds it. */
  encode(key: K, value: V): EncodedEntry {
    return { key: this.#key.encode(key), value: this.#value.encode(value) };
  }

  /** The map's `max_entries`, as loaded (a size override, or the size of the pinned map re-adopted). */
  get maxEntries(): number {
    return this.#description.maxEntries;
  }

  /** A key encoded as the kernel holds it. */
  encodeKey(key: K): Buffer {
    return this.#key.encode(key);
  }

  /** Writes encoded entries in batches; returns how many. */
  writeEncoded(entries: readonly EncodedEntry[]): number {
    for (let from = 0; from < entries.length; from += BATCH_ENTRIES) {
      const batch = entries.slice(from, from + BATCH_ENTRIES);
      this.writeBatch(Buffer.concat(batch.map((entry) => entry.key)), Buffer.concat(batch.map((entry) => entry.value)), batch.length);
    }
    return entries.length;
  }

  /** Deletes encoded keys in batches, skipping absent ones; returns how many were deleted. */
  deleteEncoded(keys: readonly Buffer[]): number {
    let deleted = 0;
    for (let from = 0; from < keys.length; from += BATCH_ENTRIES) {
      const batch = keys.slice(from, from + BATCH_ENTRIES);
      deleted += this.deleteBatch(Buffer.concat(batch), batch.length);
    }
    return deleted;
  }

  /** Writes `count` entries encoded back to back: every batch write goes through here. */
  protected writeBatch(keys: Buffer, values: Buffer, count: number): void {
    this.#writes++;
    try {
      mapUpdateBatch(this.#fd(), keys, values, count);
    } catch (error) {
      throw new DatapathError(`Cannot write ${count} entries to map "${this.name}" of ${this.#where}: ${describe(error)}`, { cause: error });
    }
  }

  /** Deletes `count` keys encoded back to back, skipping absent ones; every batch delete goes through here. */
  protected deleteBatch(keys: Buffer, count: number): number {
    this.#writes++;
    try {
      return mapDeleteBatch(this.#fd(), keys, count);
    } catch (error) {
      throw new DatapathError(`Cannot delete ${count} entries from map "${this.name}" of ${this.#where}: ${describe(error)}`, { cause: error });
    }
  }

  #fd(): number {
    this.#checkOpen();
    return this.#description.fd;
  }
}
