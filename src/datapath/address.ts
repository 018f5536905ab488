/**
 * IP addresses and CIDRs as the kernel maps store them: 4 or 16 raw bytes in
 * network order. Parsing is strict (what `node:net` calls an IP, plus a prefix
 * length); formatting is canonical (dotted quad, RFC 5952 for IPv6), so text
 * read back from a map compares equal to the canonical text it came from.
 *
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";

/** An address family as keys store it (PAL_FAMILY_*). */
export type AddressFamily = 4 | 6;

/** A parsed address: its family and 4 (IPv4) or 16 (IPv6) bytes. */
export interface ParsedAddress {
  family: AddressFamily;
  bytes: Buffer;
}

/** A parsed CIDR: the network address (host bits cleared) and the prefix length in address bits. */
export interface ParsedCidr extends ParsedAddress {
  prefixLen: number;
}

/** Text that is not an IP address or CIDR. */
export class AddressParseError extends Error {
  override name = "AddressParseError";
}

/**
 * Parses an IPv4 or IPv6 address.
 *
 * @example
 * ```ts
 * parseAddress("10.0.0.1"); // { family: 4, bytes: <0a 00 00 01> }
 * parseAddress("fd00::1").bytes.length; // 16
 * ```
 */
export function parseAddress(text: string): ParsedAddress {
  if (isIPv4(text)) return { family: 4, bytes: Buffer.from(text.split(".").map(Number)) };
  if (isIPv6(text)) return { family: 6, bytes: parseIPv6(text) };
  throw new AddressParseError(`Cannot parse address "${text}": not an IPv4 or IPv6 address`);
}

function parseIPv6(text: string): Buffer {
  const bytes = Buffer.alloc(16);
  let body = text.replace(/%.*$/, "");
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (dotted?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split(".").map(Number);
    body = body.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = body.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...headGroups, ...new Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  groups.forEach((group, i) => bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2));
  return bytes;
}

/**
 * Parses a CIDR (`10.0.0.0/8`, `fd00::/64`) or a bare address (a host prefix).
 * Host bits set in the address are cleared: `10.0.0.1/8` means `10.0.0.0/8`.
 *
 * @example
 * ```ts
 * parseCidr("10.1.2.3/8"); // { family: 4, bytes: <0a 00 00 00>, prefixLen: 8 }
 * ```
 */
export function parseCidr(text: string): ParsedCidr {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  let address: ParsedAddress;
  try {
    address = parseAddress(addressText);
  } catch (error) {
    throw new AddressParseError(`Cannot parse CIDR "${text}": "${addressText}" is not an IPv4 or IPv6 address`, { cause: error });
  }
  const maxBits = address.bytes.length * 8;
  const lengthText = slash < 0 ? String(maxBits) : text.slice(slash + 1);
  const prefixLen = Number(lengthText);
  if (!/^\d{1,3}$/.test(lengthText) || prefixLen > maxBits) {
    throw new AddressParseError(`Cannot parse CIDR "${text}": prefix length "${lengthText}" is not between 0 and ${maxBits}`);
  }
  return { family: address.family, bytes: maskBytes(address.bytes, prefixLen), prefixLen };
}

/** A copy of `bytes` with every bit after the first `prefixLen` cleared. */
export function maskBytes(bytes: Buffer, prefixLen: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, prefixLen - i * 8));
    out[i] = (out[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/**
 * Formats 4 or 16 address bytes as canonical text.
 *
 * @example
 * ```ts
 * formatAddress(4, Buffer.from([10, 0, 0, 1])); // "10.0.0.1"
 * formatAddress(6, parseAddress("fd00:0:0::1").bytes); // "fd00::1"
 * ```
 */
export function formatAddress(family: AddressFamily, bytes: Buffer): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // RFC 5952: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Formats a CIDR as canonical `address/prefixLen` text. */
export function formatCidr(family: AddressFamily, bytes: Buffer, prefixLen: number): string {
  return `${formatAddress(family, bytes)}/${prefixLen}`;
}
