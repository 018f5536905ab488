/**
 * The packet builder against reference frames generated once with Scapy 2.5
 * (Debian's python3-scapy) for the same headers, plus checksum vectors from
 * the RFCs, so a checksum or layout mistake cannot hide behind the builder
 * agreeing with itself.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildArpRequest,
  buildFragments,
  buildIpPacket,
  buildPacket,
  crc32c,
  internetChecksum,
  PacketSpecError,
  type PacketSpec,
} from "./packets.ts";

const SCAPY: Record<string, string> = {
  "tcp4-syn": "02000000000202000000000108004500002800000000400666ce0a0000010a0000029c400050000003e8000000005002fffffb670000",
  "tcp4-options": "02000000000202000000000108004600002c000000004006d1c50a0000010a000002940400009c400050000003e8000000005002fffffb670000",
  "udp6-exthdrs":
    "02000000000202000000000186dd60000000001d0040fd000000000000000000000000000001fd0000000000000000000000000000023c0001040000000011000104000000009c400035000d258868656c6c6f",
  "tcp6-routing":
    "02000000000202000000000186dd6000000000202b40fd000000000000000000000000000001fd00000000000000000000000000000206000000000000009c4001bb00000007000000095018ffff3ef6000064617461",
  "sctp4-init":
    "02000000000202000000000108004500003400000000408466440a0000010a0000029c402328000000001ae1865301000014112233440000ffff0001000100000001",
  "sctp6-data":
    "02000000000202000000000186dd6000000000208440fd000000000000000000000000000001fd0000000000000000000000000000029c40232811223344dacde06e0003001300000001000000000000000061626300",
  "icmp4-echo": "02000000000202000000000108004500002000000000400166db0a0000010a000002080006fa1234000170696e67",
  "icmp6-echo-reply":
    "02000000000202000000000186dd6000000000083a40fd000000000000000000000000000002fd0000000000000000000000000000018100728312340001",
  "icmp4-unreach":
    "02000000000202000000000108004500003800000000400166c30a0000010a0000020303162d000000004500002600000000401166c50a0000020a00000100359c4000124a48",
  "icmp6-unreach":
    "02000000000202000000000186dd6000000000443a40fd000000000000000000000000000001fd00000000000000000000000000000201049e3e000000006000000000140640fd000000000000000000000000000002fd00000000000000000000000000000100509c40000003e8000000005002ffff15660000",
  "frag4-0": "02000000000202000000000108004500002c424220004011047d0a0000010a0000029c400035003035fd41414141414141414141414141414141",
  "frag4-1": "02000000000202000000000108004500002c424200034011247a0a0000010a000002414141414141414141414141414141414141414141414141",
  "frag6-0":
    "02000000000202000000000186dd6000000000202c40fd000000000000000000000000000001fd00000000000000000000000000000211000001000042429c40003500303be742424242424242424242424242424242",
  "frag6-1":
    "02000000000202000000000186dd6000000000202c40fd000000000000000000000000000001fd0000000000000000000000000000021100001800004242424242424242424242424242424242424242424242424242",
  arp: "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002",
};

function scapy(name: string): Buffer {
  const text = SCAPY[name];
  assert.ok(text !== undefined, name);
  return Buffer.from(text, "hex");
}

const v4 = { src: "10.0.0.1", dst: "10.0.0.2" };
const v6 = { src: "fd00::1", dst: "fd00::2" };

test("Internet checksum: the RFC 1071 example and a known IPv4 header", () => {
  assert.equal(internetChecksum(Buffer.from("0001f203f4f5f6f7", "hex")), ~0xddf2 & 0xffff);
  // The header from the Wikipedia "IPv4 header checksum" article, checksum field zeroed: b861.
  assert.equal(internetChecksum(Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex")), 0xb861);
  assert.equal(internetChecksum(Buffer.from("01", "hex")), 0xfeff);
});

test("CRC32c: the RFC 3720 check values", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
});

test("TCP over IPv4, with and without IP options, equals Scapy's", () => {
  assert.deepEqual(buildPacket({ ...v4, protocol: "TCP", sport: 40000, dport: 80 }), scapy("tcp4-syn"));
  const routerAlert = Buffer.from("94040000", "hex");
  assert.deepEqual(buildPacket({ ...v4, protocol: "TCP", sport: 40000, dport: 80, ipOptions: routerAlert }), scapy("tcp4-options"));
});

test("IPv6 with extension headers (hop-by-hop, dest options, routing) equals Scapy's", () => {
  assert.deepEqual(
    buildPacket({ ...v6, protocol: "UDP", sport: 40000, dport: 53, extensionHeaders: ["hop-by-hop", "dest-options"], payload: Buffer.from("hello") }),
    scapy("udp6-exthdrs"),
  );
  assert.deepEqual(
    buildPacket({
      ...v6,
      protocol: "TCP",
      sport: 40000,
      dport: 443,
      tcpFlags: ["psh", "ack"],
      tcpSeq: 7,
      tcpAck: 9,
      extensionHeaders: ["routing"],
      payload: Buffer.from("data"),
    }),
    scapy("tcp6-routing"),
  );
});

test("SCTP INIT over IPv4 and DATA over IPv6 equal Scapy's (CRC32c included)", () => {
  assert.deepEqual(buildPacket({ ...v4, protocol: "SCTP", sport: 40000, dport: 9000 }), scapy("sctp4-init"));
  assert.deepEqual(buildPacket({ ...v6, protocol: "SCTP", sport: 40000, dport: 9000, payload: Buffer.from("abc") }), scapy("sctp6-data"));
});

test("ICMP and ICMPv6 echo equal Scapy's; the identifier follows the datapath's tuple convention", () => {
  assert.deepEqual(buildPacket({ ...v4, protocol: "ICMP", sport: 0x1234, payload: Buffer.from("ping") }), scapy("icmp4-echo"));
  assert.deepEqual(buildPacket({ src: v6.dst, dst: v6.src, protocol: "ICMP", icmpType: "echo-reply", dport: 0x1234 }), scapy("icmp6-echo-reply"));
  assert.deepEqual(buildPacket({ src: v6.dst, dst: v6.src, protocol: "ICMPv6", icmpType: "echo-reply", icmpId: 0x1234 }), scapy("icmp6-echo-reply"));
});

test("ICMP errors carry the original packet: IPv4 header + 8 bytes, IPv6 all of it", () => {
  const originalUdp: PacketSpec = { src: v4.dst, dst: v4.src, protocol: "UDP", sport: 53, dport: 40000, payload: Buffer.from("0123456789") };
  assert.deepEqual(buildPacket({ ...v4, protocol: "ICMP", icmpType: "dest-unreachable", inner: originalUdp }), scapy("icmp4-unreach"));
  const originalTcp: PacketSpec = { src: v6.dst, dst: v6.src, protocol: "TCP", sport: 80, dport: 40000 };
  assert.deepEqual(buildPacket({ ...v6, protocol: "ICMP", icmpType: "dest-unreachable", inner: originalTcp }), scapy("icmp6-unreach"));
  assert.throws(() => buildPacket({ ...v4, protocol: "ICMP", icmpType: "time-exceeded" }), PacketSpecError);
});

test("fragments of one datagram equal Scapy's, for IPv4 (MF + offset) and IPv6 (fragment header)", () => {
  const frames4 = buildFragments({ ...v4, protocol: "UDP", sport: 40000, dport: 53, payload: Buffer.alloc(40, "A") }, 24);
  assert.deepEqual(frames4, [scapy("frag4-0"), scapy("frag4-1")]);
  const frames6 = buildFragments({ ...v6, protocol: "UDP", sport: 40000, dport: 53, payload: Buffer.alloc(40, "B") }, 24);
  assert.deepEqual(frames6, [scapy("frag6-0"), scapy("frag6-1")]);
});

test("a single later fragment carries only its payload at the given offset", () => {
  const later = buildIpPacket({ ...v4, protocol: "UDP", fragment: { offset: 24, more: false, id: 0x4242 }, payload: Buffer.alloc(24, "A") });
  assert.deepEqual(later, scapy("frag4-1").subarray(14));
  const first = buildIpPacket({ ...v6, protocol: "TCP", fragment: { offset: 0, more: true, id: 7 } });
  assert.equal(first[6], 44, "next header is the fragment header");
  assert.equal(first.readUInt16BE(42), 1, "offset 0, M set");
  assert.equal(first.readUInt32BE(44), 7);
  assert.equal(first[40], 6, "fragment header's next header is TCP");
  assert.throws(() => buildPacket({ ...v4, protocol: "UDP", fragment: { offset: 12, more: true } }), /offset 12 is not a multiple of 8/);
});

test("ARP request is a non-IP frame", () => {
  assert.deepEqual(buildArpRequest("10.0.0.1", "10.0.0.2"), scapy("arp"));
});

test("addresses of different families are refused", () => {
  assert.throws(() => buildPacket({ src: "10.0.0.1", dst: "fd00::1", protocol: "TCP" }), /not both IPv4/);
  assert.throws(() => buildPacket({ ...v4, protocol: "ICMPv6" }), /ICMPv6 needs IPv6/);
});
