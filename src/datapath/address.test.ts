import assert from "node:assert/strict";
import { test } from "node:test";
import { IpParseError } from "../policy/ip.ts";
import { formatAddress, formatCidr, parseAddress, parseCidr } from "./address.ts";

test("parses IPv4 and IPv6 addresses to network-order bytes", () => {
  assert.deepEqual(parseAddress("192.0.2.10"), { family: 4, bytes: Buffer.from([192, 0, 2, 10]) });
  assert.deepEqual(parseAddress("fd00::1").bytes, Buffer.from("fd000000000000000000000000000001", "hex"));
  assert.deepEqual(parseAddress("::").bytes, Buffer.alloc(16));
  assert.deepEqual(parseAddress("1::").bytes, Buffer.from("00010000000000000000000000000000", "hex"));
  assert.deepEqual(parseAddress("2001:db8:0:0:1:0:0:1").bytes, Buffer.from("20010db8000000000001000000000001", "hex"));
  assert.deepEqual(parseAddress("::ffff:10.1.2.3").bytes, Buffer.from("00000000000000000000ffff0a010203", "hex"));
});

test("refuses text that is not an address", () => {
  for (const bad of ["", "10.0.0", "10.0.0.256", "10.0.0.01", "fd00:::1", "fe80::1%eth0", "host", "10.0.0.1/8"]) {
    assert.throws(() => parseAddress(bad), IpParseError, bad);
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
    // IPv4-mapped in hex, as the policy layer and the WHATWG URL standard write it.
    ["::ffff:10.1.2.3", "::ffff:a01:203"],
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
  assert.throws(() => parseCidr("10.0.0.0/33"), /prefix length 33 exceeds 32/);
  assert.throws(() => parseCidr("10.0.0.0/"), IpParseError);
  assert.throws(() => parseCidr("nope/8"), /not an IPv4 or IPv6 address before "\/"/);
});
