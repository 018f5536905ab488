import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  addressBits,
  canonicalIp,
  cidrContains,
  cidrContainsIp,
  cidrOf,
  CidrMap,
  formatCidr,
  formatIp,
  hostCidr,
  ipFamily,
  ipFromBytes,
  ipToBytes,
  IpParseError,
  isIpv4MappedPrefix,
  networkAddress,
  parseCidr,
  parseIp,
} from "./ip.ts";
import type { Cidr, IpAddress } from "./ip.ts";

test("parseIp: IPv4 and IPv6 forms", () => {
  assert.deepEqual(parseIp("10.0.0.1"), { family: 4, value: 0x0a000001n });
  assert.deepEqual(parseIp("0.0.0.0"), { family: 4, value: 0n });
  assert.deepEqual(parseIp("255.255.255.255"), { family: 4, value: 0xffffffffn });
  assert.deepEqual(parseIp("::"), { family: 6, value: 0n });
  assert.deepEqual(parseIp("::1"), { family: 6, value: 1n });
  assert.deepEqual(parseIp("fd00::"), { family: 6, value: 0xfd00n << 112n });
  assert.deepEqual(parseIp("FD00:0:0:0:0:0:0:0A"), { family: 6, value: (0xfd00n << 112n) | 10n });
  assert.deepEqual(parseIp("::ffff:192.0.2.1"), { family: 6, value: (0xffffn << 32n) | 0xc0000201n });
  assert.deepEqual(parseIp("1:2:3:4:5:6:7::"), { family: 6, value: 0x0001000200030004000500060007_0000n });
});

test("parseIp: refuses what is not an address", () => {
  for (const bad of [
    "", "10.0.0", "10.0.0.1.2", "10.0.0.256", "010.0.0.1", "10.0.0.-1", "10.0.0.1 ", "a.b.c.d",
    ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::", ":1::", "1::2:",
    "1.2.3.4::", "::1.2.3", "fe80::1%eth0", "10.0.0.1/32",
  ]) {
    assert.throws(() => parseIp(bad), IpParseError, bad);
  }
  assert.throws(() => parseIp("10.0.0.256"), { message: 'Cannot parse IP address "10.0.0.256": not an IPv4 or IPv6 address' });
});

test("parseIp: IPv4 read by character code agrees with the dotted-quad grammar on hostile text", () => {
  for (const bad of ["1..2.3", ".1.2.3", "1.2.3.", "00.1.2.3", "1.2.3.00", "1.2.3.4.", "1.2.3.0x1", "+1.2.3.4", "1.2.3.1000", "\uff11.2.3.4", "1.2.3.4\n", "999.0.0.0"]) {
    assert.throws(() => parseIp(bad), IpParseError, JSON.stringify(bad));
  }
  // The grammar as its own oracle: four decimal octets without leading zeros, each at most 255.
  const grammar = (text: string): bigint | undefined => {
    const parts = text.split(".");
    if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part) && Number(part) <= 255)) return undefined;
    return parts.reduce((value, part) => (value << 8n) | BigInt(part), 0n);
  };
  const textArb = fc.array(fc.constantFrom("0", "1", "2", "5", "9", ".", ".", "25", "255", "256", "00"), { maxLength: 12 }).map((parts) => parts.join(""));
  fc.assert(
    fc.property(textArb, (text) => {
      const expected = grammar(text);
      const family = ipFamily(text);
      assert.equal(family === 4 ? parseIp(text).value : undefined, expected, text);
    }),
    { numRuns: 5000 },
  );
});

const v4Arb = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map((value): IpAddress => ({ family: 4, value }));
// Groups drawn from a few values so that runs of zeros (and ties between runs) are common.
const v6Arb = fc
  .array(fc.constantFrom(0n, 0n, 0n, 1n, 0xffffn, 0xfd00n, 0xabcn), { minLength: 8, maxLength: 8 })
  .map((groups): IpAddress => ({ family: 6, value: groups.reduce((acc: bigint, g) => (acc << 16n) | g, 0n) }));
