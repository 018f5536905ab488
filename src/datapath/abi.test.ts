import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FIRST_NODE_LOCAL_IDENTITY,
  identityInMemory,
  ipcacheKeyOf,
  POLICY_FLAG_AUDIT_HTTP,
  POLICY_FLAG_AUDIT_HTTP_DENY,
  POLICY_FLAG_HTTP,
  POLICY_FLAG_HTTP_DENY,
  POLICY_FLAG_AUDIT_TCP_LIMITED,
  POLICY_FLAG_AUDIT_TCP_STRICT,
  POLICY_FLAG_TCP_LIMITED,
  POLICY_FLAG_TCP_STRICT,
} from "../policy/desired-state.ts";
import { parseCidr } from "../policy/ip.ts";
import {
  AbiCodecError,
  AbiMismatchError,
  checkLayout,
  configCodec,
  counterCodec,
  CT_F_COUNTED,
  CT_F_PROXIED,
  CT_F_PROXY_UPSTREAM,
  CT_F_TCP_STRICT,
  ctFlow,
  ctKeyCodec,
  ctValueCodec,
  CT_F_ORIG_SWAPPED,
  isCanonicalCtKey,
  type CtKey,
  decodeFlowEvent,
  DEFAULT_CONFIG,
  encodeArray,
  endpointKeyCodec,
  endpointValueCodec,
  flowEventLayout,
  fragKeyCodec,
  fragValueCodec,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  MAP_LAYOUTS,
  policyKeyCodec,
  policyValueCodec,
  perCpuCodec,
  proxyConfigCodec,
  tcpLimitCodec,
  tcpSourceKeyCodec,
  tcpSourceValueCodec,
  type BtfStruct,
  type LayoutSource,
  type StructLayout,
} from "./abi.ts";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");

test("every struct layout is contiguous: no holes, no overlaps, ends at its size", () => {
  const layouts: StructLayout[] = [flowEventLayout];
  for (const { key, value } of Object.values(MAP_LAYOUTS)) {
    if (key !== null) layouts.push(key);
    if (value !== null) layouts.push(value);
  }
  for (const layout of layouts) {
    if (layout.fields.length === 0) continue;
    let next = 0;
    for (const field of [...layout.fields].sort((a, b) => a.offset - b.offset)) {
      assert.equal(field.offset, next, `${layout.name}.${field.name} starts at ${field.offset}, previous field ends at ${next}`);
      next = field.offset + field.size;
    }
    assert.equal(next, layout.size, `${layout.name} fields end at ${next}, struct size ${layout.size}`);
  }
});

test("ipcache key: prefixlen counts family+pad, the address bytes as they come, IPv4 in the first 4", () => {
  const v4Key = ipcacheKeyOf(parseCidr("10.1.0.0/16"));
  const v4 = ipcacheKeyCodec.encode(v4Key);
  assert.deepEqual(v4, hex("30000000 04 000000 0a010000 00000000 00000000 00000000"));
  const v6Key = ipcacheKeyOf(parseCidr("fd00:1::/64"));
  const v6 = ipcacheKeyCodec.encode(v6Key);
  assert.deepEqual(v6, hex("60000000 06 000000 fd000001 00000000 00000000 00000000"));
  assert.deepEqual(ipcacheKeyCodec.decode(v6), v6Key);
  assert.deepEqual(ipcacheKeyCodec.decode(v4), v4Key);
});

test("ipcache key refuses a prefix longer than the family and address bytes of the other family", () => {
  assert.throws(
    () => ipcacheKeyCodec.encode({ family: 4, address: Uint8Array.of(10, 0, 0, 0), prefixLen: 33 }),
    { name: "AbiCodecError", message: 'Cannot encode ipcache key "10.0.0.0/33": prefix length is not between 0 and 32' },
  );
  assert.throws(() => ipcacheKeyCodec.encode({ ...ipcacheKeyOf(parseCidr("fd00::1/128")), family: 4 }), /ipcache key of family 4: it has 16 address bytes, not 4/);
  assert.throws(() => ipcacheKeyCodec.encode({ family: 6, address: new Uint8Array(4), prefixLen: 0 }), AbiCodecError);
});

