/**
 * IPv4 and IPv6 addresses and CIDR prefixes as numbers: the one parser of
 * address text in Palisade (validation, the compiler, the datapath's codecs
 * and the tests all read addresses through it), canonical text, bytes in
 * network order, containment, and a longest-prefix-match set. Pure, so the
 * policy layer needs no `node:net`.
 *
 * @module
 */

/** An address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** An IP address: its family and its bits as an unsigned integer. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/**
 * A CIDR prefix in network form: host bits are always zero. An IPv4 network
 * is its 32 bits as a signed 32-bit integer, which V8 keeps in the object
 * itself: a bigint would be an object of its own (24 bytes) for each of the
 * 100k prefixes the compiler holds at scale. {@link networkAddress} gives it
 * as an address.
 */
export type Cidr = V4Cidr | V6Cidr;

/** An IPv4 {@link Cidr}. */
export interface V4Cidr {
  readonly family: 4;
  /** The network's bits as a signed 32-bit integer (`10.0.0.0` is 167772160, `192.168.0.0` is -1062731776). */
  readonly network: number;
  readonly prefixLen: number;
}

/** An IPv6 {@link Cidr}. */
export interface V6Cidr {
  readonly family: 6;
  /** The network's bits as an unsigned integer. */
  readonly network: bigint;
  readonly prefixLen: number;
}

/**
 * Text that is not a valid IP address or CIDR. `reason` says why, worded to
 * follow the text (validation quotes it in its own messages).
 *
 * @example
 * ```ts
 * try {
 *   parseCidr("10.0.0.0/33");
 * } catch (error) {
 *   if (error instanceof IpParseError) error.reason; // "prefix length 33 is above 32"
 * }
 * ```
 */
export class IpParseError extends Error {
  override name = "IpParseError";
  /** Why the text is not an address or CIDR, e.g. `prefix length 33 is above 32`. */
  readonly reason: string;

  constructor(what: "IP address" | "CIDR", text: string, reason: string, options?: ErrorOptions) {
    super(`Cannot parse ${what} ${JSON.stringify(text)}: ${reason}`, options);
    this.reason = reason;
  }
}

/** The number of address bits of a family: 32 or 128. */
export function addressBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4(text: string): bigint | undefined {
  // By character code, into a number (exact below 2^53) made a bigint once: a split, a regular expression per
  // octet and bigint shifts cost more than the rest of what the compiler does with each of 100k CIDRs.
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x2e) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (code >= 0x30 && code <= 0x39) {
      // Leading zeros are refused: some parsers read them as octal.
      if (digits > 0 && octet === 0) return undefined;
      octet = octet * 10 + (code - 0x30);
      digits++;
      if (octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (digits === 0 || dots !== 3) return undefined;
  return BigInt(value * 256 + octet);
}

function parseV6Groups(text: string, endsAddress: boolean): bigint[] | undefined {
  if (text === "") return [];
  const groups: bigint[] = [];
  const parts = text.split(":");
  for (const [i, part] of parts.entries()) {
    // An embedded IPv4 address may only end the whole address.
    if (endsAddress && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseV4(part);
      if (v4 === undefined) return undefined;
      groups.push(v4 >> 16n, v4 & 0xffffn);
    } else if (V6_GROUP.test(part)) {
      groups.push(BigInt(parseInt(part, 16)));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = parseV6Groups(halves[0] as string, halves.length === 1);
  const tail = halves.length === 2 ? parseV6Groups(halves[1] as string, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  let value = 0n;
  for (const group of [...head, ...Array<bigint>(missing).fill(0n), ...tail]) value = (value << 16n) | group;
  return value;
}

function tryParseIp(text: string): IpAddress | undefined {
  const family = text.includes(":") ? 6 : 4;
  const value = family === 6 ? parseV6(text) : parseV4(text);
  return value === undefined ? undefined : { family, value };
}

/**
 * Parses an IPv4 (dotted quad) or IPv6 (RFC 4291 text, with optional
 * embedded IPv4) address. Stricter than Go's parser on purpose: IPv4 parts
 * with leading zeros (octal or decimal?) and IPv6 zones are refused.
 *
 * @example
 * ```ts
 * parseIp("10.0.0.1"); // { family: 4, value: 167772161n }
 * ```
 * @throws {IpParseError} when the text is not an address.
 */
export function parseIp(text: string): IpAddress {
  const address = tryParseIp(text);
  if (address === undefined) throw new IpParseError("IP address", text, "not an IPv4 or IPv6 address");
  return address;
}

/**
 * The family of an address in text form: 4, 6, or 0 when {@link parseIp}
 * refuses the text.
 *
 * @example
 * ```ts
 * ipFamily("fd00::1"); // 6
 * ipFamily("010.0.0.1"); // 0
 * ```
 */
export function ipFamily(text: string): IpFamily | 0 {
  return tryParseIp(text)?.family ?? 0;
}

/**
 * The canonical text of a valid address (see {@link formatIp}), the form
 * every address takes inside Palisade.
 *
 * @example
 * ```ts
 * canonicalIp("FD00:0:0:0::0A"); // "fd00::a"
 * ```
 * @throws {IpParseError} when the text is not an address.
 */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}

function masksOf(family: IpFamily): bigint[] {
  const bits = BigInt(addressBits(family));
  return Array.from({ length: addressBits(family) + 1 }, (_, prefixLen) => ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefixLen))) - 1n));
}