const anyV6Arb = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((value): IpAddress => ({ family: 6, value }));
const addressArb = fc.oneof(v4Arb, v6Arb, anyV6Arb);

test("formatIp: IPv6 text equals the WHATWG URL serializer's, and parses back", () => {
  fc.assert(
    fc.property(fc.oneof(v6Arb, anyV6Arb), (address) => {
      const text = formatIp(address);
      assert.equal(`[${text}]`, new URL(`http://[${text}]/`).hostname);
      assert.deepEqual(parseIp(text), address);
    }),
    { numRuns: 3000 },
  );
  assert.equal(formatIp(parseIp("fd00:0:0:1:0:0:0:1")), "fd00:0:0:1::1", "the longest run wins");
  assert.equal(formatIp(parseIp("fd00:0:0:1:0:0:1:1")), "fd00::1:0:0:1:1", "the first of equal runs wins");
  assert.equal(formatIp(parseIp("fd00:1:1:1:1:1:0:1")), "fd00:1:1:1:1:1:0:1", "a single zero group stays");
});

test("formatIp: IPv4 dotted quad round trip", () => {
  fc.assert(
    fc.property(v4Arb, (address) => {
      const text = formatIp(address);
      assert.match(text, /^\d{1,3}(\.\d{1,3}){3}$/);
      assert.deepEqual(parseIp(text), address);
    }),
  );
});

