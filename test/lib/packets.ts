/**
 * Ethernet frames for tests and benchmarks, built byte by byte with correct
 * checksums: IPv4 (options, fragments), IPv6 (hop-by-hop, routing and
 * destination-options headers, fragment header), TCP, UDP, SCTP (INIT or
 * DATA chunk, CRC32c), ICMP and ICMPv6 echo and errors that carry the
 * original packet, plus ARP for non-IP frames.
 *
 * @module
 */
import { ipToBytes, parseIp, type IpFamily } from "../../src/policy/ip.ts";

/** Protocols a packet can carry. `ICMP` with IPv6 addresses means ICMPv6. */
export type PacketProtocolName = "TCP" | "UDP" | "SCTP" | "ICMP" | "ICMPv6";

/** TCP flags by name. */
export type TcpFlagName = "fin" | "syn" | "rst" | "psh" | "ack" | "urg";

/** ICMP and ICMPv6 message types this builder knows. */
export type IcmpKind = "echo-request" | "echo-reply" | "dest-unreachable" | "time-exceeded" | "packet-too-big";

/** IPv6 extension headers the builder can insert before the transport header. */
export type ExtensionHeaderName = "hop-by-hop" | "routing" | "dest-options";

/** Fragment placement: byte offset of this fragment's data (a multiple of 8) and the more-fragments flag. */
export interface FragmentSpec {
  offset: number;
  more: boolean;
  /** IPv4: 16-bit identification; IPv6: 32-bit fragment header id. Default 0x4242. */
  id?: number;
}

/** What {@link buildPacket} puts on the wire. */
export interface PacketSpec {
  /** Inferred from `src` when absent. */
  family?: IpFamily;
  src: string;
  dst: string;
  protocol: PacketProtocolName;
  /** TCP/UDP/SCTP source port; for an ICMP echo request, the identifier when `icmpId` is absent. */
  sport?: number;
  /** TCP/UDP/SCTP destination port; for an ICMP echo reply, the identifier when `icmpId` is absent. */
  dport?: number;
  /** Default `["syn"]`. */
  tcpFlags?: readonly TcpFlagName[];
  tcpSeq?: number;
  tcpAck?: number;
  /** Default `echo-request`. */
  icmpType?: IcmpKind;
  icmpCode?: number;
  icmpId?: number;
  icmpSeq?: number;
  /** For ICMP errors: the original packet the error reports (same family). */
  inner?: PacketSpec;
  /** Bytes of the inner IP packet to include; default header + 8 bytes (IPv4, RFC 792) or all of it (IPv6). */
  innerLength?: number;
  /** Makes this a fragment: offset 0 carries the transport header, later ones only `payload`. */
  fragment?: FragmentSpec;
  /** Raw IPv4 options, padded with end-of-options to a multiple of 4 bytes (at most 40). */
  ipOptions?: Buffer;
  /** IPv6 extension headers, in this order, before the fragment header (if any) and transport. */
  extensionHeaders?: readonly ExtensionHeaderName[];
  payload?: Buffer;
  ttl?: number;
  /** IPv4 identification when not a fragment. Default 0. */
  ipId?: number;
  srcMac?: string;
  dstMac?: string;
}

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_ARP = 0x0806;
const DEFAULT_SRC_MAC = "02:00:00:00:00:01";
const DEFAULT_DST_MAC = "02:00:00:00:00:02";
const DEFAULT_FRAGMENT_ID = 0x4242;

/** IANA protocol numbers. */
export const IPPROTO = { HOPOPTS: 0, ICMP: 1, TCP: 6, UDP: 17, ROUTING: 43, FRAGMENT: 44, ICMPV6: 58, DSTOPTS: 60, SCTP: 132 } as const;

const TCP_FLAG_BITS: Record<TcpFlagName, number> = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20 };