test("ipcache and endpoint values", () => {
  assert.deepEqual(ipcacheValueCodec.encode({ identity: 256, flags: 1 }), hex("00010000 01000000"));
  const ep = { endpointId: 7, slot: 3, identity: 300, flags: 5 };
  assert.deepEqual(endpointValueCodec.encode(ep), hex("07000000 03000000 2c010000 05000000"));
  assert.deepEqual(endpointValueCodec.decode(endpointValueCodec.encode(ep)), ep);
  assert.deepEqual(endpointKeyCodec.encode({ ifindex: 0x1234 }), hex("34120000"));
});

test("a node-local identity is the kernel's number in every map and event, and its in-memory offset above", () => {
  const local = identityInMemory(FIRST_NODE_LOCAL_IDENTITY + 5);
  assert.equal(local, -268435451, "a small integer, not a heap number");
  const kernel = hex("050000f0");
  const ipcache = ipcacheValueCodec.encode({ identity: local, flags: 0 });
  assert.deepEqual(ipcache.subarray(0, 4), kernel);
  assert.equal(ipcacheValueCodec.decode(ipcache).identity, local);
  const ep = { endpointId: 7, slot: 3, identity: local, flags: 0 };
  assert.deepEqual(endpointValueCodec.encode(ep).subarray(8, 12), kernel);
  assert.deepEqual(endpointValueCodec.decode(endpointValueCodec.encode(ep)), ep);
  const key = { slot: 1, identity: local, direction: 1 as const, protocol: 6, port: 80, portPrefixLen: 16 };
  assert.deepEqual(policyKeyCodec.encode(key).subarray(8, 12), kernel);
  assert.deepEqual(policyKeyCodec.decode(policyKeyCodec.encode(key)), key);
  const ct = { expiresNs: 1n, revision: 1, ruleId: 1, remoteIdentity: local, tcpFlags: 0, tcpStrict: false, counted: false, proxied: false, proxyUpstream: false, origSwapped: false };
  assert.equal(ctValueCodec.decode(ctValueCodec.encode(ct)).remoteIdentity, local);
  // Numbers below the node-local range, the operator's among them, are themselves in both forms.
  assert.equal(identityInMemory(FIRST_NODE_LOCAL_IDENTITY - 1), FIRST_NODE_LOCAL_IDENTITY - 1);
  assert.deepEqual(ipcacheValueCodec.encode({ identity: FIRST_NODE_LOCAL_IDENTITY - 1, flags: 0 }).subarray(0, 4), hex("ffffffef"));
  assert.equal(ipcacheValueCodec.decode(hex("ffffffef 00000000")).identity, FIRST_NODE_LOCAL_IDENTITY - 1);
  assert.equal(ipcacheValueCodec.decode(hex("ffffffff 00000000")).identity, -1, "the last node-local number");
});

test("policy key: protocol 0 stops at prefix 72 with zero port fields", () => {
  const key = policyKeyCodec.encode({ slot: 1, identity: 256, direction: 1, protocol: 0, port: 80, portPrefixLen: 16 });
  assert.deepEqual(key, hex("48000000 01000000 00010000 01 00 0000"));
  assert.deepEqual(policyKeyCodec.decode(key), { slot: 1, identity: 256, direction: 1, protocol: 0, port: 0, portPrefixLen: 0 });
});

