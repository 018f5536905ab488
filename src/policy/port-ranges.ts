/**
 * Port ranges as aligned prefixes of the 16-bit port space, the form the
 * policy LPM trie matches ports in.
 *
 * @module
 */

/** Bits in a port number. */
export const PORT_BITS = 16;

/** The largest port number. */
export const MAX_PORT = 0xffff;

/**
 * An aligned block of ports: those sharing the first `prefixLen` bits of
 * `port` (whose remaining bits are zero). `prefixLen` 0 is every port, 16 is
 * exactly `port`.
 */
export interface PortPrefix {
  port: number;
  prefixLen: number;
}

/** A port range that is not within 0..65535 or whose end is below its start. */
export class PortRangeError extends RangeError {
  override name = "PortRangeError";
}

/**
 * Decomposes the range [lo, hi] into the minimal list of aligned prefixes,
 * in ascending port order.
 *
 * @example
 * ```ts
 * portRangePrefixes(80, 80);    // [{ port: 80, prefixLen: 16 }]
 * portRangePrefixes(0, 65535);  // [{ port: 0, prefixLen: 0 }]
 * portRangePrefixes(8000, 8003); // [{ port: 8000, prefixLen: 14 }]
 * ```
 * @throws {PortRangeError} when the bounds are not ports or `hi < lo`.
 */
export function portRangePrefixes(lo: number, hi: number): PortPrefix[] {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > MAX_PORT || hi < lo) {
    throw new PortRangeError(`Cannot decompose port range [${lo}, ${hi}]: expected 0 <= lo <= hi <= ${MAX_PORT}`);
  }
  const out: PortPrefix[] = [];
  let start = lo;
  while (start <= hi) {
    // The largest block aligned at `start` that still ends within the range.
    let size = start === 0 ? 1 << PORT_BITS : start & -start;
    while (start + size - 1 > hi) size >>= 1;
    out.push({ port: start, prefixLen: PORT_BITS - Math.log2(size) });
    start += size;
  }
  // A copy of its exact size: an array grown by push keeps room for 16 more (~130 bytes), and every rule's port holds one.
  return out.slice();
}

/**
 * The first and last port of a prefix.
 *
 * @example
 * ```ts
 * portPrefixRange({ port: 8000, prefixLen: 14 }); // [8000, 8003]
 * ```
 */
export function portPrefixRange(prefix: PortPrefix): [lo: number, hi: number] {
  return [prefix.port, prefix.port + 2 ** (PORT_BITS - prefix.prefixLen) - 1];
}

/**
 * The prefix of length `prefixLen` that contains `port`.
 *
 * @example
 * ```ts
 * portPrefixOf(8002, 14); // { port: 8000, prefixLen: 14 }
 * ```
 */
export function portPrefixOf(port: number, prefixLen: number): PortPrefix {
  const hostBits = PORT_BITS - prefixLen;
  return { port: (port >>> hostBits) << hostBits, prefixLen };
}