// Computed once: containment tests run once per identity and prefix length in every compile.
const MASKS: Record<IpFamily, bigint[]> = { 4: masksOf(4), 6: masksOf(6) };

function maskOf(family: IpFamily, prefixLen: number): bigint {
  return MASKS[family][prefixLen] as bigint;
}

/** IPv4 masks as signed 32-bit integers (as a {@link V4Cidr} holds its network), by prefix length. */
const V4_MASKS = Array.from({ length: 33 }, (_, prefixLen) => (prefixLen === 0 ? 0 : -1 << (32 - prefixLen)));

/**
 * The CIDR of the first `prefixLen` bits of an address (its host bits cleared).
 *
 * @example
 * ```ts
 * formatCidr(cidrOf(parseIp("10.1.2.3"), 16)); // "10.1.0.0/16"
 * ```
 */
export function cidrOf(address: IpAddress, prefixLen: number): Cidr {
  if (address.family === 4) return { family: 4, network: Number(address.value) & (V4_MASKS[prefixLen] as number), prefixLen };
  return { family: 6, network: address.value & maskOf(6, prefixLen), prefixLen };
}

/**
 * The first address of a CIDR, its network's.
 *
 * @example
 * ```ts
 * networkAddress(parseCidr("192.168.1.7/16")); // { family: 4, value: 3232235520n }
 * ```
 */
export function networkAddress(cidr: Cidr): IpAddress {
  return cidr.family === 4 ? { family: 4, value: BigInt(cidr.network >>> 0) } : { family: 6, value: cidr.network };
}

/**
 * The single-address CIDR (/32 or /128) of an address.
 *
 * @example
 * ```ts
 * formatCidr(hostCidr(parseIp("fd00::1"))); // "fd00::1/128"
 * ```
 */
export function hostCidr(address: IpAddress): Cidr {
  return cidrOf(address, addressBits(address.family));
}

/**
 * Parses a CIDR such as `10.0.0.0/8` or `fd00::/64`. Host bits that are set
 * are cleared, as Kubernetes reads `10.0.0.1/8` as `10.0.0.0/8`.
 *
 * @example
 * ```ts
 * formatCidr(parseCidr("10.9.9.9/8")); // "10.0.0.0/8"
 * ```
 * @throws {IpParseError} when the text is not a CIDR; its `reason` says why.
 */