test("policy key: 80 + port prefix bits, port big-endian with bits past the prefix cleared", () => {
  const exact = policyKeyCodec.encode({ slot: 2, identity: 0, direction: 0, protocol: 6, port: 8080, portPrefixLen: 16 });
  assert.deepEqual(exact, hex("60000000 02000000 00000000 00 06 1f90"));
  const anyPort = policyKeyCodec.encode({ slot: 2, identity: 0, direction: 0, protocol: 17, port: 53, portPrefixLen: 0 });
  assert.deepEqual(anyPort, hex("50000000 02000000 00000000 00 11 0000"));
  const range = policyKeyCodec.encode({ slot: 2, identity: 0, direction: 0, protocol: 6, port: 81, portPrefixLen: 15 });
  assert.deepEqual(range, hex("5f000000 02000000 00000000 00 06 0050"));
  assert.deepEqual(policyKeyCodec.decode(range), { slot: 2, identity: 0, direction: 0, protocol: 6, port: 80, portPrefixLen: 15 });
  assert.throws(
    () => policyKeyCodec.encode({ slot: 2, identity: 0, direction: 0, protocol: 6, port: 81, portPrefixLen: 17 }),
    (error: unknown) => error instanceof AbiCodecError && /portPrefixLen 17 is not between 0 and 16/.test(error.message),
  );
});

test("policy value", () => {
  const value = { verdict: 2 as const, auditVerdict: 1 as const, ruleId: 9, auditRuleId: 10, flags: 0 };
  assert.deepEqual(policyValueCodec.encode(value), hex("02 01 00 00 09000000 0a000000"));
  assert.deepEqual(policyValueCodec.decode(policyValueCodec.encode(value)), value);
  const strict = { verdict: 1 as const, auditVerdict: 1 as const, ruleId: 9, auditRuleId: 10, flags: POLICY_FLAG_TCP_STRICT | POLICY_FLAG_AUDIT_TCP_STRICT };
  assert.deepEqual(policyValueCodec.encode(strict), hex("01 01 03 00 09000000 0a000000"));
  assert.deepEqual(policyValueCodec.decode(policyValueCodec.encode(strict)), strict);
  const auditOnly = { ...strict, flags: POLICY_FLAG_AUDIT_TCP_STRICT };
  assert.deepEqual(policyValueCodec.decode(policyValueCodec.encode(auditOnly)), auditOnly);
  assert.throws(
    () => policyValueCodec.encode({ ...value, flags: 256 }),
    (error: unknown) => error instanceof AbiCodecError && error.message === "Cannot encode policy value of rule 9: flags 256 has bits the datapath does not know (known: 255)",
  );
  const limited = { ...strict, flags: POLICY_FLAG_TCP_LIMITED | POLICY_FLAG_AUDIT_TCP_LIMITED };
  assert.deepEqual(policyValueCodec.encode(limited), hex("01 01 0c 00 09000000 0a000000"), "PAL_POLICY_F_TCP_LIMITED = bit 2, the audit one bit 3");
  assert.deepEqual(policyValueCodec.decode(policyValueCodec.encode(limited)), limited);
  const http = { ...value, verdict: 1 as const, flags: POLICY_FLAG_HTTP | POLICY_FLAG_AUDIT_HTTP };
  assert.deepEqual(policyValueCodec.encode(http), hex("01 01 50 00 09000000 0a000000"), "PAL_POLICY_F_HTTP = bit 4, the audit one bit 6");
  assert.deepEqual(policyValueCodec.decode(policyValueCodec.encode(http)), http);
  const httpDeny = { ...value, verdict: 0 as const, auditVerdict: 0 as const, flags: POLICY_FLAG_HTTP_DENY | POLICY_FLAG_AUDIT_HTTP_DENY };
  assert.deepEqual(policyValueCodec.encode(httpDeny), hex("00 00 a0 00 09000000 0a000000"), "PAL_POLICY_F_HTTP_DENY = bit 5, the audit one bit 7, on a NONE verdict");
  assert.deepEqual(policyValueCodec.decode(policyValueCodec.encode(httpDeny)), httpDeny);
});