test("ipToBytes and ipFromBytes: network order, and back", () => {
  assert.deepEqual([...ipToBytes(parseIp("10.1.2.3"))], [10, 1, 2, 3]);
  assert.deepEqual([...ipToBytes(parseIp("fd00::1"))], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(Buffer.from(ipToBytes(parseIp("::ffff:10.1.2.3"))), Buffer.from("00000000000000000000ffff0a010203", "hex"));
  fc.assert(fc.property(addressArb, (address) => assert.deepEqual(ipFromBytes(ipToBytes(address)), address)));
  assert.throws(() => ipFromBytes(new Uint8Array(5)), { name: "RangeError", message: "Cannot read an IP address from 5 bytes: need 4 or 16" });
});

test("ipFamily is strict: no leading zeros, no zones", () => {
  assert.deepEqual(["10.0.0.1", "fd00::1", "::ffff:10.0.0.1", "010.0.0.1", "10.0.0", "fe80::1%eth0", "1.2.3.4.5", ""].map(ipFamily), [4, 6, 6, 0, 0, 0, 0, 0]);
});

test("canonicalIp compresses and lowercases IPv6, IPv4-mapped addresses in hex", () => {
  assert.equal(canonicalIp("FD00:0:0:0:0:0:0:0A"), "fd00::a");
  assert.equal(canonicalIp("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  assert.equal(canonicalIp("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(canonicalIp("::ffff:10.1.2.3"), "::ffff:a01:203");
  assert.equal(canonicalIp("10.244.1.2"), "10.244.1.2");
  assert.throws(() => canonicalIp("10.244.1.256"), IpParseError);
});

test("parseCidr: network form, host bits cleared, canonical text", () => {
  assert.equal(formatCidr(parseCidr("10.9.9.9/8")), "10.0.0.0/8");
  assert.equal(formatCidr(parseCidr("0.0.0.0/0")), "0.0.0.0/0");
  assert.equal(formatCidr(parseCidr("FD00::1/16")), "fd00::/16");
  assert.equal(formatCidr(parseCidr("::/0")), "::/0");
  assert.equal(formatCidr(parseCidr("fd00::1/128")), "fd00::1/128");
  for (const bad of ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/x", "/8", "fd00::/129", "10.0.0.0/8/8"]) {
    assert.throws(() => parseCidr(bad), IpParseError, bad);
  }
  assert.throws(() => parseCidr("10.0.0.0/33"), { message: 'Cannot parse CIDR "10.0.0.0/33": prefix length 33 is above 32' });
  const reason = (text: string): string => {
    try {
      parseCidr(text);
    } catch (error) {
      if (error instanceof IpParseError) return error.reason;
    }
    return "parsed";
  };
  assert.equal(reason("10.0.0.0/8/8"), "must be an address, a '/' and a prefix length");
  assert.equal(reason("10.0.0.0/"), 'prefix length "" is not a number without leading zeros');
  assert.equal(reason("10.0.0.0/-1"), 'prefix length "-1" is not a number without leading zeros');
  assert.equal(reason("fe80::1%eth0/64"), 'address "fe80::1%eth0" is not a valid IPv4 or IPv6 address');
  assert.equal(reason("fd00::/129"), "prefix length 129 is above 128");
  assert.equal(reason("010.0.0.0/8"), 'address "010.0.0.0" is not a valid IPv4 or IPv6 address', "leading zeros: octal or decimal?");
});

test("an IPv4 CIDR holds its network as a signed 32-bit integer; networkAddress gives it as an address", () => {
  assert.deepEqual(parseCidr("10.1.2.3/16"), { family: 4, network: 0x0a010000, prefixLen: 16 });
  assert.deepEqual(parseCidr("192.168.7.1/16"), { family: 4, network: 0xc0a80000 | 0, prefixLen: 16 });
  assert.deepEqual(parseCidr("255.255.255.255/32"), { family: 4, network: -1, prefixLen: 32 });
  assert.deepEqual(networkAddress(parseCidr("255.255.255.255/32")), parseIp("255.255.255.255"));
  assert.deepEqual(networkAddress(parseCidr("fd00::1/16")), parseIp("fd00::"));
  fc.assert(
    fc.property(addressArb, fc.nat(128), (address, length) => {
      const bits = address.family === 4 ? 32 : 128;
      const cidr = cidrOf(address, length % (bits + 1));
      if (cidr.family === 4) assert.equal(cidr.network, cidr.network | 0);
      const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - cidr.prefixLen)) - 1n);
      assert.deepEqual(networkAddress(cidr), { family: address.family, value: address.value & mask });
      assert.equal(formatCidr(cidr), `${formatIp(networkAddress(cidr))}/${cidr.prefixLen}`);
      assert.deepEqual(parseCidr(formatCidr(cidr)), cidr);
    }),
  );
});

test("isIpv4MappedPrefix: the prefixes Kubernetes (Go) reads as IPv4 CIDRs", () => {
  for (const mapped of ["::ffff:1.2.3.4/128", "::ffff:10.0.0.0/104", "::FFFF:0:0/96"]) assert.ok(isIpv4MappedPrefix(parseCidr(mapped)), mapped);
  for (const plain of ["::ffff:0:0/95", "fd00::/8", "10.0.0.0/8", "::1/128"]) assert.ok(!isIpv4MappedPrefix(parseCidr(plain)), plain);
});