export function parseCidr(text: string): Cidr {
  const parts = text.split("/");
  const fail = (reason: string): IpParseError => new IpParseError("CIDR", text, reason);
  if (parts.length !== 2) throw fail("must be an address, a '/' and a prefix length");
  const [addressText = "", lengthText = ""] = parts;
  const address = tryParseIp(addressText);
  if (address === undefined) throw fail(`address ${JSON.stringify(addressText)} is not a valid IPv4 or IPv6 address`);
  if (!/^(0|[1-9][0-9]*)$/.test(lengthText)) throw fail(`prefix length ${JSON.stringify(lengthText)} is not a number without leading zeros`);
  const prefixLen = Number(lengthText);
  const bits = addressBits(address.family);
  if (prefixLen > bits) throw fail(`prefix length ${prefixLen} is above ${bits}`);
  return cidrOf(address, prefixLen);
}

/**
 * Whether `cidr` lies within the IPv4-mapped IPv6 addresses (::ffff:0:0/96).
 * Go, and so every Kubernetes component, reads such a CIDR written in a
 * policy as the IPv4 CIDR of the mapped addresses: a text two readers read
 * two ways.
 *
 * @example
 * ```ts
 * isIpv4MappedPrefix(parseCidr("::ffff:1.2.3.4/128")); // true
 * ```
 */
export function isIpv4MappedPrefix(cidr: Cidr): boolean {
  return cidr.family === 6 && cidr.prefixLen >= 96 && cidr.network >> 32n === 0xffffn;
}

/** An IPv4 address's four octets, from its 32 bits as a number (signed or not): a bigint shift per octet allocates, and every prefix is formatted at least once. */
function v4Octets(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function formatV4(value: number): string {
  return v4Octets(value).join(".");
}

function formatV6(value: bigint): string {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((value >> shift) & 0xffffn));
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/**
 * The canonical text of an address: dotted quad, or IPv6 as RFC 5952 §4
 * and the WHATWG URL standard write it (lowercase, no leading zeros, the
 * longest run of two or more zero groups compressed; IPv4-mapped addresses
 * in hex too), the form the rest of Palisade uses.
 *
 * @example
 * ```ts
 * formatIp(parseIp("FD00:0:0:0:0:0:0:01")); // "fd00::1"
 * ```
 */
export function formatIp(address: IpAddress): string {
  return address.family === 4 ? formatV4(Number(address.value)) : formatV6(address.value);
}

/**
 * The canonical text of a CIDR, e.g. `10.0.0.0/8`.
 *
 * @example
 * ```ts
 * formatCidr({ family: 6, network: 0n, prefixLen: 0 }); // "::/0"
 * ```
 */
export function formatCidr(cidr: Cidr): string {
  // join() makes one flat string; a template would make a rope of two, ~40 bytes more for each of 100k prefixes kept.
  return [cidr.family === 4 ? formatV4(cidr.network) : formatV6(cidr.network), cidr.prefixLen].join("/");
}

/**
 * The address as bytes in network order: 4 bytes for IPv4, 16 for IPv6.
 *
 * @example
 * ```ts
 * ipToBytes(parseIp("10.0.0.1")); // Uint8Array [10, 0, 0, 1]
 * ```
 */
export function ipToBytes(address: IpAddress): Uint8Array {
  if (address.family === 4) return Uint8Array.from(v4Octets(Number(address.value)));
  const length = addressBits(address.family) / 8;
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Number((address.value >> BigInt(8 * (length - 1 - i))) & 0xffn);
  return bytes;
}

/**
 * The address of 4 (IPv4) or 16 (IPv6) bytes in network order.
 *
 * @example
 * ```ts
 * formatIp(ipFromBytes(Uint8Array.of(10, 0, 0, 1))); // "10.0.0.1"
 * ```
 * @throws {RangeError} when there are neither 4 nor 16 bytes.
 */
export function ipFromBytes(bytes: Uint8Array): IpAddress {
  if (bytes.length !== 4 && bytes.length !== 16) throw new RangeError(`Cannot read an IP address from ${bytes.length} bytes: need 4 or 16`);
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return { family: bytes.length === 4 ? 4 : 6, value };
}

/**
 * Whether `outer` contains every address of `inner` (a prefix contains
 * itself). Prefixes of different families never contain each other.
 *
 * @example
 * ```ts
 * cidrContains(parseCidr("10.0.0.0/8"), parseCidr("10.1.0.0/16")); // true
 * ```
 */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.prefixLen > inner.prefixLen) return false;
  if (outer.family === 4) return inner.family === 4 && (inner.network & (V4_MASKS[outer.prefixLen] as number)) === outer.network;
  return inner.family === 6 && (inner.network & maskOf(6, outer.prefixLen)) === outer.network;
}

