/**
 * An index of fixed-size keys held back to back in one buffer (a map read's
 * keys): where a key sits among them, found without a string or a Buffer
 * per key. A full sync compares about 200k entries read back with as many
 * desired ones; by the hex of each key that took more time and garbage than
 * reading the maps.
 *
 * @module
 */

/** FNV-1a over `size` bytes of `bytes` from `offset`. */
function hashBytes(bytes: Uint8Array, offset: number, size: number): number {
  let hash = 0x811c9dc5;
  for (let i = offset; i < offset + size; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}

/** Whether `size` bytes of `a` at `aOffset` equal those of `b` at `bOffset`. */
export function sameBytes(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number, size: number): boolean {
  for (let i = 0; i < size; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

/**
 * The positions of `count` keys of `keySize` bytes each, back to back in
 * `keys`, in an open-addressing hash table. A key present more than once (a
 * map read while it changed) is found at its last position.
 *
 * @example
 * ```ts
 * const index = new KeyIndex(contents.keys, 16, contents.count);
 * index.find(desired.key, 0); // its position in contents, or -1
 * ```
 */
export class KeyIndex {
  readonly #keys: Uint8Array;
  readonly #keySize: number;
  /** Position + 1 of the key whose hash probes to each slot; 0 for an empty slot. */
  readonly #slots: Int32Array;
  readonly #mask: number;

  constructor(keys: Uint8Array, keySize: number, count: number) {
    this.#keys = keys;
    this.#keySize = keySize;
    // At most half full, so that a probe ends after about two slots.
    let capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    this.#slots = new Int32Array(capacity);
    this.#mask = capacity - 1;
    for (let position = 0; position < count; position++) {
      const offset = position * keySize;
      let slot = hashBytes(keys, offset, keySize) & this.#mask;
      for (;;) {
        const held = this.#slots[slot]!;
        if (held === 0 || sameBytes(keys, (held - 1) * keySize, keys, offset, keySize)) break;
        slot = (slot + 1) & this.#mask;
      }
      this.#slots[slot] = position + 1;
    }
  }

  /** The position of the key at `offset` of `bytes` (of the index's key size), or -1 when the index does not hold it. */
  find(bytes: Uint8Array, offset: number): number {
    const size = this.#keySize;
    let slot = hashBytes(bytes, offset, size) & this.#mask;
    for (;;) {
      const held = this.#slots[slot]!;
      if (held === 0) return -1;
      if (sameBytes(this.#keys, (held - 1) * size, bytes, offset, size)) return held - 1;
      slot = (slot + 1) & this.#mask;
    }
  }

  /** Whether `position` is where the index finds its key: false for an earlier copy of a key present twice. */
  holds(position: number): boolean {
    return this.find(this.#keys, position * this.#keySize) === position;
  }
}