test("conntrack key and value", () => {
  const key = { family: 4 as const, saddr: "10.0.0.1", daddr: "10.0.0.2", sport: 40000, dport: 80, protocol: 6, direction: 1 as const, endpointId: 5 };
  const bytes = ctKeyCodec.encode(key);
  assert.deepEqual(
    bytes,
    hex("0a000001 00000000 00000000 00000000  0a000002 00000000 00000000 00000000  9c40 0050 06 04 01 00 05000000"),
  );
  assert.deepEqual(ctKeyCodec.decode(bytes), key);
  const v6 = { ...key, family: 6 as const, saddr: "fd00::1", daddr: "fd00::2" };
  assert.deepEqual(ctKeyCodec.decode(ctKeyCodec.encode(v6)), v6);
  const older = { expiresNs: 123456789012345n, revision: 4, ruleId: 11, remoteIdentity: 257, tcpFlags: 3, tcpStrict: false, counted: false };
  const value = { ...older, proxied: false, proxyUpstream: false, origSwapped: false };
  const valueBytes = ctValueCodec.encode(value);
  assert.equal(valueBytes.length, 40);
  assert.equal(valueBytes.readBigUInt64LE(0), 123456789012345n);
  assert.deepEqual(valueBytes.subarray(8, 24), Buffer.alloc(16), "unused (were packets and bytes) stays zero");
  assert.equal(valueBytes.readUInt32LE(24), 4);
  assert.equal(valueBytes[36], 3);
  assert.deepEqual(valueBytes.subarray(37), hex("00 0000"));
  assert.deepEqual(ctValueCodec.decode(valueBytes), value);
  const strict = { ...value, tcpStrict: true };
  const strictBytes = ctValueCodec.encode(strict);
  assert.deepEqual(strictBytes.subarray(36), hex("03 01 0000"), "tcp_flags, ct_flags = PAL_CT_F_TCP_STRICT, pad");
  assert.equal(strictBytes[37], CT_F_TCP_STRICT);
  assert.deepEqual(ctValueCodec.decode(strictBytes), strict);
  const counted = { ...strict, counted: true };
  const countedBytes = ctValueCodec.encode(counted);
  assert.equal(countedBytes[37], CT_F_TCP_STRICT | CT_F_COUNTED, "PAL_CT_F_COUNTED = bit 1 of ct_flags");
  assert.deepEqual(ctValueCodec.decode(countedBytes), counted);
  const proxied = { ...value, proxied: true };
  assert.equal(ctValueCodec.encode(proxied)[37], CT_F_PROXIED, "PAL_CT_F_PROXIED = bit 2 of ct_flags");
  assert.deepEqual(ctValueCodec.decode(ctValueCodec.encode(proxied)), proxied);
  const upstream = { ...counted, proxyUpstream: true };
  assert.equal(ctValueCodec.encode(upstream)[37], CT_F_TCP_STRICT | CT_F_COUNTED | CT_F_PROXY_UPSTREAM, "PAL_CT_F_PROXY_UPSTREAM = bit 3 of ct_flags");
  assert.deepEqual(ctValueCodec.decode(ctValueCodec.encode(upstream)), upstream);
  assert.deepEqual(ctValueCodec.encode(older), valueBytes, "a value without the proxy bits encodes them clear");
  const swapped = { ...value, origSwapped: true };
  assert.equal(ctValueCodec.encode(swapped)[37], CT_F_ORIG_SWAPPED, "PAL_CT_F_ORIG_SWAPPED = bit 4 of ct_flags");
  assert.deepEqual(ctValueCodec.decode(ctValueCodec.encode(swapped)), swapped);
});