/**
 * Whether a CIDR contains an address.
 *
 * @example
 * ```ts
 * cidrContainsIp(parseCidr("10.0.0.0/8"), parseIp("10.2.3.4")); // true
 * ```
 */
export function cidrContainsIp(cidr: Cidr, address: IpAddress): boolean {
  return cidrContains(cidr, hostCidr(address));
}

/**
 * A map from CIDR prefixes to values answering longest-prefix-match and
 * containment queries (both ways), indexed by prefix length so a query costs one hash
 * lookup per distinct length, however many prefixes it holds. Values are never undefined.
 *
 * @example
 * ```ts
 * const map = new CidrMap<string>();
 * map.set(parseCidr("10.0.0.0/8"), "wide");
 * map.set(parseCidr("10.1.0.0/16"), "narrow");
 * map.longestPrefix(parseIp("10.1.2.3")); // 10.1.0.0/16
 * map.containing(parseCidr("10.1.2.0/24")); // ["narrow", "wide"]
 * map.inside(parseCidr("10.0.0.0/12")); // ["narrow"]
 * ```
 */
export class CidrMap<V> {
  // IPv4 networks are keyed by their bits as a signed 32-bit integer (as their Cidr holds them), which V8 keeps
  // unboxed, in a table of their own (see Int32Map); IPv6 ones by bigint in a Map. A bigint key costs an allocation per mask and per step
  // through a range, and the scale world's 100k prefixes are IPv4.
  readonly #byLength: Record<IpFamily, Map<number, Networks<V>>> = { 4: new Map(), 6: new Map() };
  /** Distinct prefix lengths per family, longest first. */
  readonly #lengths: Record<IpFamily, number[]> = { 4: [], 6: [] };
  #size = 0;

  /** Sets the value of a prefix. */
  set(cidr: Cidr, value: V): void {
    const byLength = this.#byLength[cidr.family];
    let networks = byLength.get(cidr.prefixLen);
    if (!networks) {
      networks = cidr.family === 4 ? new Int32Map<V>() : new Map<NetworkKey, V>();
      byLength.set(cidr.prefixLen, networks);
      this.#lengths[cidr.family] = [...byLength.keys()].sort((a, b) => b - a);
    }
    const key = cidr.network;
    if (!networks.has(key)) this.#size++;
    networks.set(key, value);
  }

  /** The value of exactly this prefix. */
  get(cidr: Cidr): V | undefined {
    return this.#byLength[cidr.family].get(cidr.prefixLen)?.get(cidr.network);
  }

  /** Removes a prefix (no-op if absent). */
  delete(cidr: Cidr): void {
    const byLength = this.#byLength[cidr.family];
    const networks = byLength.get(cidr.prefixLen);
    if (!networks?.delete(cidr.network)) return;
    this.#size--;
    if (networks.size > 0) return;
    byLength.delete(cidr.prefixLen);
    this.#lengths[cidr.family] = [...byLength.keys()].sort((a, b) => b - a);
  }

  /** Whether the map holds no prefix. */
  get empty(): boolean {
    return this.#size === 0;
  }

  /** How many prefixes the map holds. */
  get size(): number {
    return this.#size;
  }

