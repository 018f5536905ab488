import assert from "node:assert/strict";
import { test } from "node:test";
import { AddressParseError, formatAddress, formatCidr, maskBytes, parseAddress, parseCidr } from "./address.ts";

test("parses IPv4 and IPv6 addresses to network-order bytes", () => {
  assert.deepEqual(parseAddress("192.0.2.10"), { family: 4, bytes: Buffer.from([192, 0, 2, 10]) });
  assert.deepEqual(parseAddress("fd00::1").bytes, Buffer.from("fd000000000000000000000000000001", "hex"));
  assert.deepEqual(parseAddress("::").bytes, Buffer.alloc(16));
  assert.deepEqual(parseAddress("1::").bytes, Buffer.from("00010000000000000000000000000000", "hex"));
  assert.deepEqual(parseAddress("2001:db8:0:0:1:0:0:1").bytes, Buffer.from("20010db8000000000001000000000001", "hex"));
  assert.deepEqual(parseAddress("::ffff:10.1.2.3").bytes, Buffer.from("00000000000000000000ffff0a010203", "hex"));
  assert.deepEqual(parseAddress("fe80::1%eth0").bytes, Buffer.from("fe800000000000000000000000000001", "hex"));
});

test("refuses text that is not an address", () => {
  for (const bad of ["", "10.0.0", "10.0.0.256", "fd00:::1", "host", "10.0.0.1/8"]) {
    assert.throws(() => parseAddress(bad), AddressParseError, bad);
  }
});

test("formats canonically (RFC 5952 for IPv6)", () => {
  const cases: [string, string][] = [
    ["10.0.0.1", "10.0.0.1"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["::ffff:10.1.2.3", "::ffff:10.1.2.3"],
  ];
  for (const [input, canonical] of cases) {
    const { family, bytes } = parseAddress(input);
    assert.equal(formatAddress(family, bytes), canonical, input);
  }
});

test("parses CIDRs, clearing host bits; a bare address is a host prefix", () => {
  assert.deepEqual(parseCidr("10.1.2.3/8"), { family: 4, bytes: Buffer.from([10, 0, 0, 0]), prefixLen: 8 });
  assert.deepEqual(parseCidr("10.1.2.3"), { family: 4, bytes: Buffer.from([10, 1, 2, 3]), prefixLen: 32 });
  const v6 = parseCidr("fd00:1:2:3::5/50");
  assert.equal(formatCidr(v6.family, v6.bytes, v6.prefixLen), "fd00:1:2::/50");
  assert.equal(parseCidr("::/0").prefixLen, 0);
  assert.throws(() => parseCidr("10.0.0.0/33"), /prefix length "33" is not between 0 and 32/);
  assert.throws(() => parseCidr("10.0.0.0/"), AddressParseError);
  assert.throws(() => parseCidr("nope/8"), /"nope" is not an IPv4 or IPv6 address/);
});

test("maskBytes keeps exactly the prefix bits", () => {
  assert.deepEqual(maskBytes(Buffer.from([0xff, 0xff, 0xff, 0xff]), 13), Buffer.from([0xff, 0xf8, 0, 0]));
  assert.deepEqual(maskBytes(Buffer.from([0xff, 0xff]), 0), Buffer.from([0, 0]));
  assert.deepEqual(maskBytes(Buffer.from([0xab, 0xcd]), 16), Buffer.from([0xab, 0xcd]));
});