test("conntrack keys: canonical order as the kernel's, and the flow's first packet from key and value", () => {
  const key = { family: 4 as const, saddr: "10.0.0.1", daddr: "10.0.0.2", sport: 40000, dport: 80, protocol: 6, direction: 1 as const, endpointId: 5 };
  const reversed = { ...key, saddr: key.daddr, daddr: key.saddr, sport: key.dport, dport: key.sport, direction: 0 as const };
  const canonical = (k: CtKey) => isCanonicalCtKey(ctKeyCodec.encode(k));
  // Host-order words on a little-endian host: 10.0.0.1 is 0x0100000a, 10.0.0.2 is 0x0200000a.
  assert.equal(canonical(key), true);
  assert.equal(canonical(reversed), false, "one of the two orientations only");
  // The first word decides before the ports do: 10.0.0.1 < 9.0.0.2 as host-order words (0x0100000a < 0x02000009).
  assert.equal(canonical({ ...key, daddr: "9.0.0.2" }), true);
  const sameAddress = { ...key, daddr: key.saddr };
  assert.equal(canonical(sameAddress), true, "same address: the ports decide, read in host order (40000 as 0x409c, below 80 as 0x5000)");
  assert.equal(canonical({ ...sameAddress, sport: 80, dport: 40000 }), false);
  assert.equal(canonical({ ...sameAddress, sport: 80, dport: 80 }), true, "equal ends are in order");
  const v6 = { ...key, family: 6 as const, saddr: "fd00::2", daddr: "fd00::1:1" };
  assert.equal(canonical(v6), false, "the last word decides, read in host order (0x02000000 against 0x01000100), not byte by byte");
  const encoded = Buffer.concat([Buffer.alloc(3), ctKeyCodec.encode(reversed)]);
  assert.equal(isCanonicalCtKey(encoded, 3), false, "at an offset");
  const value = { expiresNs: 1n, revision: 1, ruleId: 0, remoteIdentity: 2, tcpFlags: 0, tcpStrict: false, counted: false };
  assert.deepEqual(ctFlow(key, value), key, "the key itself unless swapped");
  assert.deepEqual(ctFlow(key, { ...value, origSwapped: true }), reversed, "reversed, at the opposite direction");
});

test("proxy config: ifindex, port big-endian, the receiving device's MAC; refuses a bad MAC or port", () => {
  const config = { ifindex: 7, port: 15001, mac: "02:aa:bb:cc:dd:0e" };
  assert.deepEqual(proxyConfigCodec.encode(config), hex("07000000 3a99 02aabbccdd0e"));
  assert.deepEqual(proxyConfigCodec.decode(proxyConfigCodec.encode(config)), config);
  assert.deepEqual(proxyConfigCodec.decode(Buffer.alloc(12)), { ifindex: 0, port: 0, mac: "00:00:00:00:00:00" }, "the array's zeroed entry: no proxy");
  assert.throws(() => proxyConfigCodec.encode({ ...config, mac: "02:aa:bb:cc:dd" }), { name: "AbiCodecError", message: 'Cannot encode proxy config: MAC "02:aa:bb:cc:dd" is not six hex bytes separated by colons' });
  assert.throws(() => proxyConfigCodec.encode({ ...config, port: 70000 }), { name: "AbiCodecError", message: "Cannot encode proxy config: port 70000 is not between 0 and 65535" });
});

test("TCP limit, source key and source value", () => {
  const limits = { maxConnections: 3, rate: 5, burst: 10 };
  assert.deepEqual(tcpLimitCodec.encode(limits), hex("03000000 05000000 0a000000 00000000"));
  assert.deepEqual(tcpLimitCodec.decode(tcpLimitCodec.encode(limits)), limits);
  const key = { ruleId: 7, family: 4 as const, saddr: "10.0.0.9" };
  assert.deepEqual(tcpSourceKeyCodec.encode(key), hex("07000000 04 000000 0a000009 00000000 00000000 00000000"));
  assert.deepEqual(tcpSourceKeyCodec.decode(tcpSourceKeyCodec.encode(key)), key);
  const v6 = { ruleId: 7, family: 6 as const, saddr: "fd00::9" };
  assert.deepEqual(tcpSourceKeyCodec.decode(tcpSourceKeyCodec.encode(v6)), v6);
  const value = { fullAtNs: 5_000_000_000n, conns: 2n };
  assert.deepEqual(tcpSourceValueCodec.encode(value), hex("00f2052a01000000 0200000000000000"));
  assert.deepEqual(tcpSourceValueCodec.decode(tcpSourceValueCodec.encode(value)), value);
});