  /** The values of every prefix, in no particular order. */
  values(): V[] {
    const out: V[] = [];
    for (const family of [4, 6] as const) for (const networks of this.#byLength[family].values()) networks.forEach((value) => out.push(value));
    return out;
  }

  /** The longest prefix held containing the address, if any: a fresh object, so no map needs to hold the prefix as its value. */
  longestPrefix(address: IpAddress): Cidr | undefined {
    const byLength = this.#byLength[address.family];
    const value = addressKey(address);
    for (const length of this.#lengths[address.family]) {
      if (byLength.get(length)?.has(maskKey(address.family, value, length))) return cidrOf(address, length);
    }
    return undefined;
  }

  /** The values of every prefix containing `cidr` (itself included), longest first. */
  containing(cidr: Cidr): V[] {
    const byLength = this.#byLength[cidr.family];
    const network = cidr.network;
    const out: V[] = [];
    for (const length of this.#lengths[cidr.family]) {
      if (length > cidr.prefixLen) continue;
      const found = byLength.get(length)?.get(maskKey(cidr.family, network, length));
      if (found !== undefined) out.push(found);
    }
    return out;
  }

  /**
   * The values of every prefix inside `cidr` (itself included) and inside
   * none of `outside`, in no particular order. Per prefix length it looks up
   * each network of that length under `cidr` or visits every prefix of that
   * length, whichever is fewer: a /28 costs 16 lookups among 100k /32s, a /0
   * one pass over them.
   */
  inside(cidr: Cidr, outside: readonly Cidr[] = []): V[] {
    const byLength = this.#byLength[cidr.family];
    const bits = addressBits(cidr.family);
    const network = cidr.network;
    const out: V[] = [];
    for (const length of this.#lengths[cidr.family]) {
      if (length < cidr.prefixLen) continue;
      const networks = byLength.get(length) as Networks<V>;
      const span = length - cidr.prefixLen;
      if (span < 31 && 2 ** span <= networks.size) {
        const count = 2 ** span;
        if (typeof network === "number") {
          const step = 2 ** (bits - length);
          for (let i = 0; i < count; i++) {
            const key = (network + i * step) | 0;
            const found = networks.get(key);
            if (found !== undefined && !withinAny(outside, cidr.family, key, length)) out.push(found);
          }
        } else {
          const step = 1n << BigInt(bits - length);
          for (let i = 0, key = network; i < count; i++, key += step) {
            const found = networks.get(key);
            if (found !== undefined && !withinAny(outside, cidr.family, key, length)) out.push(found);
          }
        }
        continue;
      }
      networks.forEach((value, key) => {
        if (maskKey(cidr.family, key, cidr.prefixLen) === network && !withinAny(outside, cidr.family, key, length)) out.push(value);
      });
    }
    return out;
  }
}

/** A network as a {@link CidrMap} keys it: a signed 32-bit integer for IPv4, a bigint for IPv6. */
type NetworkKey = number | bigint;

/** The networks of one family and prefix length in a {@link CidrMap}, and their values: what it asks of a Map. */
interface Networks<V> {
  readonly size: number;
  get(key: NetworkKey): V | undefined;
  has(key: NetworkKey): boolean;
  set(key: NetworkKey, value: V): unknown;
  delete(key: NetworkKey): boolean;
  forEach(visit: (value: V, key: NetworkKey) => void): void;
}

/**
 * The multiplier of {@link Int32Map}'s hash (multiply-shift: the top bits of
 * the key times an odd number), chosen at random per process: networks are
 * policy authors' input, and with a multiplier they knew they could aim them
 * all at one slot, making every lookup a walk through all of them.
 */
const HASH_MULTIPLIER = (crypto.getRandomValues(new Int32Array(1))[0] as number) | 1;

/**
 * Values by signed 32-bit integer key: a hash table with linear probing over
 * a typed array of keys. A Map entry costs ~46 bytes, and at scale four
 * CidrMaps hold the same 100k prefixes (each IPv4 prefix length's networks in
 * one of these) and the ipcache compiler numbers 100k prefix identities; a
 * slot here costs 12 (its key and its value), with 4/3 to 8/3 slots per key as
 * the table grows (up to 8 after removals, then it halves). A slot is free
 * when its value is undefined, so it holds no undefined value.
 *
 * @example
 * ```ts
 * const table = new Int32Map<string>();
 * table.set(0xffff_ffff | 0, "last"); // an unsigned number taken as its signed 32 bits
 * table.get(-1); // "last"
 * ```
 */
export class Int32Map<V> implements Networks<V> {
  #keys = new Int32Array(8);
  #values: (V | undefined)[] = new Array<V | undefined>(8).fill(undefined);
  /** 32 less log2 of the slots: a key's home slot is the top bits of its hash. */
  #shift = 29;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(key: NetworkKey): V | undefined {
    return this.#values[this.#slot(key as number)];
  }