const ICMP4_TYPES: Record<IcmpKind, number> = { "echo-reply": 0, "dest-unreachable": 3, "time-exceeded": 11, "echo-request": 8, "packet-too-big": 3 };
const ICMP6_TYPES: Record<IcmpKind, number> = { "dest-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "echo-request": 128, "echo-reply": 129 };

const EXTENSION_NUMBERS: Record<ExtensionHeaderName, number> = { "hop-by-hop": IPPROTO.HOPOPTS, routing: IPPROTO.ROUTING, "dest-options": IPPROTO.DSTOPTS };

/** A spec the builder cannot turn into a packet (mixed families, misaligned fragment offset, ...). */
export class PacketSpecError extends Error {
  override name = "PacketSpecError";
}

/**
 * The Internet checksum (RFC 1071) over the concatenation of `parts`: the
 * ones' complement of the ones' complement sum of 16-bit big-endian words.
 */
export function internetChecksum(...parts: Buffer[]): number {
  const data = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += (data[data.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32c (Castagnoli), as SCTP uses it (RFC 9260 appendix A). */
export function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function macBytes(mac: string): Buffer {
  const bytes = Buffer.from(mac.split(":").map((part) => Number.parseInt(part, 16)));
  if (bytes.length !== 6) throw new PacketSpecError(`Cannot build frame: MAC address "${mac}" is not six colon-separated bytes`);
  return bytes;
}

/** An Ethernet II frame around `payload`. */
export function buildEthernetFrame(ethertype: number, payload: Buffer, srcMac = DEFAULT_SRC_MAC, dstMac = DEFAULT_DST_MAC): Buffer {
  const header = Buffer.alloc(14);
  macBytes(dstMac).copy(header, 0);
  macBytes(srcMac).copy(header, 6);
  header.writeUInt16BE(ethertype, 12);
  return Buffer.concat([header, payload]);
}

/** An ARP request frame (a non-IP frame): who has `targetIp`, tell `senderIp`. */
export function buildArpRequest(senderIp: string, targetIp: string, srcMac = DEFAULT_SRC_MAC): Buffer {
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0); // Ethernet
  arp.writeUInt16BE(ETH_P_IP, 2);
  arp[4] = 6;
  arp[5] = 4;
  arp.writeUInt16BE(1, 6); // request
  macBytes(srcMac).copy(arp, 8);
  arp.set(ipToBytes(parseIp(senderIp)), 14);
  arp.set(ipToBytes(parseIp(targetIp)), 24);
  return buildEthernetFrame(ETH_P_ARP, arp, srcMac, "ff:ff:ff:ff:ff:ff");
}

interface Resolved {
  family: IpFamily;
  src: Buffer;
  dst: Buffer;
  protocolNumber: number;
}

function resolve(spec: PacketSpec): Resolved {
  const src = parseIp(spec.src);
  const dst = parseIp(spec.dst);
  const family = spec.family ?? src.family;
  if (src.family !== family || dst.family !== family) {
    throw new PacketSpecError(`Cannot build packet from "${spec.src}" to "${spec.dst}": addresses are not both IPv${family}`);
  }
  const protocolNumber =
    spec.protocol === "TCP" ? IPPROTO.TCP
    : spec.protocol === "UDP" ? IPPROTO.UDP
    : spec.protocol === "SCTP" ? IPPROTO.SCTP
    : family === 6 ? IPPROTO.ICMPV6
    : IPPROTO.ICMP;
  if (spec.protocol === "ICMPv6" && family === 4) {
    throw new PacketSpecError(`Cannot build packet from "${spec.src}": ICMPv6 needs IPv6 addresses`);
  }
  return { family, src: Buffer.from(ipToBytes(src)), dst: Buffer.from(ipToBytes(dst)), protocolNumber };
}

function pseudoHeader(r: Resolved, length: number): Buffer {
  if (r.family === 4) {
    const header = Buffer.alloc(12);
    r.src.copy(header, 0);
    r.dst.copy(header, 4);
    header[9] = r.protocolNumber;
    header.writeUInt16BE(length, 10);
    return header;
  }
  const header = Buffer.alloc(40);
  r.src.copy(header, 0);
  r.dst.copy(header, 16);
  header.writeUInt32BE(length, 32);
  header[39] = r.protocolNumber;
  return header;
}

function port(value: number | undefined, fallback: number): number {
  return value ?? fallback;
}

function buildTcp(spec: PacketSpec, r: Resolved): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(port(spec.sport, 40000), 0);
  header.writeUInt16BE(port(spec.dport, 80), 2);
  header.writeUInt32BE((spec.tcpSeq ?? 1000) >>> 0, 4);
  header.writeUInt32BE((spec.tcpAck ?? 0) >>> 0, 8);
  header[12] = 5 << 4;
  header[13] = (spec.tcpFlags ?? ["syn"]).reduce((bits, flag) => bits | TCP_FLAG_BITS[flag], 0);
  header.writeUInt16BE(65535, 14);
  const segment = Buffer.concat([header, payload]);
  segment.writeUInt16BE(internetChecksum(pseudoHeader(r, segment.length), segment), 16);
  return segment;
}

function buildUdp(spec: PacketSpec, r: Resolved): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const datagram = Buffer.concat([Buffer.alloc(8), payload]);
  datagram.writeUInt16BE(port(spec.sport, 40000), 0);
  datagram.writeUInt16BE(port(spec.dport, 53), 2);
  datagram.writeUInt16BE(datagram.length, 4);
  // A computed 0 is sent as 0xffff: 0 means "no checksum" (forbidden over IPv6).
  datagram.writeUInt16BE(internetChecksum(pseudoHeader(r, datagram.length), datagram) || 0xffff, 6);
  return datagram;
}

function pad4(data: Buffer): Buffer {
  return data.length % 4 === 0 ? data : Buffer.concat([data, Buffer.alloc(4 - (data.length % 4))]);
}

function buildSctp(spec: PacketSpec): Buffer {
  const common = Buffer.alloc(12);
  common.writeUInt16BE(port(spec.sport, 40000), 0);
  common.writeUInt16BE(port(spec.dport, 9000), 2);
  let chunk: Buffer;
  if (spec.payload === undefined) {
    // INIT opens an association; its packet carries verification tag 0.
    chunk = Buffer.alloc(20);
    chunk[0] = 1;
    chunk.writeUInt16BE(20, 2);
    chunk.writeUInt32BE(0x11223344, 4); // initiate tag
    chunk.writeUInt32BE(65535, 8); // a_rwnd
    chunk.writeUInt16BE(1, 12); // outbound streams
    chunk.writeUInt16BE(1, 14); // inbound streams
    chunk.writeUInt32BE(1, 16); // initial TSN
  } else {
    common.writeUInt32BE(0x11223344, 4);
    const header = Buffer.alloc(16);
    header[0] = 0; // DATA
    header[1] = 0x03; // beginning and end of a user message
    header.writeUInt16BE(16 + spec.payload.length, 2);
    header.writeUInt32BE(1, 4); // TSN
    chunk = pad4(Buffer.concat([header, spec.payload]));
  }
  const packet = Buffer.concat([common, chunk]);
  // SCTP stores the CRC32c least significant byte first (RFC 9260 appendix A).
  packet.writeUInt32LE(crc32c(packet), 8);
  return packet;
}

function buildIcmp(spec: PacketSpec, r: Resolved): Buffer {
  const kind = spec.icmpType ?? "echo-request";
  const v6 = r.family === 6;
  const header = Buffer.alloc(8);
  header[0] = (v6 ? ICMP6_TYPES : ICMP4_TYPES)[kind];
  header[1] = spec.icmpCode ?? (kind === "dest-unreachable" ? (v6 ? 4 : 3) : kind === "packet-too-big" && !v6 ? 4 : 0);
  let body: Buffer;
  if (kind === "echo-request" || kind === "echo-reply") {
    header.writeUInt16BE(spec.icmpId ?? (kind === "echo-request" ? spec.sport : spec.dport) ?? 0x1234, 4);
    header.writeUInt16BE(spec.icmpSeq ?? 1, 6);
    body = spec.payload ?? Buffer.alloc(0);
  } else {
    if (spec.inner === undefined) throw new PacketSpecError(`Cannot build ICMP ${kind} from "${spec.src}": inner (the original packet) is required`);
    if (kind === "packet-too-big") {
      if (v6) header.writeUInt32BE(1280, 4);
      else header.writeUInt16BE(1280, 6); // "fragmentation needed" carries the next-hop MTU
    }
    const inner = buildIpPacket({ ...spec.inner, family: r.family });
    const innerHeaderLength = v6 ? inner.length : ((inner[0] ?? 0x45) & 0x0f) * 4;
    body = inner.subarray(0, Math.min(inner.length, spec.innerLength ?? (v6 ? inner.length : innerHeaderLength + 8)));
  }
  const message = Buffer.concat([header, body]);
  message.writeUInt16BE(v6 ? internetChecksum(pseudoHeader(r, message.length), message) : internetChecksum(message), 2);
  return message;
}

function buildTransport(spec: PacketSpec, r: Resolved): Buffer {
  switch (r.protocolNumber) {
    case IPPROTO.TCP:
      return buildTcp(spec, r);
    case IPPROTO.UDP:
      return buildUdp(spec, r);
    case IPPROTO.SCTP:
      return buildSctp(spec);
    default:
      return buildIcmp(spec, r);
  }
}

function ipv4Header(spec: PacketSpec, r: Resolved, payloadLength: number, fragment: FragmentSpec | undefined): Buffer {
  const options = spec.ipOptions === undefined ? Buffer.alloc(0) : pad4(spec.ipOptions);
  if (options.length > 40) throw new PacketSpecError(`Cannot build IPv4 packet from "${spec.src}": ${options.length} bytes of options exceed 40`);
  const header = Buffer.alloc(20 + options.length);
  header[0] = 0x40 | (header.length / 4);
  header.writeUInt16BE(header.length + payloadLength, 2);
  header.writeUInt16BE(fragment === undefined ? (spec.ipId ?? 0) : (fragment.id ?? DEFAULT_FRAGMENT_ID) & 0xffff, 4);
  const flagsOffset = fragment === undefined ? 0 : (fragment.more ? 0x2000 : 0) | (fragment.offset / 8);
  header.writeUInt16BE(flagsOffset, 6);
  header[8] = spec.ttl ?? 64;
  header[9] = r.protocolNumber;
  r.src.copy(header, 12);
  r.dst.copy(header, 16);
  options.copy(header, 20);
  header.writeUInt16BE(internetChecksum(header), 10);
  return header;
}

function ipv6Headers(spec: PacketSpec, r: Resolved, payloadLength: number, fragment: FragmentSpec | undefined): Buffer {
  const chain: { number: number; bytes: Buffer }[] = (spec.extensionHeaders ?? []).map((name) => {
    const bytes = Buffer.alloc(8);
    if (name === "routing") {
      bytes[2] = 0; // routing type 0 with no segments left: parsed, never acted on
    } else {
      bytes[2] = 1; // PadN option filling the header's 6 option bytes
      bytes[3] = 4;
    }
    return { number: EXTENSION_NUMBERS[name], bytes };
  });
  if (fragment !== undefined) {
    const bytes = Buffer.alloc(8);
    bytes.writeUInt16BE(((fragment.offset / 8) << 3) | (fragment.more ? 1 : 0), 2);
    bytes.writeUInt32BE((fragment.id ?? DEFAULT_FRAGMENT_ID) >>> 0, 4);
    chain.push({ number: IPPROTO.FRAGMENT, bytes });
  }
  chain.forEach((header, i) => {
    header.bytes[0] = chain[i + 1]?.number ?? r.protocolNumber;
  });
  const extensions = Buffer.concat(chain.map((h) => h.bytes));
  const fixed = Buffer.alloc(40);
  fixed.writeUInt32BE(0x60000000, 0);
  fixed.writeUInt16BE(extensions.length + payloadLength, 4);
  fixed[6] = chain[0]?.number ?? r.protocolNumber;
  fixed[7] = spec.ttl ?? 64;
  r.src.copy(fixed, 8);
  r.dst.copy(fixed, 24);
  return Buffer.concat([fixed, extensions]);
}

function checkFragment(spec: PacketSpec, fragment: FragmentSpec): void {
  if (fragment.offset % 8 !== 0 || fragment.offset < 0 || fragment.offset > 0xfff8) {
    throw new PacketSpecError(`Cannot build fragment from "${spec.src}": offset ${fragment.offset} is not a multiple of 8 below 65536`);
  }
}

function ipPacket(spec: PacketSpec, r: Resolved, data: Buffer, fragment: FragmentSpec | undefined): Buffer {
  const header = r.family === 4 ? ipv4Header(spec, r, data.length, fragment) : ipv6Headers(spec, r, data.length, fragment);
  return Buffer.concat([header, data]);
}

/** The IP packet (no Ethernet header) of `spec`. */
export function buildIpPacket(spec: PacketSpec): Buffer {
  const r = resolve(spec);
  if (spec.fragment !== undefined) checkFragment(spec, spec.fragment);
  const data = spec.fragment !== undefined && spec.fragment.offset > 0 ? (spec.payload ?? Buffer.alloc(8)) : buildTransport(spec, r);
  return ipPacket(spec, r, data, spec.fragment);
}

/**
 * An Ethernet frame carrying `spec`. Ports default to 40000 -> 80 (TCP),
 * 53 (UDP), 9000 (SCTP); TCP flags to SYN; ICMP to an echo request.
 *
 * @example
 * ```ts
 * const syn = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", protocol: "TCP", sport: 40000, dport: 80 });
 * const reply = buildPacket({ src: "10.0.0.2", dst: "10.0.0.1", protocol: "TCP", sport: 80, dport: 40000, tcpFlags: ["syn", "ack"] });
 * const later = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", protocol: "UDP", fragment: { offset: 16, more: false }, payload: Buffer.alloc(8) });
 * ```
 */
export function buildPacket(spec: PacketSpec): Buffer {
  const ip = buildIpPacket(spec);
  const family = resolve(spec).family;
  return buildEthernetFrame(family === 4 ? ETH_P_IP : ETH_P_IPV6, ip, spec.srcMac, spec.dstMac);
}

/**
 * One datagram split into real fragments: the whole transport segment (with
 * its checksum over all of it) cut into pieces of `fragmentSize` bytes (a
 * multiple of 8), as Ethernet frames in order.
 */
export function buildFragments(spec: PacketSpec, fragmentSize: number, id = DEFAULT_FRAGMENT_ID): Buffer[] {
  if (fragmentSize <= 0 || fragmentSize % 8 !== 0) {
    throw new PacketSpecError(`Cannot fragment packet from "${spec.src}": fragment size ${fragmentSize} is not a positive multiple of 8`);
  }
  const r = resolve(spec);
  const segment = buildTransport(spec, r);
  const frames: Buffer[] = [];
  for (let offset = 0; offset < segment.length; offset += fragmentSize) {
    const data = segment.subarray(offset, offset + fragmentSize);
    const fragment = { offset, more: offset + fragmentSize < segment.length, id };
    frames.push(buildEthernetFrame(r.family === 4 ? ETH_P_IP : ETH_P_IPV6, ipPacket(spec, r, data, fragment), spec.srcMac, spec.dstMac));
  }
  return frames;
}