test("fragment key and value", () => {
  const key = { family: 6 as const, saddr: "fd00::1", daddr: "fd00::2", id: 0xdeadbeef, endpointId: 9, protocol: 17, direction: 0 as const };
  const bytes = fragKeyCodec.encode(key);
  assert.equal(bytes.length, 44);
  assert.equal(bytes.readUInt32LE(32), 0xdeadbeef);
  assert.deepEqual(bytes.subarray(40), hex("11 06 00 00"));
  assert.deepEqual(fragKeyCodec.decode(bytes), key);
  assert.deepEqual(fragValueCodec.encode({ sport: 1000, dport: 53, allowed: true, reason: 1 }), hex("03e8 0035 01 01 0000"));
  assert.deepEqual(fragValueCodec.decode(hex("03e8 0035 00 11 0000")), { sport: 1000, dport: 53, allowed: false, reason: 17 });
});

test("config and counters", () => {
  assert.deepEqual(
    configCodec.encode(DEFAULT_CONFIG),
    hex("01000000 00000000 3c000000 60540000 0a000000 3c000000 3c000000 00000000"),
  );
  assert.deepEqual(configCodec.decode(configCodec.encode(DEFAULT_CONFIG)), { ...DEFAULT_CONFIG });
  assert.deepEqual(counterCodec.encode({ packets: 1n, bytes: 2n }), hex("0100000000000000 0200000000000000"));
});

test("per-CPU values: one copy per CPU, each padded to 8 bytes", () => {
  const counters = [
    { packets: 1n, bytes: 100n },
    { packets: 2n, bytes: 50n },
    { packets: 0n, bytes: 0n },
  ];
  const perCpu = perCpuCodec(counterCodec, 3);
  assert.equal(perCpu.layout.size, 48);
  assert.deepEqual(perCpu.encode(counters), encodeArray(counterCodec, counters));
  assert.deepEqual(perCpu.decode(encodeArray(counterCodec, counters)), counters);
  const padded = perCpuCodec(policyValueCodec, 2);
  const value = { verdict: 1 as const, auditVerdict: 2 as const, ruleId: 3, auditRuleId: 4, flags: 0 };
  const bytes = padded.encode([value, value]);
  assert.equal(bytes.length, 32, "12-byte values in 16-byte slots");
  assert.deepEqual(padded.decode(bytes), [value, value]);
  assert.throws(() => padded.encode([value]), /Cannot encode a per-CPU pal_policy_value: 1 values for 2 CPUs/);
});

test("encoding into a target zero-fills the struct's bytes and leaves the rest", () => {
  const target = Buffer.alloc(40, 0xff);
  policyKeyCodec.encode({ slot: 1, identity: 0, direction: 0, protocol: 0, port: 0, portPrefixLen: 0 }, target, 16);
  assert.deepEqual(target.subarray(16, 32), hex("48000000 01000000 00000000 00 00 0000"));
  assert.ok(target.subarray(0, 16).every((b) => b === 0xff));
  assert.ok(target.subarray(32).every((b) => b === 0xff));
});

test("encodeArray lays structs back to back", () => {
  const keys = encodeArray(endpointKeyCodec, [{ ifindex: 1 }, { ifindex: 2 }]);
  assert.deepEqual(keys, hex("01000000 02000000"));
});

test("flow events decode with names, text addresses and host port numbers", () => {
  const record = hex(
    "0102030400000000" + // timestamp_ns
      "07000000 05000000 00010000 0b000000" + // endpoint_id, ifindex, remote_identity, rule_id
      "0a000001 00000000 00000000 00000000" + // saddr
      "0a000002 00000000 00000000 00000000" + // daddr
      "9c40 0050 04 06 01 02 11 000000 3c000000", // ports, family, protocol, direction, kind, reason, pad, len
  );
  assert.deepEqual(decodeFlowEvent(record), {
    timestampNs: 0x04030201n,
    endpointId: 7,
    ifindex: 5,
    remoteIdentity: 256,
    ruleId: 11,
    family: 4,
    src: "10.0.0.1",
    dst: "10.0.0.2",
    sport: 40000,
    dport: 80,
    protocol: 6,
    direction: "egress",
    kind: "denied",
    reason: "default-deny",
    reasonCode: 17,
    packetLen: 60,
  });
  assert.throws(() => decodeFlowEvent(record.subarray(0, 40)), RangeError);
  const local = Buffer.from(record);
  local.writeUInt32LE(FIRST_NODE_LOCAL_IDENTITY, 16);
  assert.equal(decodeFlowEvent(local).remoteIdentity, identityInMemory(FIRST_NODE_LOCAL_IDENTITY), "a node-local peer in its in-memory form");
});