  has(key: NetworkKey): boolean {
    return this.#values[this.#slot(key as number)] !== undefined;
  }

  set(key: NetworkKey, value: V): void {
    const slot = this.#slot(key as number);
    if (this.#values[slot] === undefined) {
      this.#size++;
      this.#keys[slot] = key as number;
    }
    this.#values[slot] = value;
    if (this.#size * 4 > this.#values.length * 3) this.#resize(this.#values.length * 2);
  }

  delete(key: NetworkKey): boolean {
    let hole = this.#slot(key as number);
    const values = this.#values;
    if (values[hole] === undefined) return false;
    values[hole] = undefined;
    this.#size--;
    // Backward-shift deletion: a later key of the run whose home is not between the hole and it moves into the hole,
    // so every lookup still finds its key before a free slot.
    const mask = values.length - 1;
    for (let next = (hole + 1) & mask; values[next] !== undefined; next = (next + 1) & mask) {
      const home = this.#home(this.#keys[next] as number);
      if (((next - home) & mask) < ((next - hole) & mask)) continue;
      this.#keys[hole] = this.#keys[next] as number;
      values[hole] = values[next];
      values[next] = undefined;
      hole = next;
    }
    if (this.#size * 8 < values.length && values.length > 8) this.#resize(values.length / 2);
    return true;
  }

  forEach(visit: (value: V, key: NetworkKey) => void): void {
    const values = this.#values;
    for (let slot = 0; slot < values.length; slot++) {
      const value = values[slot];
      if (value !== undefined) visit(value, this.#keys[slot] as number);
    }
  }

  #home(key: number): number {
    return Math.imul(key, HASH_MULTIPLIER) >>> this.#shift;
  }

  /** The slot holding `key`, or the free one where it would go. */
  #slot(key: number): number {
    const mask = this.#values.length - 1;
    let slot = this.#home(key);
    while (this.#values[slot] !== undefined && this.#keys[slot] !== key) slot = (slot + 1) & mask;
    return slot;
  }

  #resize(slots: number): void {
    const keys = this.#keys;
    const values = this.#values;
    this.#keys = new Int32Array(slots);
    this.#values = new Array<V | undefined>(slots).fill(undefined);
    this.#shift = 32 - Math.log2(slots);
    for (let slot = 0; slot < values.length; slot++) {
      const value = values[slot];
      if (value === undefined) continue;
      const to = this.#slot(keys[slot] as number);
      this.#keys[to] = keys[slot] as number;
      this.#values[to] = value;
    }
  }
}

/** An address's bits as a {@link CidrMap} keys a network: as its {@link Cidr} holds them. */
function addressKey(address: IpAddress): NetworkKey {
  return address.family === 4 ? Number(address.value) | 0 : address.value;
}

/** Whether one of `outer` contains the prefix of `family` keyed `key` at `prefixLen`, without making its {@link Cidr}. */
function withinAny(outer: readonly Cidr[], family: IpFamily, key: NetworkKey, prefixLen: number): boolean {
  return outer.some((o) => o.family === family && o.prefixLen <= prefixLen && maskKey(family, key, o.prefixLen) === o.network);
}

/** The first `prefixLen` bits of a network key, as a key. */
function maskKey(family: IpFamily, key: NetworkKey, prefixLen: number): NetworkKey {
  return family === 4 ? (key as number) & (V4_MASKS[prefixLen] as number) : (key as bigint) & maskOf(family, prefixLen);
}

