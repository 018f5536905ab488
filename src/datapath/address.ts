/**
 * IP addresses and CIDRs as the kernel maps store them: 4 or 16 raw bytes in
 * network order. The text side is the policy layer's (`policy/ip.ts`), so an
 * address read back from a map is spelled exactly as the compiler wrote it.
 *
 * @module
 */
import { addressBits, formatIp, ipToBytes, parseCidr as parseTextCidr, parseIp, type IpFamily } from "../policy/ip.ts";

/** An address family as keys store it (PAL_FAMILY_*). */
export type AddressFamily = IpFamily;

/** A parsed address: its family and 4 (IPv4) or 16 (IPv6) bytes. */
export interface ParsedAddress {
  family: AddressFamily;
  bytes: Buffer;
}

/** A parsed CIDR: the network address (host bits cleared) and the prefix length in address bits. */
export interface ParsedCidr extends ParsedAddress {
  prefixLen: number;
}

/**
 * Parses an IPv4 or IPv6 address.
 *
 * @example
 * ```ts
 * parseAddress("10.0.0.1"); // { family: 4, bytes: <0a 00 00 01> }
 * parseAddress("fd00::1").bytes.length; // 16
 * ```
 * @throws {IpParseError} when the text is not an address.
 */
export function parseAddress(text: string): ParsedAddress {
  const address = parseIp(text);
  return { family: address.family, bytes: Buffer.from(ipToBytes(address)) };
}

/**
 * Parses a CIDR (`10.0.0.0/8`, `fd00::/64`) or a bare address (a host prefix).
 * Host bits set in the address are cleared: `10.0.0.1/8` means `10.0.0.0/8`.
 *
 * @example
 * ```ts
 * parseCidr("10.1.2.3/8"); // { family: 4, bytes: <0a 00 00 00>, prefixLen: 8 }
 * ```
 * @throws {IpParseError} when the text is neither.
 */
export function parseCidr(text: string): ParsedCidr {
  if (!text.includes("/")) return { ...parseAddress(text), prefixLen: addressBits(parseIp(text).family) };
  const cidr = parseTextCidr(text);
  return { family: cidr.family, bytes: Buffer.from(ipToBytes({ family: cidr.family, value: cidr.network })), prefixLen: cidr.prefixLen };
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
  return formatIp({ family, value: BigInt(`0x${bytes.toString("hex")}`) });
}

/** Formats a CIDR as canonical `address/prefixLen` text. */
export function formatCidr(family: AddressFamily, bytes: Buffer, prefixLen: number): string {
  return `${formatAddress(family, bytes)}/${prefixLen}`;
}