test("cidrContains and cidrContainsIp", () => {
  const c = (text: string): Cidr => parseCidr(text);
  assert.ok(cidrContains(c("10.0.0.0/8"), c("10.1.0.0/16")));
  assert.ok(cidrContains(c("10.0.0.0/8"), c("10.0.0.0/8")));
  assert.ok(!cidrContains(c("10.1.0.0/16"), c("10.0.0.0/8")));
  assert.ok(!cidrContains(c("10.0.0.0/8"), c("11.0.0.0/16")));
  assert.ok(cidrContains(c("0.0.0.0/0"), c("192.0.2.0/24")));
  assert.ok(cidrContains(c("128.0.0.0/1"), c("255.255.255.255/32")), "networks above 2^31 too");
  assert.ok(!cidrContains(c("128.0.0.0/1"), c("127.255.255.255/32")));
  assert.ok(!cidrContains(c("::/0"), c("10.0.0.0/8")), "families never contain each other");
  assert.ok(!cidrContains(c("0.0.0.0/0"), c("::/0")), "families never contain each other");
  assert.ok(cidrContainsIp(c("fd00::/16"), parseIp("fd00:1::1")));
  assert.ok(!cidrContainsIp(c("fd00::/16"), parseIp("fd01::1")));
  fc.assert(
    fc.property(addressArb, fc.nat(128), fc.nat(128), (address, x, y) => {
      const bits = address.family === 4 ? 32 : 128;
      const [short, long] = [Math.min(x, y) % (bits + 1), Math.max(x, y) % (bits + 1)].sort((a, b) => a - b) as [number, number];
      assert.ok(cidrContains(cidrOf(address, short), cidrOf(address, long)));
      assert.ok(cidrContainsIp(cidrOf(address, long), address));
      assert.deepEqual(hostCidr(address), cidrOf(address, bits));
    }),
  );
});

/** Sets (`add`) or deletes each prefix in a CidrMap and in its model, a Map by canonical text. */
function setOrDelete<V>(map: CidrMap<V>, model: Map<string, V>, operations: [add: boolean, cidr: Cidr, value: V][]): void {
  for (const [add, cidr, value] of operations) {
    if (add) {
      map.set(cidr, value);
      model.set(formatCidr(cidr), value);
    } else {
      map.delete(cidr);
      model.delete(formatCidr(cidr));
    }
  }
}

test("CidrMap: longest match and containment equal a brute-force search, across sets and deletes", () => {
  const cidrArb = fc.oneof(
    fc.tuple(v4Arb, fc.integer({ min: 0, max: 32 })),
    fc.tuple(v6Arb, fc.integer({ min: 0, max: 128 })),
  ).map(([address, length]) => cidrOf(address, length));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), cidrArb), { maxLength: 30 }),
      fc.array(fc.oneof(v4Arb, v6Arb), { minLength: 1, maxLength: 20 }),
      (operations, probes) => {
        const set = new CidrMap<Cidr>();
        const model = new Map<string, Cidr>();
        setOrDelete(set, model, operations.map(([add, cidr]) => [add, cidr, cidr]));
        assert.equal(set.empty, model.size === 0);
        assert.equal(set.size, model.size);
        assert.deepEqual([...set.values()].map(formatCidr).sort(), [...model.keys()].sort());
        for (const probe of probes) {
          const expected = [...model.values()]
            .filter((cidr) => cidrContainsIp(cidr, probe))
            .sort((a, b) => b.prefixLen - a.prefixLen)[0];
          assert.deepEqual(set.longestPrefix(probe), expected);
        }
        for (const [, cidr] of operations) {
          const expected = [...model.values()].filter((outer) => cidrContains(outer, cidr)).sort((a, b) => b.prefixLen - a.prefixLen);
          assert.deepEqual(set.containing(cidr), expected);
          assert.deepEqual(set.get(cidr), model.get(formatCidr(cidr)));
        }
        // Short prefixes around the probes hold some of the others: both ways of looking inside are taken.
        const outers = [...operations.map(([, cidr]) => cidr), ...probes.flatMap((probe) => [0, 4, 8, 24, 28, 60, 120].map((length) => cidrOf(probe, Math.min(length, addressBits(probe.family)))))];
        for (const [i, outer] of outers.entries()) {
          const expected = [...model.values()].filter((inner) => cidrContains(outer, inner)).map(formatCidr).sort();
          assert.deepEqual(set.inside(outer).map(formatCidr).sort(), expected, `inside ${formatCidr(outer)}`);
          // Excepts of either family, inside the outer prefix or around it.
          const outside = outers.slice(i + 1, i + 3);
          const kept = [...model.values()].filter((inner) => cidrContains(outer, inner) && !outside.some((e) => cidrContains(e, inner))).map(formatCidr).sort();
          assert.deepEqual(set.inside(outer, outside).map(formatCidr).sort(), kept, `inside ${formatCidr(outer)} outside ${outside.map(formatCidr).join(", ")}`);
        }
      },
    ),
    { numRuns: 500 },
  );
});