function btfFromLayouts(): Map<string, { key: BtfStruct | null; value: BtfStruct | null }> {
  const toBtf = (layout: StructLayout | null): BtfStruct | null =>
    layout === null
      ? null
      : { name: layout.fields.length === 0 ? "unsigned int" : layout.name, size: layout.size, members: layout.fields.map((f) => ({ ...f })) };
  return new Map(Object.entries(MAP_LAYOUTS).map(([map, { key, value }]) => [map, { key: toBtf(key), value: toBtf(value) }]));
}

function sourceOf(btf: Map<string, { key: BtfStruct | null; value: BtfStruct | null }>): LayoutSource {
  return {
    mapLayout(name) {
      const layout = btf.get(name);
      if (layout === undefined) throw new Error(`no map ${name}`);
      return layout;
    },
  };
}

test("checkLayout accepts BTF equal to the codecs (scalars compared by size only)", () => {
  assert.doesNotThrow(() => checkLayout(sourceOf(btfFromLayouts())));
});

test("checkLayout names map, struct, field, expected and actual on a moved field", () => {
  const btf = btfFromLayouts();
  const policy = btf.get("pal_policy");
  const member = policy?.key?.members.find((m) => m.name === "dport_be");
  assert.ok(member);
  member.offset = 12;
  assert.throws(
    () => checkLayout(sourceOf(btf)),
    (error: unknown) =>
      error instanceof AbiMismatchError &&
      error.map === "pal_policy" &&
      error.struct === "pal_policy_key" &&
      error.field === "dport_be" &&
      error.expected === "at offset 14 size 2" &&
      error.actual === "at offset 12 size 2" &&
      error.message === 'Map "pal_policy" does not match the ABI: struct pal_policy_key field dport_be is at offset 12 size 2 in BTF, expected at offset 14 size 2',
  );
});

test("checkLayout refuses an object built before policy values had flags (a __u16 pad at offset 2)", () => {
  const older = btfFromLayouts();
  const value = older.get("pal_policy")?.value;
  assert.ok(value);
  value.members = [...value.members.filter((m) => m.name !== "flags" && m.name !== "pad"), { name: "pad", offset: 2, size: 2 }];
  assert.throws(
    () => checkLayout(sourceOf(older)),
    (e: unknown) => e instanceof AbiMismatchError && e.struct === "pal_policy_value" && e.field === "flags" && e.actual === "absent",
  );
});

test("checkLayout refuses an added member, a missing member, a size change and a missing map", () => {
  const added = btfFromLayouts();
  const ctValue = added.get("pal_ct")?.value;
  assert.ok(ctValue);
  ctValue.members = [...ctValue.members, { name: "mark", offset: 40, size: 4 }];
  assert.throws(() => checkLayout(sourceOf(added)), (e: unknown) => e instanceof AbiMismatchError && e.field === "mark" && e.expected === "absent");

  const missing = btfFromLayouts();
  const ep = missing.get("pal_endpoints")?.value;
  assert.ok(ep);
  ep.members = ep.members.filter((m) => m.name !== "flags");
  assert.throws(() => checkLayout(sourceOf(missing)), (e: unknown) => e instanceof AbiMismatchError && e.field === "flags" && e.actual === "absent");

  const resized = btfFromLayouts();
  const cfgKey = resized.get("pal_config_map")?.key;
  assert.ok(cfgKey);
  cfgKey.size = 8;
  assert.throws(() => checkLayout(sourceOf(resized)), (e: unknown) => e instanceof AbiMismatchError && e.map === "pal_config_map" && e.actual === "8 bytes");

  const gone = btfFromLayouts();
  gone.delete("pal_frags");
  assert.throws(() => checkLayout(sourceOf(gone)), (e: unknown) => e instanceof AbiMismatchError && e.map === "pal_frags" && e.cause instanceof Error);
});