test("CidrMap.inside: looks up the networks under a short span, scans a long one; families apart", () => {
  const map = new CidrMap<string>();
  const texts = [...Array.from({ length: 32 }, (_, i) => `10.0.0.${i}/32`), "10.0.0.16/28", "10.1.0.0/16", "fd00::/64", "fd00::1/128", "::/0"];
  for (const text of texts) map.set(parseCidr(text), text);
  const inside = (text: string) => map.inside(parseCidr(text)).sort();
  // A /28 among 32 /32s: 16 lookups find its 16 addresses, and itself.
  assert.deepEqual(inside("10.0.0.16/28"), [...Array.from({ length: 16 }, (_, i) => `10.0.0.${16 + i}/32`), "10.0.0.16/28"].sort());
  assert.deepEqual(inside("10.0.0.0/8"), texts.filter((t) => t.startsWith("10.")).sort());
  assert.deepEqual(inside("0.0.0.0/0"), texts.filter((t) => !t.includes(":")).sort());
  assert.deepEqual(inside("fd00::/16"), ["fd00::/64", "fd00::1/128"]);
  assert.deepEqual(inside("::/0"), texts.filter((t) => t.includes(":")).sort());
  assert.deepEqual(inside("10.0.0.7/32"), ["10.0.0.7/32"]);
  assert.deepEqual(inside("192.168.0.0/16"), []);
  // Outside excepts: looked-up networks and scanned ones alike, an except of the other family holding none.
  const outside = (text: string, excepts: string[]) => map.inside(parseCidr(text), excepts.map(parseCidr)).sort();
  assert.deepEqual(outside("10.0.0.16/28", ["10.0.0.16/29", "fd00::/8"]), [...Array.from({ length: 8 }, (_, i) => `10.0.0.${24 + i}/32`), "10.0.0.16/28"].sort());
  assert.deepEqual(outside("10.0.0.0/8", ["10.0.0.0/16"]), ["10.1.0.0/16"]);
  assert.deepEqual(outside("::/0", ["fd00::1/128", "10.0.0.0/8"]), ["::/0", "fd00::/64"]);
});

test("CidrMap: thousands of IPv4 networks of one length, set and deleted in any order, as a Map holds them", () => {
  fc.assert(
    fc.property(
      // Networks bunched in a few ranges and strided, so that runs of colliding slots form and deletions shift them.
      fc.array(fc.tuple(fc.boolean(), fc.constantFrom(0, 0x0a000000, 0x7fffff00, 0xffffff00), fc.integer({ min: 0, max: 4000 }), fc.constantFrom(1, 256, 65536)), { minLength: 3000, maxLength: 6000 }),
      (operations) => {
        const map = new CidrMap<number>();
        const model = new Map<string, number>();
        const cidrs = operations.map(([, base, offset, stride]) => cidrOf({ family: 4, value: BigInt((base + offset * stride) % 2 ** 32) }, 32));
        setOrDelete(map, model, operations.map(([add], i) => [add, cidrs[i] as Cidr, i]));
        assert.equal(map.size, model.size);
        for (const [text, value] of model) assert.equal(map.get(parseCidr(text)), value, text);
        for (const cidr of cidrs) assert.equal(map.get(cidr), model.get(formatCidr(cidr)), formatCidr(cidr));
        assert.deepEqual(map.values().sort((a, b) => a - b), [...model.values()].sort((a, b) => a - b));
        assert.deepEqual(map.inside(parseCidr("0.0.0.0/0")).sort((a, b) => a - b), [...model.values()].sort((a, b) => a - b));
      },
    ),
    { numRuns: 60 },
  );
});
