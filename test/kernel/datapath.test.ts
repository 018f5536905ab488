/**
 * The datapath against the real kernel (root): the endpoint object loaded
 * with pinned maps under a unique bpffs pin root, endpoints bound to dummy
 * interfaces, and verdicts observed through BPF_PROG_TEST_RUN on packets
 * from test/lib/packets.ts. Each verdict is checked by its return value AND
 * by the reason counter it bumped, so "dropped for the right reason" is what
 * passes. Everything created is removed in `after`, even on failure.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CFG_CT_LEGACY_KEYS, CFG_EVENTS_ALLOWED, CT_SEEN_REPLY, CT_SEEN_SYN, type CtKey, type FlowEvent } from "../../src/datapath/abi.ts";
import { AbiEnumMismatchError, reasonAllows, REASONS, type ReasonName } from "../../src/datapath/reasons.ts";
import { attachPinnedPrograms, Datapath, type ProgramName } from "../../src/datapath/datapath.ts";
import { listenTransparent } from "../../src/datapath/transparent-socket.ts";
import { DatapathError } from "../../src/datapath/datapath-error.ts";
import { closeFd, linkInfo, mapInfo, objGet } from "../../src/datapath/native.ts";
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  emptyDiff,
  EP_AUDIT_ISOLATED_INGRESS,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  EP_NO_ANY_PEER_INGRESS,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IPCACHE_HOST,
  ipcacheKeyOf,
  POLICY_FLAG_AUDIT_HTTP,
  POLICY_FLAG_AUDIT_HTTP_DENY,
  POLICY_FLAG_AUDIT_TCP_LIMITED,
  POLICY_FLAG_AUDIT_TCP_STRICT,
  POLICY_FLAG_HTTP,
  POLICY_FLAG_HTTP_DENY,
  POLICY_FLAG_TCP_LIMITED,
  POLICY_FLAG_TCP_STRICT,
  ipcacheKeyString,
  policyKeyString,
  PROTOCOL_NUMBERS,
  VERDICT_ALLOW,
  VERDICT_DENY,
  VERDICT_NONE,
  type DesiredState,
  type Direction,
  type IpcacheEntry,
  type PolicyEntry,
  type PolicyVerdict,
  type StateDiff,
  type TcpLimits,
} from "../../src/policy/desired-state.ts";
import { parseCidr } from "../../src/policy/ip.ts";
import { buildArpRequest, buildFragments, buildPacket, type PacketSpec } from "../lib/packets.ts";
import { run, tag, uniquePinRoot } from "../lib/kernel.ts";
import { repositoryRoot } from "../../src/repository-root.ts";
import { recordKernelObject } from "../lib/kernel-journal.ts";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
/** What the to-pod hook returns for a packet it steers: bpf_redirect() to the proxy device. */
const TC_ACT_REDIRECT = 7;

// The world of these tests: local pods a (not isolated) and b (isolated both
// ways, audit-isolated on ingress); c is a remote pod; a /16 CIDR; a host address.
const A = { v4: "10.0.0.1", v6: "fd00::1", identity: 300 };
const B = { v4: "10.0.0.2", v6: "fd00::2", identity: 301 };
const C = { v4: "10.0.0.3", v6: "fd00::3", identity: 302 };
const CIDR = { cidr: "192.168.0.0/16", inside: "192.168.5.5", identity: 400 };
const HOST_IP = "10.0.0.254";
const WORLD_IP = "198.51.100.1";
const SLOT_A = 10;
const SLOT_B = 20;

const RULE = {
  aToB80: 1,
  anyUdp53: 2,
  cRange8080: 3,
  anyDeny81: 4,
  aAllow81: 5,
  cAudit9090: 6,
  cAudit9090Deny: 7,
  cidr443: 8,
  egressToC: 9,
  aStrict7000: 10,
  cStrict7001: 11,
  anyLoose7001: 12,
  cStrict7002: 13,
  anyStrict7002: 14,
  cAuditStrict7003: 15,
  cAuditStrict7003Audit: 16,
  cLoose7004: 17,
  anyStrict7004: 18,
  egressStrictToCidr: 19,
  anyMax2_7100: 20,
  anyRate_7101: 21,
  cLimited7102: 22,
  anyLoose7102: 23,
  cLoose7103: 24,
  anyLimited7103: 25,
  cLoose7104: 26,
  cAuditLimited7104: 27,
  anyMaxRate7105: 28,
  cLimited7106: 29,
  anyLimited7106: 30,
  anyMax1_7107: 31,
  anyOther7107: 32,
  anyMax3_7108: 33,
  egressMax1ToCidr7200: 34,
  cHttp7300: 35,
  cHttp7301: 36,
  anyLoose7301: 37,
  cLoose7302: 38,
  anyHttpDeny7302: 39,
  cLoose7303: 40,
  cAuditHttp7303: 41,
  cLoose7304: 42,
  cAuditDeny7304: 43,
  cHttpUdp7300: 44,
  cLoose7306: 45,
  aHttpDeny7305: 46,
} as const;

function entry(
  identity: number,
  direction: Direction,
  protocol: number,
  port: number,
  portPrefixLen: number,
  verdict: PolicyVerdict,
  ruleId: number,
  audit: { verdict: PolicyVerdict; ruleId: number } = { verdict, ruleId },
): PolicyEntry {
  return {
    key: { slot: SLOT_B, identity, direction, protocol, port, portPrefixLen },
    value: { verdict, auditVerdict: audit.verdict, ruleId, auditRuleId: audit.ruleId, flags: 0 },
  };
}

/** `entry` with POLICY_FLAG_* bits set (tcp.strict, as the compiler folds it per verdict). */
function withFlags(policy: PolicyEntry, flags: number): PolicyEntry {
  return { key: policy.key, value: { ...policy.value, flags } };
}

const { TCP, UDP } = PROTOCOL_NUMBERS;
const ALLOW_A_TO_B_80 = entry(A.identity, DIRECTION_INGRESS, TCP, 80, 16, VERDICT_ALLOW, RULE.aToB80);
const POLICY_B: PolicyEntry[] = [
  ALLOW_A_TO_B_80,
  entry(IDENTITY_ANY, DIRECTION_INGRESS, UDP, 53, 16, VERDICT_ALLOW, RULE.anyUdp53),
  entry(C.identity, DIRECTION_INGRESS, TCP, 8080, 13, VERDICT_ALLOW, RULE.cRange8080), // 8080-8087
  entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 81, 16, VERDICT_DENY, RULE.anyDeny81),
  entry(A.identity, DIRECTION_INGRESS, TCP, 81, 16, VERDICT_ALLOW, RULE.aAllow81),
  entry(C.identity, DIRECTION_INGRESS, TCP, 9090, 16, VERDICT_ALLOW, RULE.cAudit9090, { verdict: VERDICT_DENY, ruleId: RULE.cAudit9090Deny }),
  entry(CIDR.identity, DIRECTION_INGRESS, TCP, 443, 16, VERDICT_ALLOW, RULE.cidr443),
  entry(C.identity, DIRECTION_EGRESS, 0, 0, 0, VERDICT_ALLOW, RULE.egressToC),
];
// tcp.strict: a from a on 7000; on 7001, 7002 and 7004 the identity entry of c and
// the any-peer entry both allow, strict in one, the other or both; 7003 is allowed,
// with the audit verdict's allow strict; b's egress to the CIDR is strict, any protocol.
const STRICT_A_TO_B_7000 = withFlags(entry(A.identity, DIRECTION_INGRESS, TCP, 7000, 16, VERDICT_ALLOW, RULE.aStrict7000), POLICY_FLAG_TCP_STRICT);
const POLICY_B_STRICT: PolicyEntry[] = [
  STRICT_A_TO_B_7000,
  withFlags(entry(C.identity, DIRECTION_INGRESS, TCP, 7001, 16, VERDICT_ALLOW, RULE.cStrict7001), POLICY_FLAG_TCP_STRICT),
  entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7001, 16, VERDICT_ALLOW, RULE.anyLoose7001),
  withFlags(entry(C.identity, DIRECTION_INGRESS, TCP, 7002, 16, VERDICT_ALLOW, RULE.cStrict7002), POLICY_FLAG_TCP_STRICT),
  withFlags(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7002, 16, VERDICT_ALLOW, RULE.anyStrict7002), POLICY_FLAG_TCP_STRICT),
  withFlags(
    entry(C.identity, DIRECTION_INGRESS, TCP, 7003, 16, VERDICT_ALLOW, RULE.cAuditStrict7003, { verdict: VERDICT_ALLOW, ruleId: RULE.cAuditStrict7003Audit }),
    POLICY_FLAG_AUDIT_TCP_STRICT,
  ),
  entry(C.identity, DIRECTION_INGRESS, TCP, 7004, 16, VERDICT_ALLOW, RULE.cLoose7004),
  withFlags(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7004, 16, VERDICT_ALLOW, RULE.anyStrict7004), POLICY_FLAG_TCP_STRICT),
  withFlags(entry(CIDR.identity, DIRECTION_EGRESS, 0, 0, 0, VERDICT_ALLOW, RULE.egressStrictToCidr), POLICY_FLAG_TCP_STRICT | POLICY_FLAG_AUDIT_TCP_STRICT),
];
POLICY_B.push(...POLICY_B_STRICT);
// Connection limits (PAL_POLICY_F_TCP_LIMITED, charged to the entry's rule, whose
// limits pal_tcp_limits holds): sources anywhere on 7100 (at most 2 each), 7101 (1/s,
// burst 2), 7105 (both), 7107 and 7108; on 7102 and 7103 c's entry and the any-peer
// entry both allow, limited in one only; on 7106 both are limited, by different rules;
// 7104's audit verdict alone is limited; b's egress to the CIDR on 7200, at most 1.
const limited = (policy: PolicyEntry): PolicyEntry => withFlags(policy, POLICY_FLAG_TCP_LIMITED);
const LIMITED_ANY_7107 = limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7107, 16, VERDICT_ALLOW, RULE.anyMax1_7107));
const POLICY_B_LIMITED: PolicyEntry[] = [
  limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7100, 16, VERDICT_ALLOW, RULE.anyMax2_7100)),
  limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7101, 16, VERDICT_ALLOW, RULE.anyRate_7101)),
  limited(entry(C.identity, DIRECTION_INGRESS, TCP, 7102, 16, VERDICT_ALLOW, RULE.cLimited7102)),
  entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7102, 16, VERDICT_ALLOW, RULE.anyLoose7102),
  entry(C.identity, DIRECTION_INGRESS, TCP, 7103, 16, VERDICT_ALLOW, RULE.cLoose7103),
  limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7103, 16, VERDICT_ALLOW, RULE.anyLimited7103)),
  withFlags(
    entry(C.identity, DIRECTION_INGRESS, TCP, 7104, 16, VERDICT_ALLOW, RULE.cLoose7104, { verdict: VERDICT_ALLOW, ruleId: RULE.cAuditLimited7104 }),
    POLICY_FLAG_AUDIT_TCP_LIMITED,
  ),
  limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7105, 16, VERDICT_ALLOW, RULE.anyMaxRate7105)),
  limited(entry(C.identity, DIRECTION_INGRESS, TCP, 7106, 16, VERDICT_ALLOW, RULE.cLimited7106)),
  limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7106, 16, VERDICT_ALLOW, RULE.anyLimited7106)),
  LIMITED_ANY_7107,
  limited(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7108, 16, VERDICT_ALLOW, RULE.anyMax3_7108)),
  limited(entry(CIDR.identity, DIRECTION_EGRESS, TCP, 7200, 16, VERDICT_ALLOW, RULE.egressMax1ToCidr7200)),
];
POLICY_B.push(...POLICY_B_LIMITED);
// HTTP rules (steering to the proxy): c to b on 7300 only by an HTTP allow (also on UDP 7300, which
// is never steered); on 7301 c's entry is HTTP but the any-peer entry allows plainly (AND: not
// steered); on 7302 c's allow is plain and an HTTP Deny covers the any-peer entry, which allows
// nothing (OR: steered); 7303's audit allow is by HTTP rules; 7304's audit verdict denies, with an
// HTTP Deny beside it (an audit deny steers nothing); 7306 is plain; into a (isolated in neither
// verdict) on 7305 an HTTP Deny on an entry without a verdict, which the kernel never looks up.
const httpEntry = (policy: PolicyEntry, flags: number): PolicyEntry => withFlags(policy, flags);
const PLAIN_C_TO_B_7306 = entry(C.identity, DIRECTION_INGRESS, TCP, 7306, 16, VERDICT_ALLOW, RULE.cLoose7306);
const POLICY_B_HTTP: PolicyEntry[] = [
  httpEntry(entry(C.identity, DIRECTION_INGRESS, TCP, 7300, 16, VERDICT_ALLOW, RULE.cHttp7300), POLICY_FLAG_HTTP | POLICY_FLAG_AUDIT_HTTP),
  httpEntry(entry(C.identity, DIRECTION_INGRESS, UDP, 7300, 16, VERDICT_ALLOW, RULE.cHttpUdp7300), POLICY_FLAG_HTTP | POLICY_FLAG_AUDIT_HTTP),
  httpEntry(entry(C.identity, DIRECTION_INGRESS, TCP, 7301, 16, VERDICT_ALLOW, RULE.cHttp7301), POLICY_FLAG_HTTP | POLICY_FLAG_AUDIT_HTTP),
  entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7301, 16, VERDICT_ALLOW, RULE.anyLoose7301),
  entry(C.identity, DIRECTION_INGRESS, TCP, 7302, 16, VERDICT_ALLOW, RULE.cLoose7302),
  httpEntry(entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7302, 16, VERDICT_NONE, 0, { verdict: VERDICT_NONE, ruleId: RULE.anyHttpDeny7302 }), POLICY_FLAG_HTTP_DENY),
  httpEntry(entry(C.identity, DIRECTION_INGRESS, TCP, 7303, 16, VERDICT_ALLOW, RULE.cLoose7303, { verdict: VERDICT_ALLOW, ruleId: RULE.cAuditHttp7303 }), POLICY_FLAG_AUDIT_HTTP),
  httpEntry(entry(C.identity, DIRECTION_INGRESS, TCP, 7304, 16, VERDICT_ALLOW, RULE.cLoose7304, { verdict: VERDICT_DENY, ruleId: RULE.cAuditDeny7304 }), POLICY_FLAG_AUDIT_HTTP_DENY),
  PLAIN_C_TO_B_7306,
  (() => {
    const deny = httpEntry(entry(C.identity, DIRECTION_INGRESS, TCP, 7305, 16, VERDICT_NONE, 0, { verdict: VERDICT_NONE, ruleId: RULE.aHttpDeny7305 }), POLICY_FLAG_HTTP_DENY);
    return { key: { ...deny.key, slot: SLOT_A }, value: deny.value };
  })(),
];
POLICY_B.push(...POLICY_B_HTTP);
const max = (maxConnections: number): TcpLimits => ({ maxConnections, rate: 0, burst: 0 });
const TCP_LIMITS: [number, TcpLimits][] = [
  [RULE.anyMax2_7100, max(2)],
  [RULE.anyRate_7101, { maxConnections: 0, rate: 1, burst: 2 }],
  [RULE.cLimited7102, max(1)],
  [RULE.anyLimited7103, max(1)],
  [RULE.cAuditLimited7104, max(1)],
  [RULE.anyMaxRate7105, { maxConnections: 5, rate: 1, burst: 1 }],
  [RULE.cLimited7106, max(1)],
  [RULE.anyLimited7106, max(5)],
  [RULE.anyMax1_7107, max(1)],
  [RULE.anyMax3_7108, max(3)],
  [RULE.egressMax1ToCidr7200, max(1)],
];

const ENDPOINT_A = { endpointId: 1, identity: A.identity, slot: SLOT_A, flags: 0 };
const ENDPOINT_B = { endpointId: 2, identity: B.identity, slot: SLOT_B, flags: EP_ISOLATED_INGRESS | EP_ISOLATED_EGRESS | EP_AUDIT_ISOLATED_INGRESS };

/** As the map reads back: prefixes as text. */
const IPCACHE = [
  { cidr: `${A.v4}/32`, identity: A.identity, flags: 0 },
  { cidr: `${A.v6}/128`, identity: A.identity, flags: 0 },
  { cidr: `${B.v4}/32`, identity: B.identity, flags: 0 },
  { cidr: `${B.v6}/128`, identity: B.identity, flags: 0 },
  { cidr: `${C.v4}/32`, identity: C.identity, flags: 0 },
  { cidr: `${C.v6}/128`, identity: C.identity, flags: 0 },
  { cidr: CIDR.cidr, identity: CIDR.identity, flags: 0 },
  { cidr: `${HOST_IP}/32`, identity: IDENTITY_HOST, flags: IPCACHE_HOST },
];

/** As the compiler hands it over: prefixes as bytes. */
function ipcacheEntry({ cidr, identity, flags }: { cidr: string; identity: number; flags: number }): IpcacheEntry {
  return { key: ipcacheKeyOf(parseCidr(cidr)), value: { identity, flags } };
}

function initialDiff(): StateDiff {
  return {
    policyUpserts: POLICY_B,
    endpointUpserts: [
      ["t/a", ENDPOINT_A],
      ["t/b", ENDPOINT_B],
      ["t/unattached", { endpointId: 3, identity: 303, slot: 30, flags: 0 }],
    ],
    ipcacheUpserts: IPCACHE.map(ipcacheEntry),
    ipcacheRemovals: [],
    endpointRemovals: [],
    policyRemovals: [],
    tcpLimitUpserts: TCP_LIMITS,
    tcpLimitRemovals: [],
  };
}

function stateOf(diff: StateDiff): DesiredState {
  return {
    ipcache: new Map(diff.ipcacheUpserts.map((e) => [ipcacheKeyString(e.key), e])),
    endpoints: new Map(diff.endpointUpserts),
    policy: new Map(diff.policyUpserts.map((e) => [policyKeyString(e.key), e])),
    rules: new Map(),
    identities: new Map(),
    tcpLimits: new Map(diff.tcpLimitUpserts),
  };
}

/** Test interfaces and their ifindexes. */
interface TestInterfaces {
  names: string[];
  ifindexes: number[];
  remove(): void;
}

/**
 * Creates `count` ifb devices: single-ended like dummy devices (which this
 * kernel lacks: CONFIG_DUMMY is off), enough for test runs, which bind the
 * skb to an existing device, and for attaching programs.
 */
function createInterfaces(count: number): TestInterfaces {
  const prefix = `pl-${tag()}`;
  const names: string[] = [];
  const remove = () => {
    for (const name of names) {
      try {
        run("ip", ["link", "del", name]);
      } catch {
        // Already gone (a test may delete its own).
      }
    }
  };
  try {
    for (let i = 0; i < count; i++) {
      recordKernelObject("link", `${prefix}${i}`);
      run("ip", ["link", "add", `${prefix}${i}`, "type", "ifb"]);
      names.push(`${prefix}${i}`);
    }
  } catch (error) {
    remove();
    throw error;
  }
  const ifindexes = names.map((name) => Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim()));
  return { names, ifindexes, remove };
}

let dummies: TestInterfaces;
let datapath: Datapath;
let pinRoot: string;
let ifA: number;
let ifB: number;
let ifNoEndpoint: number;
const events: FlowEvent[] = [];
/** Every reason a test run was counted for, with its verdict checked against reasonAllows. */
const observed = new Set<ReasonName>();
let nextPort = 30000;
const SECOND_NS = 1_000_000_000n;

/** A source port no earlier test used, so each flow starts without conntrack state. */
function freshPort(): number {
  return nextPort++;
}

function ifindexOf(pod: string): number | undefined {
  return pod === "t/a" ? ifA : pod === "t/b" ? ifB : undefined;
}

/** Runs `frame` and checks the verdict and that exactly `reason` was counted for it. */
function expectVerdict(program: ProgramName, ifindex: number, frame: Buffer, reason: ReasonName, message: string, retvalExpected?: number): void {
  const before = datapath.reasonStats();
  const { retval } = datapath.testRun(program, frame, { ifindex });
  const after = datapath.reasonStats();
  const counted = (Object.keys(REASONS) as ReasonName[]).filter((name) => after[name].packets !== before[name].packets);
  assert.deepEqual(counted, [reason], `${message}: counted reasons`);
  assert.equal(after[reason].packets - before[reason].packets, 1n, `${message}: one packet`);
  assert.equal(after[reason].bytes - before[reason].bytes, BigInt(frame.length), `${message}: its bytes`);
  assert.equal(retval, retvalExpected ?? (reasonAllows(REASONS[reason]) ? TC_ACT_OK : TC_ACT_SHOT), `${message}: retval`);
  observed.add(reason);
}

/** Builds the endpoint object from a copy of bpf/ whose ABI header went through `edit`; returns its path. */
function buildEditedObject(edit: (header: string) => string): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "pl-abi-"));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    cpSync(join(repositoryRoot(), "bpf"), dir, { recursive: true, filter: (source) => basename(source) !== "out" });
    const header = join(dir, "include", "palisade_abi.h");
    const before = readFileSync(header, "utf8");
    const after = edit(before);
    assert.notEqual(after, before, "the edit changes the header");
    writeFileSync(header, after);
    run("make", ["-s", "-C", dir, "out/endpoint.bpf.o"]);
  } catch (error) {
    remove();
    throw error;
  }
  return { path: join(dir, "out", "endpoint.bpf.o"), remove };
}

/** From a remote peer into pod b (b's ingress, host-side egress). */
function intoB(spec: Omit<PacketSpec, "dst"> & { dst?: string }, reason: ReasonName, message: string): void {
  expectVerdict("to-pod", ifB, buildPacket({ dst: spec.src.includes(":") ? B.v6 : B.v4, ...spec }), reason, message);
}

/** From pod b out (b's egress, host-side ingress). */
function fromB(spec: Omit<PacketSpec, "src"> & { src?: string }, reason: ReasonName, message: string): void {
  expectVerdict("from-pod", ifB, buildPacket({ src: spec.dst.includes(":") ? B.v6 : B.v4, ...spec }), reason, message);
}

async function waitForEvent(predicate: (event: FlowEvent) => boolean, what: string): Promise<FlowEvent> {
  for (let waited = 0; waited < 2000; waited += 10) {
    const found = events.find(predicate);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`no ${what} event within 2 s; got ${JSON.stringify(events, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
}

function bpftool(...args: string[]): unknown {
  return JSON.parse(execFileSync("bpftool", ["-j", ...args], { encoding: "utf8" }));
}

/**
 * What the kernel says about the link pinned at `pin`: its fdinfo (this
 * bpftool predates tcx and cannot show tcx links by device) and the name of
 * its program.
 */
function linkAt(pin: string): { id: number; ifindex: number; attachType: string; program: string; programId: number } {
  const fd = objGet(pin);
  try {
    const fdinfo = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, "m").exec(fdinfo)?.[1] ?? "";
    const programId = linkInfo(fd).progId;
    const program = bpftool("prog", "show", "id", String(programId)) as { name: string };
    return { id: Number(field("link_id")), ifindex: Number(field("ifindex")), attachType: field("attach_type"), program: program.name, programId };
  } finally {
    closeFd(fd);
  }
}

/** Links as {@link linkAt} gives them, without the program they run. */
function withoutProgram(links: ReturnType<typeof linkAt>[]): Omit<ReturnType<typeof linkAt>, "programId">[] {
  return links.map(({ programId: _, ...rest }) => rest);
}

/** The id of the program pinned at `pin`. */
function programIdAt(pin: string): number {
  return (bpftool("prog", "show", "pinned", pin) as { id: number }).id;
}

/** Asserts that each mirror holds exactly its map's entries it covers (the tries' full-length ones, the endpoints of small ifindexes). */
function assertExactMirrors(dp: Datapath): void {
  const byKey = <K, V>(entries: [K, V][], keyString: (key: K) => string) => new Map(entries.map(([key, value]) => [keyString(key), value]));
  assert.deepEqual(
    byKey(dp.maps.policy.mirror.entries(), policyKeyString),
    byKey(dp.maps.policy.entries().filter(([key]) => key.protocol !== 0 && key.portPrefixLen === 16), policyKeyString),
    "pal_policy_exact holds the exact-port entries of pal_policy",
  );
  assert.deepEqual(
    byKey(dp.maps.ipcache.mirror.entries(), ipcacheKeyString),
    byKey(dp.maps.ipcache.entries().filter(([key]) => key.prefixLen === key.address.length * 8), ipcacheKeyString),
    "pal_ipcache_hosts holds the host entries of pal_ipcache",
  );
  const size = dp.maps.endpoints.mirror.maxEntries;
  assert.deepEqual(
    new Map(dp.maps.endpoints.mirror.entries().filter(([, value]) => value.endpointId !== 0).map(([key, value]) => [key.ifindex, value])),
    new Map(dp.maps.endpoints.entries().filter(([key]) => key.ifindex < size).map(([key, value]) => [key.ifindex, value])),
    "pal_endpoints_by_ifindex holds the endpoints of interfaces below its size",
  );
}

describe("datapath on the real kernel", () => {
  before(() => {
    dummies = createInterfaces(3);
    [ifA = 0, ifB = 0, ifNoEndpoint = 0] = dummies.ifindexes;
    pinRoot = uniquePinRoot("dp");
    datapath = Datapath.open({ pinRoot });
    datapath.events((event) => events.push(event)).unref();
  });

  after(() => {
    datapath?.destroy();
    dummies?.remove();
  });

  test("loads with pinned maps, checks the BTF layout and writes the default config", () => {
    for (const map of [
      "pal_ipcache",
      "pal_endpoints",
      "pal_policy",
      "pal_ct",
      "pal_frags",
      "pal_config_map",
      "pal_rule_stats",
      "pal_reason_stats",
      "pal_events",
      "pal_tcp_limits",
      "pal_tcp_sources",
    ]) {
      assert.ok(existsSync(join(pinRoot, map)), `${map} is pinned`);
    }
    assert.deepEqual(datapath.readConfig(), {
      revision: 1,
      flags: 0,
      ctTimeoutSynS: 60,
      ctTimeoutEstablishedS: 21600,
      ctTimeoutClosingS: 10,
      ctTimeoutUdpS: 60,
      ctTimeoutOtherS: 60,
    });
  });

  test("the reason enum is checked at load: an object whose header renumbers a reason is refused", () => {
    const drifted = buildEditedObject((header) => header.replace("PAL_REASON_REVOKED = 21,", "PAL_REASON_REVOKED = 22,"));
    const root = uniquePinRoot("dp-drifted");
    try {
      assert.throws(
        () => Datapath.open({ pinRoot: root, objectPath: drifted.path }),
        (error: unknown) =>
          error instanceof AbiEnumMismatchError &&
          error.message === "Enum pal_reason does not match the ABI: PAL_REASON_REVOKED is 22 in BTF, expected 21",
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
      drifted.remove();
    }
  });

  test("map sizes are applied when the maps are created, and pinned maps keep theirs when opened with other sizes", () => {
    const root = uniquePinRoot("dp-sizes");
    const expected: Record<string, number> = { pal_policy: 4096, pal_ct: 2048, pal_ipcache: 1024, pal_endpoints: 64, pal_frags: 128 };
    const checkSizes = (): void => {
      for (const [map, size] of Object.entries(expected)) {
        const fd = objGet(join(root, map));
        try {
          assert.equal(mapInfo(fd).maxEntries, size, map);
        } finally {
          closeFd(fd);
        }
      }
    };
    const sized = Datapath.open({ pinRoot: root, mapSizes: { policy: 4096, conntrack: 2048, ipcache: 1024, endpoints: 64, fragments: 128 } });
    sized.close();
    // An agent built with other defaults (or asked for other sizes) takes the pinned maps over as they are.
    const again = Datapath.open({ pinRoot: root, mapSizes: { policy: 8192 } });
    try {
      checkSizes();
    } finally {
      again.destroy();
    }
  });

  test("an older pinned set without the connection-limit maps is adopted: its maps kept, the new ones made and pinned", () => {
    const root = uniquePinRoot("dp-older");
    const older = Datapath.open({ pinRoot: root, mapSizes: { policy: 4096, tcpSources: 512 } });
    try {
      older.maps.policy.update(ALLOW_A_TO_B_80.key, ALLOW_A_TO_B_80.value);
      older.close();
      // What an agent from before connection limits left pinned.
      for (const map of ["pal_tcp_limits", "pal_tcp_sources"]) rmSync(join(root, map));
      const upgraded = Datapath.open({ pinRoot: root });
      try {
        assert.deepEqual(upgraded.maps.policy.lookup(ALLOW_A_TO_B_80.key), ALLOW_A_TO_B_80.value, "the pinned policy map is re-adopted");
        for (const map of ["pal_tcp_limits", "pal_tcp_sources"]) assert.ok(existsSync(join(root, map)), `${map} is pinned again`);
        const fd = objGet(join(root, "pal_tcp_sources"));
        try {
          assert.equal(mapInfo(fd).maxEntries, 65536, "made with the default size");
        } finally {
          closeFd(fd);
        }
        upgraded.maps.tcpLimits.update(5, { maxConnections: 1, rate: 0, burst: 0 });
        assert.deepEqual(upgraded.maps.tcpLimits.lookup(5), { maxConnections: 1, rate: 0, burst: 0 });
      } finally {
        upgraded.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("an older pinned set without the mirrors is adopted: the hashes are made as large as their tries, and the full sync fills every mirror", () => {
    const root = uniquePinRoot("dp-nohash");
    const older = Datapath.open({ pinRoot: root, mapSizes: { policy: 4096, ipcache: 2048 } });
    try {
      older.maps.policy.upsert(POLICY_B.map((e) => [e.key, e.value] as const));
      older.maps.ipcache.upsert(IPCACHE.map(ipcacheEntry).map((e) => [e.key, e.value] as const));
      older.maps.endpoints.update({ ifindex: ifB }, ENDPOINT_B);
      older.close();
      // What an agent from before the mirrors left pinned.
      for (const map of ["pal_policy_exact", "pal_ipcache_hosts", "pal_endpoints_by_ifindex"]) rmSync(join(root, map));
      const upgraded = Datapath.open({ pinRoot: root });
      try {
        for (const [map, size] of [["pal_policy_exact", 4096], ["pal_ipcache_hosts", 2048]] as const) {
          const fd = objGet(join(root, map));
          try {
            assert.equal(mapInfo(fd).maxEntries, size, `${map} is made as large as its trie`);
          } finally {
            closeFd(fd);
          }
        }
        assert.equal(upgraded.maps.policy.mirror.keys().length, 0, "made empty: every lookup asks the trie");
        assert.equal(upgraded.maps.endpoints.mirror.lookup({ ifindex: ifB })?.endpointId, 0, "made empty: every lookup asks the hash");
        const synced = upgraded.replaceAll(stateOf(initialDiff()), (pod) => (pod === "t/b" ? ifB : undefined));
        assert.equal(synced.policyUpserts + synced.ipcacheUpserts + synced.endpointUpserts, 0, "the maps hold the state already");
        assert.deepEqual(upgraded.maps.endpoints.mirror.lookup({ ifindex: ifB }), ENDPOINT_B);
        assertExactMirrors(upgraded);
      } finally {
        upgraded.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("apply writes a diff in batches, skips endpoints without an interface and bumps the revision", () => {
    const result = datapath.apply(initialDiff(), ifindexOf);
    assert.deepEqual(result, {
      policyUpserts: POLICY_B.length,
      endpointUpserts: 2,
      ipcacheUpserts: IPCACHE.length,
      ipcacheRemovals: 0,
      endpointRemovals: 0,
      policyRemovals: 0,
      tcpLimitUpserts: TCP_LIMITS.length,
      tcpLimitRemovals: 0,
      skippedEndpoints: ["t/unattached"],
      revision: 2,
    });
    assert.deepEqual(new Map(datapath.maps.tcpLimits.entries()), new Map(TCP_LIMITS));
    const state = datapath.readState();
    assert.deepEqual(state.endpoints, new Map([[ifA, ENDPOINT_A], [ifB, ENDPOINT_B]]));
    assert.deepEqual(new Set(state.ipcache.map((e) => JSON.stringify(e))), new Set(IPCACHE.map((e) => JSON.stringify(e))));
    assert.equal(state.policy.length, POLICY_B.length);
  });

  test("an interface without endpoint state fails closed", () => {
    const frame = buildPacket({ src: C.v4, dst: B.v4, protocol: "TCP", sport: freshPort(), dport: 80 });
    expectVerdict("to-pod", ifNoEndpoint, frame, "no-endpoint", "no endpoint, to-pod");
    expectVerdict("from-pod", ifNoEndpoint, frame, "no-endpoint", "no endpoint, from-pod");
  });

  test("a direction no policy isolates passes", () => {
    const frame = buildPacket({ src: C.v4, dst: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 });
    expectVerdict("to-pod", ifA, frame, "not-isolated", "into a");
  });

  test("isolated without a matching rule is dropped by default", () => {
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "c to b:80");
    intoB({ src: WORLD_IP, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "world to b:80");
    fromB({ dst: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "b to a (egress isolated)");
  });

  test("allow by identity, by ANY, by CIDR identity, and by a port range prefix", () => {
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "policy-allow", "a to b:80 by identity");
    intoB({ src: C.v4, protocol: "UDP", sport: freshPort(), dport: 53 }, "policy-allow", "c to b:53/udp by ANY");
    intoB({ src: WORLD_IP, protocol: "UDP", sport: freshPort(), dport: 53 }, "policy-allow", "world to b:53/udp by ANY");
    intoB({ src: CIDR.inside, protocol: "TCP", sport: freshPort(), dport: 443 }, "policy-allow", "CIDR member to b:443");
    intoB({ src: CIDR.inside, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "CIDR member to b:80");
    for (const port of [8080, 8083, 8087]) intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: port }, "policy-allow", `c to b:${port}`);
    for (const port of [8079, 8088]) intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: port }, "default-deny", `c to b:${port}`);
    fromB({ dst: C.v4, protocol: "UDP", sport: freshPort(), dport: 7 }, "policy-allow", "b to c, any protocol");
  });

  test("ingress from a host address passes even when isolated; non-IP frames pass", () => {
    intoB({ src: HOST_IP, protocol: "TCP", sport: freshPort(), dport: 12345 }, "host", "host to b");
    expectVerdict("to-pod", ifB, buildArpRequest(C.v4, B.v4), "not-ip", "ARP into b");
  });

  test("a deny rule beats an allow rule and is reported as a DENIED event", async () => {
    const sport = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 81 }, "policy-deny", "a to b:81");
    const event = await waitForEvent((e) => e.kind === "denied" && e.sport === sport, "denied");
    assert.equal(event.reason, "policy-deny");
    assert.equal(event.reasonCode, REASONS["policy-deny"]);
    assert.equal(event.ruleId, RULE.anyDeny81);
    assert.equal(event.remoteIdentity, A.identity);
    assert.equal(event.endpointId, ENDPOINT_B.endpointId);
    assert.equal(event.ifindex, ifB);
    assert.equal(event.direction, "ingress");
    assert.equal(event.family, 4);
    assert.equal(event.src, A.v4);
    assert.equal(event.dst, B.v4);
    assert.equal(event.dport, 81);
    assert.equal(event.protocol, TCP);
    assert.equal(event.packetLen, 54);
  });

  test("an audit-mode deny passes the packet and reports an AUDIT event", async () => {
    const sport = freshPort();
    intoB({ src: C.v4, protocol: "TCP", sport, dport: 9090 }, "policy-allow", "c to b:9090");
    const event = await waitForEvent((e) => e.kind === "audit" && e.sport === sport, "audit");
    assert.equal(event.ruleId, RULE.cAudit9090Deny);
    assert.equal(event.reason, "policy-deny");
    assert.equal(event.src, C.v4);
  });

  test("allowed new flows are reported only when the config asks for it", async () => {
    const quiet = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport: quiet, dport: 80 }, "policy-allow", "without the flag");
    datapath.updateConfig({ flags: CFG_EVENTS_ALLOWED });
    try {
      const loud = freshPort();
      intoB({ src: A.v4, protocol: "TCP", sport: loud, dport: 80 }, "policy-allow", "with the flag");
      const event = await waitForEvent((e) => e.kind === "allowed" && e.sport === loud, "allowed");
      assert.equal(event.ruleId, RULE.aToB80);
      assert.equal(event.reason, "policy-allow");
      assert.equal(events.some((e) => e.sport === quiet), false, "no event for the flow before the flag");
    } finally {
      datapath.updateConfig({ flags: 0 });
    }
  });

  test("rule statistics count each new flow a rule decided", () => {
    const before = datapath.ruleStats().get(RULE.aToB80)?.packets ?? 0n;
    const sport = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "policy-allow", "first flow");
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "policy-allow", "second flow");
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["ack"] }, "established", "not a new flow");
    assert.equal((datapath.ruleStats().get(RULE.aToB80)?.packets ?? 0n) - before, 2n);
  });

  test("TCP: the reply of an allowed SYN passes; without the SYN it is dropped", () => {
    const sport = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "policy-allow", "SYN a to b:80");
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK b to a");
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["ack"] }, "established", "ACK a to b");
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: freshPort(), tcpFlags: ["syn", "ack"] }, "default-deny", "SYN-ACK of no flow");
    const entry = datapath.conntrackEntries().find((e) => e.flow.sport === sport);
    assert.ok(entry, "the flow is tracked");
    assert.deepEqual(entry.key, { family: 4, saddr: A.v4, daddr: B.v4, sport, dport: 80, protocol: TCP, direction: DIRECTION_INGRESS, endpointId: ENDPOINT_B.endpointId });
    assert.ok((entry.value.tcpFlags & CT_SEEN_REPLY) !== 0, "the reply was seen");
    assert.ok(entry.value.expiresNs > process.hrtime.bigint() + 21_000n * SECOND_NS, "the reply gave it the established timeout");
    assert.equal(entry.value.ruleId, RULE.aToB80);
  });

  test("upgrade: an entry an older agent keyed by its first packet out of canonical order is found while the collection flags such keys, and the flag goes with it", () => {
    // c (10.0.0.3) opened a connection to b:8080 before the upgrade: keyed by that SYN's tuple, source above destination, no swapped bit.
    const sport = freshPort();
    const legacy: CtKey = { family: 4, saddr: C.v4, daddr: B.v4, sport, dport: 8080, protocol: TCP, direction: DIRECTION_INGRESS, endpointId: ENDPOINT_B.endpointId };
    const value = { expiresNs: process.hrtime.bigint() + 3600n * SECOND_NS, revision: datapath.readConfig().revision, ruleId: RULE.cRange8080, remoteIdentity: C.identity, tcpFlags: CT_SEEN_SYN, tcpStrict: false, counted: false };
    const legacyFlag = () => (datapath.readConfig().flags & CFG_CT_LEGACY_KEYS) !== 0;
    datapath.maps.conntrack.update(legacy, value);
    assert.equal(legacyFlag(), false, "nothing flagged such keys yet");
    // Unflagged, the programs look up the canonical key only: the flow's packets meet policy as new flows.
    fromB({ dst: C.v4, protocol: "TCP", sport: 8080, dport: sport, tcpFlags: ["syn", "ack"] }, "policy-allow", "SYN-ACK b to c, the older entry not looked for");
    for (const entry of datapath.conntrackEntries().filter((e) => e.flow.sport === 8080 && e.flow.dport === sport)) datapath.maps.conntrack.delete(entry.key);
    datapath.gcConntrack();
    assert.equal(legacyFlag(), true, "the collection flags the out-of-order key it finds");
    fromB({ dst: C.v4, protocol: "TCP", sport: 8080, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK b to c");
    intoB({ src: C.v4, protocol: "TCP", sport, dport: 8080, tcpFlags: ["ack"] }, "established", "ACK c to b");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 9999, tcpFlags: ["ack"] }, "default-deny", "c to b on an untracked tuple");
    const entries = datapath.conntrackEntries().filter((e) => e.flow.saddr === C.v4 && e.flow.sport === sport);
    assert.deepEqual(entries.map((e) => e.key), [legacy], "the older entry served the flow, and no second entry was made");
    assert.ok((entries[0]?.value.tcpFlags ?? 0) & CT_SEEN_REPLY, "the reply was recorded on it");
    datapath.maps.conntrack.update(legacy, { ...value, expiresNs: 1n });
    datapath.gcConntrack();
    assert.equal(legacyFlag(), false, "the collection that removes the last such key clears the flag");
  });

  test("tcp.strict: a pure SYN opens a strict flow; any other first packet is dropped tcp-invalid and leaves no entry", async () => {
    const syn = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport: syn, dport: 7000 }, "policy-allow", "SYN a to b:7000");
    const tracked = datapath.conntrackEntries().find((e) => e.flow.sport === syn);
    assert.ok(tracked, "the SYN's flow is tracked");
    assert.equal(tracked.value.tcpStrict, true, "and marked strict");
    assert.equal(tracked.value.ruleId, RULE.aStrict7000);
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 7000, tcpFlags: ["syn", "psh"] }, "policy-allow", "SYN+PSH is still an opening SYN");

    const refused: [string, PacketSpec["tcpFlags"]][] = [
      ["ACK-only", ["ack"]],
      ["SYN-ACK", ["syn", "ack"]],
      ["SYN+FIN", ["syn", "fin"]],
      ["SYN+RST", ["syn", "rst"]],
      ["FIN-only", ["fin"]],
      ["RST-only", ["rst"]],
      ["no flags", []],
      ["IPv6 ACK-only", ["ack"]],
    ];
    const sports: number[] = [];
    for (const [what, tcpFlags] of refused) {
      const sport = freshPort();
      sports.push(sport);
      intoB({ src: what.startsWith("IPv6") ? A.v6 : A.v4, protocol: "TCP", sport, dport: 7000, tcpFlags }, "tcp-invalid", `${what} first packet a to b:7000`);
    }
    const entries = datapath.conntrackEntries();
    for (const sport of sports) assert.equal(entries.some((e) => e.flow.sport === sport), false, `no entry for sport ${sport}`);
    const event = await waitForEvent((e) => e.kind === "denied" && e.sport === sports[0], "tcp-invalid denied");
    assert.equal(event.reason, "tcp-invalid");
    assert.equal(event.reasonCode, REASONS["tcp-invalid"]);
    assert.equal(event.ruleId, RULE.aStrict7000, "the strict rule is named");
    assert.equal(event.remoteIdentity, A.identity);
    // The same first packets without tcp.strict open a flow, as after an agent restart.
    const loose = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport: loose, dport: 80, tcpFlags: ["ack"] }, "policy-allow", "ACK-only first packet a to b:80, not strict");
    assert.equal(datapath.conntrackEntries().find((e) => e.flow.sport === loose)?.value.tcpStrict, false);
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80, tcpFlags: [] }, "policy-allow", "no-flags first packet a to b:80, not strict");
  });

  test("tcp.strict: a tracked strict flow drops invalid flag combinations both ways and keeps its entry", async () => {
    const sport = freshPort();
    const forward = (tcpFlags: PacketSpec["tcpFlags"], reason: ReasonName, what: string) =>
      intoB({ src: A.v4, protocol: "TCP", sport, dport: 7000, tcpFlags }, reason, `${what} a to b`);
    const reply = (tcpFlags: PacketSpec["tcpFlags"], reason: ReasonName, what: string) =>
      fromB({ dst: A.v4, protocol: "TCP", sport: 7000, dport: sport, tcpFlags }, reason, `${what} b to a`);
    forward(["syn"], "policy-allow", "SYN");
    reply(["syn", "ack"], "reply", "SYN-ACK");
    forward(["ack"], "established", "ACK");
    forward(["psh", "ack"], "established", "PSH+ACK");
    reply(["psh", "ack"], "reply", "PSH+ACK");
    for (const [what, tcpFlags] of [["SYN+FIN", ["syn", "fin"]], ["SYN+RST", ["syn", "rst"]], ["FIN without ACK", ["fin"]], ["no flags", []], ["SYN+FIN+ACK", ["syn", "fin", "ack"]]] as const) {
      forward(tcpFlags, "tcp-invalid", what);
      reply(tcpFlags, "tcp-invalid", what);
    }
    const event = await waitForEvent((e) => e.reason === "tcp-invalid" && e.dport === sport, "tcp-invalid of a reply");
    assert.equal(event.kind, "denied");
    assert.equal(event.ruleId, RULE.aStrict7000);
    assert.equal(event.direction, "egress");
    reply(["fin", "ack"], "reply", "FIN+ACK");
    forward(["fin", "ack"], "established", "FIN+ACK");
    // A closing strict flow is not restarted by an invalid SYN: only a pure SYN starts over.
    forward(["syn", "fin"], "tcp-invalid", "SYN+FIN on the closing flow");
    reply(["rst"], "reply", "RST alone is valid");
    const entry = datapath.conntrackEntries().find((e) => e.flow.sport === sport);
    assert.ok(entry, "the flow is still tracked");
    assert.equal(entry.value.tcpStrict, true);
    assert.ok(entry.value.expiresNs <= process.hrtime.bigint() + 10n * SECOND_NS, "closing: the FINs shortened its deadline to the closing timeout");
    forward(["syn"], "policy-allow", "a new SYN on the closed tuple goes to policy again");
  });

  test("an endpoint flagged without any-peer entries for a direction skips that lookup", () => {
    datapath.setEndpoint(ifB, { ...ENDPOINT_B, flags: ENDPOINT_B.flags | EP_NO_ANY_PEER_INGRESS });
    try {
      // Only the any-peer entry admits UDP 53, and it is not looked up (the compiler never flags such a slot).
      intoB({ src: C.v4, protocol: "UDP", sport: freshPort(), dport: 53 }, "default-deny", "UDP c to b:53, any-peer entry skipped");
      intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "policy-allow", "a's own entry still decides");
    } finally {
      datapath.setEndpoint(ifB, ENDPOINT_B);
    }
    intoB({ src: C.v4, protocol: "UDP", sport: freshPort(), dport: 53 }, "policy-allow", "UDP c to b:53 with the lookup");
  });

  test("conntrack: a packet moves the deadline only by more than a second, a new state always", async () => {
    const sport = freshPort();
    const deadline = () => datapath.conntrackEntries().find((e) => e.flow.sport === sport)?.value.expiresNs ?? 0n;
    const opened = process.hrtime.bigint();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "policy-allow", "SYN a to b:80");
    const first = deadline();
    assert.ok(first > opened + 59n * SECOND_NS && first <= process.hrtime.bigint() + 60n * SECOND_NS, "the SYN timeout");
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "established", "the SYN again");
    // Only meaningful within a second of the first packet, which a test run takes a tiny part of.
    if (process.hrtime.bigint() - opened < SECOND_NS) assert.equal(deadline(), first, "not moved: it would move by less than a second");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "established", "the SYN again, over a second later");
    assert.ok(deadline() > first + SECOND_NS, "moved: by more than a second");
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK b to a");
    assert.ok(deadline() > process.hrtime.bigint() + 21_000n * SECOND_NS, "the reply moved it at once: the established timeout");
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["rst"] }, "established", "RST a to b");
    assert.ok(deadline() <= process.hrtime.bigint() + 10n * SECOND_NS, "the RST shortened it at once: the closing timeout");
  });

  test("conntrack: a deadline is the timeout from the packet's time, the clock read afresh in every jiffy on every CPU", async () => {
    // The programs keep the coarse clock's last reading per CPU and read it again in a new jiffy, so a
    // reading is at most two ticks late (20 ms at the slowest HZ, 100; 50 allowed for a VM's late ticks):
    // a flow opened 100 ms after another must not get the earlier time.
    const LATE_NS = 50_000_000n;
    for (let i = 0; i < 8; i++) {
      const sport = freshPort();
      const timeRead = (timeoutS: bigint) => {
        const entry = datapath.conntrackEntries().find((e) => e.flow.sport === sport);
        assert.ok(entry, `flow ${i} is tracked`);
        return entry.value.expiresNs - timeoutS * SECOND_NS;
      };
      const opening = process.hrtime.bigint();
      intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "policy-allow", `SYN a to b:80, flow ${i}`);
      const opened = process.hrtime.bigint();
      const admitted = timeRead(60n);
      assert.ok(admitted > opening - LATE_NS && admitted <= opened, `flow ${i}: the SYN timeout from the SYN's time (${admitted - opening} ns after)`);
      const replying = process.hrtime.bigint();
      fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", `SYN-ACK b to a, flow ${i}`);
      const replied = timeRead(21_600n);
      assert.ok(replied > replying - LATE_NS && replied <= process.hrtime.bigint(), `flow ${i}: the established timeout from the reply's time (${replied - replying} ns after)`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  test("conntrack: an entry past its deadline is no flow: its next packet, reply or forward, meets policy", () => {
    const sport = freshPort();
    const entryOf = () => datapath.conntrackEntries().find((e) => e.flow.sport === sport);
    const expire = () => {
      const entry = entryOf();
      assert.ok(entry, "the flow is tracked");
      datapath.maps.conntrack.update(entry.key, { ...entry.value, expiresNs: 1n });
    };
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "policy-allow", "SYN a to b:80");
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK b to a");
    expire();
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["ack"] }, "default-deny", "ACK b to a after the deadline: b's egress allows no such flow");
    assert.equal(entryOf(), undefined, "the expired entry was deleted");
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["ack"] }, "policy-allow", "ACK a to b: judged again and tracked");
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["ack"] }, "established", "ACK a to b again");
    expire();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["ack"] }, "policy-allow", "ACK a to b after the deadline");
  });

  test("tcp.strict: the flow is strict only if every allowing entry is (union), never for the host", () => {
    const first = (src: string, dport: number, reason: ReasonName, what: string): number => {
      const sport = freshPort();
      intoB({ src, protocol: "TCP", sport, dport, tcpFlags: ["ack"] }, reason, what);
      return sport;
    };
    const union = first(C.v4, 7001, "policy-allow", "c to b:7001: c's entry strict, any-peer entry not");
    const entry = datapath.conntrackEntries().find((e) => e.flow.sport === union);
    assert.equal(entry?.value.tcpStrict, false, "the union is not strict");
    assert.equal(entry?.value.ruleId, RULE.cStrict7001);
    first(WORLD_IP, 7001, "policy-allow", "world to b:7001: only the loose any-peer entry");
    first(C.v4, 7002, "tcp-invalid", "c to b:7002: both entries strict");
    first(WORLD_IP, 7002, "tcp-invalid", "world to b:7002: the strict any-peer entry");
    first(C.v4, 7004, "policy-allow", "c to b:7004: c's entry loose, any-peer entry strict");
    first(WORLD_IP, 7004, "tcp-invalid", "world to b:7004: the strict any-peer entry alone");
    first(HOST_IP, 7002, "host", "host to b:7002: the node is never strict");
    first(C.v4, 7005, "default-deny", "c to b:7005: no rule");
  });

  test("tcp.strict applies to TCP only, on egress too", () => {
    fromB({ dst: CIDR.inside, protocol: "UDP", sport: freshPort(), dport: 9 }, "policy-allow", "UDP b to the CIDR under a strict any-protocol allow");
    const id = freshPort();
    fromB({ dst: CIDR.inside, protocol: "ICMP", icmpType: "echo-request", icmpId: id }, "policy-allow", "ICMP echo b to the CIDR");
    fromB({ dst: CIDR.inside, protocol: "TCP", sport: freshPort(), dport: 22, tcpFlags: ["ack"] }, "tcp-invalid", "ACK-only b to the CIDR");
    const sport = freshPort();
    fromB({ dst: CIDR.inside, protocol: "TCP", sport, dport: 22 }, "policy-allow", "SYN b to the CIDR");
    intoB({ src: CIDR.inside, protocol: "TCP", sport: 22, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK back");
    intoB({ src: CIDR.inside, protocol: "TCP", sport: 22, dport: sport, tcpFlags: ["fin"] }, "tcp-invalid", "FIN without ACK back");
  });

  test("tcp.strict in the audit verdict: the packet passes and an AUDIT event says tcp-invalid", async () => {
    datapath.updateConfig({ flags: CFG_EVENTS_ALLOWED });
    try {
      const syn = freshPort();
      intoB({ src: C.v4, protocol: "TCP", sport: syn, dport: 7003 }, "policy-allow", "SYN c to b:7003");
      const ack = freshPort();
      intoB({ src: C.v4, protocol: "TCP", sport: ack, dport: 7003, tcpFlags: ["ack"] }, "policy-allow", "ACK-only c to b:7003");
      const audit = await waitForEvent((e) => e.kind === "audit" && e.sport === ack, "audit");
      assert.equal(audit.reason, "tcp-invalid");
      assert.equal(audit.ruleId, RULE.cAuditStrict7003Audit);
      assert.equal(datapath.conntrackEntries().find((e) => e.flow.sport === ack)?.value.tcpStrict, false, "the enforced allow is not strict");
      // Events arrive in order: the SYN's would have come before the ACK's.
      assert.equal(events.some((e) => e.kind === "audit" && e.sport === syn), false, "no audit event for the SYN");
      assert.ok(events.some((e) => e.kind === "allowed" && e.sport === syn && e.ruleId === RULE.cAuditStrict7003));
    } finally {
      datapath.updateConfig({ flags: 0 });
    }
  });

  test("tcp.strict follows policy changes: a re-checked flow takes the new entry's strictness", () => {
    const sport = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 7000 }, "policy-allow", "SYN under the strict rule");
    fromB({ dst: A.v4, protocol: "TCP", sport: 7000, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK");
    const strictness = () => datapath.conntrackEntries().find((e) => e.flow.sport === sport)?.value.tcpStrict;
    try {
      datapath.apply({ ...emptyDiff(), policyUpserts: [withFlags(STRICT_A_TO_B_7000, 0)] }, ifindexOf);
      intoB({ src: A.v4, protocol: "TCP", sport, dport: 7000, tcpFlags: ["ack"] }, "established", "ACK after the rule lost tcp.strict");
      assert.equal(strictness(), false);
      intoB({ src: A.v4, protocol: "TCP", sport, dport: 7000, tcpFlags: ["fin"] }, "established", "FIN without ACK, no longer strict");
    } finally {
      datapath.apply({ ...emptyDiff(), policyUpserts: [STRICT_A_TO_B_7000] }, ifindexOf);
    }
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 7000, tcpFlags: [] }, "tcp-invalid", "no flags once strict again");
    assert.equal(strictness(), true);
  });

  /** The connection count and bucket of a source under a rule, as pal_tcp_sources holds them. */
  const source = (ruleId: number, saddr: string) => datapath.maps.tcpSources.lookup({ ruleId, family: saddr.includes(":") ? 6 : 4, saddr });
  const connsOf = (ruleId: number, saddr: string): bigint | undefined => source(ruleId, saddr)?.conns;
  const flowOf = (sport: number) => datapath.conntrackEntries().find((e) => e.flow.sport === sport);

  test("tcp limits: the SYN over maxConnectionsPerSource is dropped as tcp-limit while another source still opens", async () => {
    const [one, two] = ["198.51.100.10", "198.51.100.11"];
    const syn = (src: string, reason: ReasonName, what: string): number => {
      const sport = freshPort();
      intoB({ src, protocol: "TCP", sport, dport: 7100 }, reason, what);
      return sport;
    };
    const first = syn(one, "policy-allow", "1st SYN from one");
    syn(one, "policy-allow", "2nd SYN from one");
    const refused = syn(one, "tcp-limit", "3rd SYN from one, over max 2");
    assert.equal(connsOf(RULE.anyMax2_7100, one), 2n);
    assert.equal(flowOf(first)?.value.counted, true, "an admitted flow holds a unit");
    assert.equal(flowOf(refused), undefined, "a refused SYN tracks nothing");
    syn(two, "policy-allow", "another source opens");
    assert.equal(connsOf(RULE.anyMax2_7100, two), 1n);
    const event = await waitForEvent((e) => e.reason === "tcp-limit" && e.sport === refused, "tcp-limit denied");
    assert.deepEqual([event.kind, event.ruleId, event.reasonCode], ["denied", RULE.anyMax2_7100, 23]);
    // A retransmitted SYN of an admitted flow is that flow, not a new connection.
    intoB({ src: one, protocol: "TCP", sport: first, dport: 7100 }, "established", "SYN retransmitted");
    assert.equal(connsOf(RULE.anyMax2_7100, one), 2n);
  });

  test("tcp limits: closing frees a slot exactly once, by RST or by a FIN each way", () => {
    const src = "198.51.100.12";
    const open = (reason: ReasonName, what: string): number => {
      const sport = freshPort();
      intoB({ src, protocol: "TCP", sport, dport: 7100 }, reason, what);
      return sport;
    };
    const conns = () => connsOf(RULE.anyMax2_7100, src);
    const rst = open("policy-allow", "SYN 1");
    const fin = open("policy-allow", "SYN 2");
    fromB({ dst: src, protocol: "TCP", sport: 7100, dport: fin, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK 2");
    open("tcp-limit", "SYN 3, over max 2");
    intoB({ src, protocol: "TCP", sport: rst, dport: 7100, tcpFlags: ["rst", "ack"] }, "established", "RST of 1");
    assert.equal(conns(), 1n, "the RST gave its unit back");
    assert.equal(flowOf(rst)?.value.counted, false);
    intoB({ src, protocol: "TCP", sport: rst, dport: 7100, tcpFlags: ["rst"] }, "established", "RST of 1 again");
    fromB({ dst: src, protocol: "TCP", sport: 7100, dport: rst, tcpFlags: ["rst"] }, "reply", "RST of 1 back");
    assert.equal(conns(), 1n, "only once");
    open("policy-allow", "SYN 4 takes the freed slot");
    open("tcp-limit", "SYN 5, over max 2 again");
    intoB({ src, protocol: "TCP", sport: fin, dport: 7100, tcpFlags: ["fin", "ack"] }, "established", "FIN of 2");
    assert.equal(conns(), 2n, "a FIN one way closes nothing");
    open("tcp-limit", "SYN 6, still over");
    fromB({ dst: src, protocol: "TCP", sport: 7100, dport: fin, tcpFlags: ["fin", "ack"] }, "reply", "FIN of 2 back");
    assert.equal(conns(), 1n, "a FIN each way gives the unit back");
    fromB({ dst: src, protocol: "TCP", sport: 7100, dport: fin, tcpFlags: ["fin", "ack"] }, "reply", "FIN of 2 back, retransmitted");
    intoB({ src, protocol: "TCP", sport: fin, dport: 7100, tcpFlags: ["ack"] }, "established", "last ACK of 2");
    assert.equal(conns(), 1n, "only once");
    const reused = open("policy-allow", "SYN 7 takes it");
    // A SYN reusing the tuple of a closed flow is a new connection, charged anew.
    intoB({ src, protocol: "TCP", sport: rst, dport: 7100 }, "tcp-limit", "SYN on the tuple of 1, over max 2");
    assert.equal(conns(), 2n);
    assert.equal(flowOf(reused)?.value.counted, true);
  });

  test("tcp limits: newConnectionsPerSecond lets a burst through, refuses, and refills", async () => {
    const [one, two] = ["198.51.100.13", "198.51.100.14"];
    const syn = (src: string, reason: ReasonName, what: string): void => intoB({ src, protocol: "TCP", sport: freshPort(), dport: 7101 }, reason, what);
    syn(one, "policy-allow", "1st of the burst of 2");
    syn(one, "policy-allow", "2nd of the burst of 2");
    syn(one, "tcp-limit", "3rd at once");
    syn(two, "policy-allow", "another source has its own bucket");
    assert.equal(connsOf(RULE.anyRate_7101, one), 0n, "a rate alone counts no connections");
    assert.equal(flowOf(nextPort - 1)?.value.counted, false);
    // 1 per second: well after a second one more token is there (no duration asserted).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    syn(one, "policy-allow", "after a refill");
  });

  test("tcp limits: a connection the rate refuses gives back the count it took", () => {
    const src = "198.51.100.15";
    intoB({ src, protocol: "TCP", sport: freshPort(), dport: 7105 }, "policy-allow", "1st: a token and a slot");
    intoB({ src, protocol: "TCP", sport: freshPort(), dport: 7105 }, "tcp-limit", "2nd: no token, though slots are free");
    assert.equal(connsOf(RULE.anyMaxRate7105, src), 1n);
  });

  test("tcp limits: an unlimited allow covering the same entry lifts the limit; limited entries charge the deciding rule", () => {
    for (let i = 0; i < 3; i++) intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7102 }, "policy-allow", `c to b:7102 #${i}: the any-peer entry is not limited`);
    const union = flowOf(nextPort - 1);
    assert.deepEqual([union?.value.counted, union?.value.ruleId], [false, RULE.cLimited7102]);
    assert.equal(connsOf(RULE.cLimited7102, C.v4), undefined, "nothing charged");
    for (let i = 0; i < 3; i++) intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7103 }, "policy-allow", `c to b:7103 #${i}: c's entry is not limited`);
    const world = "198.51.100.16";
    intoB({ src: world, protocol: "TCP", sport: freshPort(), dport: 7103 }, "policy-allow", "world to b:7103: the limited any-peer entry alone");
    intoB({ src: world, protocol: "TCP", sport: freshPort(), dport: 7103 }, "tcp-limit", "world to b:7103, over max 1");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7106 }, "policy-allow", "c to b:7106: both limited");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7106 }, "tcp-limit", "c to b:7106: c's rule (max 1) decides, not the any-peer one (max 5)");
    assert.deepEqual([connsOf(RULE.cLimited7106, C.v4), connsOf(RULE.anyLimited7106, C.v4)], [1n, undefined]);
    for (let i = 0; i < 3; i++) intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7104 }, "policy-allow", `c to b:7104 #${i}: an audit limit never drops`);
    intoB({ src: C.v4, protocol: "UDP", sport: freshPort(), dport: 7100 }, "default-deny", "UDP is not on the entry");
  });

  test("tcp limits on egress: the pod itself is the source", () => {
    fromB({ dst: CIDR.inside, protocol: "TCP", sport: freshPort(), dport: 7200 }, "policy-allow", "b to the CIDR:7200");
    fromB({ dst: CIDR.inside, protocol: "TCP", sport: freshPort(), dport: 7200 }, "tcp-limit", "b to the CIDR:7200 again, over max 1");
    assert.equal(connsOf(RULE.egressMax1ToCidr7200, B.v4), 1n);
  });

  test("tcp limits: a counted flow re-checked under another rule, or revoked, gives its unit back", () => {
    const src = "198.51.100.17";
    const sport = freshPort();
    intoB({ src, protocol: "TCP", sport, dport: 7107 }, "policy-allow", "SYN");
    assert.equal(connsOf(RULE.anyMax1_7107, src), 1n);
    const other = entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7107, 16, VERDICT_ALLOW, RULE.anyOther7107);
    try {
      datapath.apply({ ...emptyDiff(), policyUpserts: [other] }, ifindexOf);
      intoB({ src, protocol: "TCP", sport, dport: 7107, tcpFlags: ["ack"] }, "established", "ACK, re-checked under an unlimited rule");
      assert.equal(connsOf(RULE.anyMax1_7107, src), 0n);
      assert.deepEqual([flowOf(sport)?.value.counted, flowOf(sport)?.value.ruleId], [false, RULE.anyOther7107]);
      datapath.apply({ ...emptyDiff(), policyUpserts: [LIMITED_ANY_7107] }, ifindexOf);
      const second = freshPort();
      intoB({ src, protocol: "TCP", sport: second, dport: 7107 }, "policy-allow", "a new SYN under the limited rule again");
      intoB({ src, protocol: "TCP", sport, dport: 7107, tcpFlags: ["ack"] }, "established", "the old flow is not charged again");
      assert.equal(connsOf(RULE.anyMax1_7107, src), 1n);
      datapath.apply({ ...emptyDiff(), policyUpserts: [entry(IDENTITY_ANY, DIRECTION_INGRESS, TCP, 7107, 16, VERDICT_DENY, RULE.anyOther7107)] }, ifindexOf);
      intoB({ src, protocol: "TCP", sport: second, dport: 7107, tcpFlags: ["ack"] }, "revoked", "ACK of the new flow, now denied");
      assert.equal(connsOf(RULE.anyMax1_7107, src), 0n, "revocation gave the unit back");
    } finally {
      datapath.apply({ ...emptyDiff(), policyUpserts: [LIMITED_ANY_7107] }, ifindexOf);
    }
  });

  test("tcp limits: the recount corrects counts leaked by lost conntrack entries, removes idle sources and remakes evicted ones", () => {
    const src = "198.51.100.18";
    const [one, two] = [freshPort(), freshPort()];
    for (const sport of [one, two]) intoB({ src, protocol: "TCP", sport, dport: 7108 }, "policy-allow", `SYN ${sport}`);
    assert.equal(connsOf(RULE.anyMax3_7108, src), 2n);
    const drop = (sport: number) => {
      const lost = flowOf(sport);
      assert.ok(lost);
      assert.equal(datapath.maps.conntrack.delete(lost.key), true);
    };
    drop(one); // as the LRU evicts, or an entry expires: no close, no give-back
    assert.equal(connsOf(RULE.anyMax3_7108, src), 2n, "leaked");
    const first = datapath.recountTcpSources();
    assert.ok(first.corrected >= 1, `corrected ${first.corrected}`);
    assert.equal(connsOf(RULE.anyMax3_7108, src), 1n, "recounted");
    drop(two);
    datapath.recountTcpSources();
    assert.equal(source(RULE.anyMax3_7108, src), undefined, "no connection and a full bucket: removed");
    const three = freshPort();
    intoB({ src, protocol: "TCP", sport: three, dport: 7108 }, "policy-allow", "SYN after");
    assert.equal(datapath.maps.tcpSources.delete({ ruleId: RULE.anyMax3_7108, family: 4, saddr: src }), true); // evicted
    datapath.recountTcpSources();
    assert.deepEqual(source(RULE.anyMax3_7108, src), { fullAtNs: 0n, conns: 1n }, "made again for its live connection");
  });

  test("ICMP: the echo reply to an allowed request passes, an unsolicited one does not", () => {
    const id = freshPort();
    fromB({ dst: C.v4, protocol: "ICMP", icmpType: "echo-request", icmpId: id }, "policy-allow", "echo request b to c");
    intoB({ src: C.v4, protocol: "ICMP", icmpType: "echo-reply", icmpId: id }, "reply", "echo reply c to b");
    intoB({ src: C.v4, protocol: "ICMP", icmpType: "echo-reply", icmpId: freshPort() }, "default-deny", "unsolicited echo reply");
  });

  test("ICMP errors about a tracked flow are related; about an unknown flow they are not", () => {
    const sport = freshPort();
    fromB({ dst: C.v4, protocol: "UDP", sport, dport: 5000 }, "policy-allow", "b to c:5000/udp");
    const original = { src: B.v4, dst: C.v4, protocol: "UDP" as const, sport, dport: 5000 };
    intoB({ src: C.v4, protocol: "ICMP", icmpType: "dest-unreachable", inner: original }, "related", "port unreachable for the flow");
    intoB({ src: C.v4, protocol: "ICMP", icmpType: "dest-unreachable", inner: { ...original, dport: 5001 } }, "default-deny", "for no flow");
    const sport6 = freshPort();
    fromB({ dst: C.v6, protocol: "UDP", sport: sport6, dport: 5000 }, "policy-allow", "b to c:5000/udp over IPv6");
    const original6 = { src: B.v6, dst: C.v6, protocol: "UDP" as const, sport: sport6, dport: 5000 };
    intoB({ src: C.v6, protocol: "ICMP", icmpType: "dest-unreachable", inner: original6 }, "related", "ICMPv6 unreachable for the flow");
  });

  test("IPv6, with extension headers", () => {
    intoB({ src: A.v6, protocol: "TCP", sport: freshPort(), dport: 80 }, "policy-allow", "a to b:80 over IPv6");
    intoB({ src: C.v6, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "c to b:80 over IPv6");
    intoB({ src: A.v6, protocol: "TCP", sport: freshPort(), dport: 81 }, "policy-deny", "a to b:81 over IPv6");
    intoB(
      { src: A.v6, protocol: "TCP", sport: freshPort(), dport: 80, extensionHeaders: ["hop-by-hop", "routing", "dest-options"] },
      "policy-allow",
      "a to b:80 behind three extension headers",
    );
    intoB(
      { src: C.v6, protocol: "UDP", sport: freshPort(), dport: 53, extensionHeaders: ["hop-by-hop"] },
      "policy-allow",
      "c to b:53/udp behind hop-by-hop",
    );
    const id = freshPort();
    fromB({ dst: C.v6, protocol: "ICMP", icmpType: "echo-request", icmpId: id }, "policy-allow", "ICMPv6 echo request b to c");
    intoB({ src: C.v6, protocol: "ICMP", icmpType: "echo-reply", icmpId: id }, "reply", "ICMPv6 echo reply");
  });

  test("IPv4 options do not hide the transport header", () => {
    const routerAlert = Buffer.from([0x94, 0x04, 0x00, 0x00]);
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80, ipOptions: routerAlert }, "policy-allow", "with options, allowed");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 80, ipOptions: routerAlert }, "default-deny", "with options, denied");
  });

  test("later fragments follow their first fragment's verdict (IPv4 and IPv6)", () => {
    for (const [src, family] of [[C.v4, 4], [C.v6, 6]] as const) {
      const dst = family === 4 ? B.v4 : B.v6;
      const allowed = buildFragments({ src, dst, protocol: "UDP", sport: freshPort(), dport: 53, payload: Buffer.alloc(64, 1) }, 24, 0x1001);
      assert.equal(allowed.length, 3);
      expectVerdict("to-pod", ifB, allowed[0]!, "policy-allow", `IPv${family} first fragment, allowed`);
      expectVerdict("to-pod", ifB, allowed[1]!, "fragment", `IPv${family} second fragment`);
      expectVerdict("to-pod", ifB, allowed[2]!, "fragment", `IPv${family} last fragment`);
      const denied = buildFragments({ src, dst, protocol: "UDP", sport: freshPort(), dport: 54, payload: Buffer.alloc(64, 2) }, 24, 0x1002);
      expectVerdict("to-pod", ifB, denied[0]!, "default-deny", `IPv${family} first fragment, denied`);
      expectVerdict("to-pod", ifB, denied[1]!, "default-deny", `IPv${family} later fragment of a denied datagram keeps its first's reason`);
      const orphan = buildPacket({ src, dst, protocol: "UDP", fragment: { offset: 24, more: false, id: 0x1003 }, payload: Buffer.alloc(16) });
      expectVerdict("to-pod", ifB, orphan, "frag-unknown", `IPv${family} later fragment without its first`);
    }
  });

  test("steering: only TCP flows with HTTP rules, AND over allowing entries, OR of HTTP Deny over all; no proxy fails closed", () => {
    assert.equal(datapath.readProxy(), undefined, "no proxy configured");
    const steered = [
      { src: C.v4, dport: 7300, what: "an HTTP allow" },
      { src: C.v6, dport: 7300, what: "an HTTP allow, IPv6" },
      { src: C.v4, dport: 7302, what: "a plain allow under an HTTP Deny of the any-peer entry" },
      { src: C.v4, dport: 7303, what: "an audit allow by HTTP rules" },
    ];
    for (const { src, dport, what } of steered) intoB({ src, protocol: "TCP", sport: freshPort(), dport }, "proxy-unavailable", `${what}, no proxy`);
    // The compiler writes no entry for a direction no policy isolates (enforced or audit); the kernel
    // does not look one up there, so this one, written by hand, decides nothing.
    expectVerdict("to-pod", ifA, buildPacket({ src: C.v4, dst: A.v4, protocol: "TCP", sport: freshPort(), dport: 7305 }), "not-isolated", "not isolated either way: an HTTP Deny entry is not looked up");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7301 }, "policy-allow", "HTTP allow beside a plain any-peer allow");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7304 }, "policy-allow", "HTTP Deny in an audit verdict that denies");
    intoB({ src: C.v4, protocol: "UDP", sport: freshPort(), dport: 7300 }, "policy-allow", "UDP is never steered");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7306 }, "policy-allow", "a plain allow");
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 7300 }, "default-deny", "a peer the HTTP allow does not name");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 7300, tcpFlags: ["ack"] }, "tcp-invalid", "a steered flow opens with a pure SYN only");
    assert.equal(
      datapath.conntrackEntries().some((e) => e.value.proxied === true),
      false,
      "a flow that could not reach the proxy is not tracked",
    );
  });

  test("steering: with the proxy listening, the to-pod hook redirects the flow's packets to the proxy device; a re-check keeps a proxied flow and revokes a plain one that now needs the proxy", async () => {
    const { createServer } = await import("node:net");
    const server = createServer();
    // Test runs bind the skb to an interface of this namespace: the listener's.
    await listenTransparent(server, { family: 4, port: 0 });
    const port = (server.address() as { port: number }).port;
    try {
      datapath.setProxy({ ifindex: ifNoEndpoint, port, mac: "02:00:00:00:00:01" });
      assert.deepEqual(datapath.readProxy(), { ifindex: ifNoEndpoint, port, mac: "02:00:00:00:00:01" });
      const sport = freshPort();
      const redirected = (tcpFlags: PacketSpec["tcpFlags"], what: string) =>
        expectVerdict("to-pod", ifB, buildPacket({ src: C.v4, dst: B.v4, protocol: "TCP", sport, dport: 7300, tcpFlags }), "to-proxy", what, TC_ACT_REDIRECT);
      redirected(undefined, "SYN of an HTTP flow");
      const tracked = datapath.conntrackEntries().find((e) => e.flow.sport === sport);
      assert.equal(tracked?.value.proxied, true, "tracked as proxied");
      redirected(["ack"], "later packet of the proxied flow");
      intoB({ src: C.v6, protocol: "TCP", sport: freshPort(), dport: 7300 }, "proxy-unavailable", "IPv6: no IPv6 listener");
      const plain = freshPort();
      intoB({ src: C.v4, protocol: "TCP", sport: plain, dport: 7306 }, "policy-allow", "a plain flow");
      datapath.apply({ ...emptyDiff(), policyUpserts: [httpEntry(PLAIN_C_TO_B_7306, POLICY_FLAG_HTTP)] }, ifindexOf);
      redirected(["ack"], "the proxied flow after a re-check");
      intoB({ src: C.v4, protocol: "TCP", sport: plain, dport: 7306, tcpFlags: ["ack"] }, "revoked", "a plain flow cannot move into the proxy mid-stream");
      datapath.apply({ ...emptyDiff(), policyUpserts: [PLAIN_C_TO_B_7306] }, ifindexOf);
      datapath.setProxy(undefined);
      assert.equal(datapath.readProxy(), undefined);
      intoB({ src: C.v4, protocol: "TCP", sport, dport: 7300, tcpFlags: ["ack"] }, "proxy-unavailable", "the proxy gone: its flows fail closed");
    } finally {
      datapath.setProxy(undefined);
      server.close();
    }
  });

  test("a policy change revokes an established flow on its next packet", async () => {
    const sport = freshPort();
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80 }, "policy-allow", "SYN before the change");
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["syn", "ack"] }, "reply", "SYN-ACK before the change");
    const revisionBefore = datapath.readConfig().revision;
    const result = datapath.apply({ ...emptyDiff(), policyRemovals: [ALLOW_A_TO_B_80.key] }, ifindexOf);
    assert.equal(result.policyRemovals, 1);
    assert.equal(result.revision, revisionBefore + 1);
    intoB({ src: A.v4, protocol: "TCP", sport, dport: 80, tcpFlags: ["ack"] }, "revoked", "ACK after the change");
    const event = await waitForEvent((e) => e.reason === "revoked" && e.sport === sport, "revoked");
    assert.equal(event.kind, "denied");
    assert.equal(datapath.conntrackEntries().some((e) => e.flow.sport === sport), false, "the entry is gone");
    fromB({ dst: A.v4, protocol: "TCP", sport: 80, dport: sport, tcpFlags: ["ack"] }, "default-deny", "reply after the change");
    intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "new SYN after the change");
    // A flow the new policy still allows survives the revision bump.
    const udp = freshPort();
    intoB({ src: C.v4, protocol: "UDP", sport: udp, dport: 53 }, "policy-allow", "UDP before a second change");
    datapath.bumpRevision();
    intoB({ src: C.v4, protocol: "UDP", sport: udp, dport: 53 }, "established", "UDP after the bump: re-checked and kept");
    datapath.apply({ ...emptyDiff(), policyUpserts: [ALLOW_A_TO_B_80] }, ifindexOf);
  });

  test("conntrack GC deletes entries past their deadline and keeps the rest", async () => {
    datapath.clearConntrack();
    datapath.updateConfig({ ctTimeoutUdpS: 1 });
    try {
      const shortLived = freshPort();
      intoB({ src: C.v4, protocol: "UDP", sport: shortLived, dport: 53 }, "policy-allow", "UDP flow, 1 s timeout");
      const longLived = freshPort();
      intoB({ src: A.v4, protocol: "TCP", sport: longLived, dport: 80 }, "policy-allow", "TCP flow, 60 s SYN timeout");
      assert.equal(datapath.gcConntrack(), 0, "nothing expired yet");
      await new Promise((resolve) => setTimeout(resolve, 1200));
      assert.equal(datapath.gcConntrack(), 1);
      const left = datapath.conntrackEntries().map((e) => e.flow.sport);
      assert.deepEqual(left, [longLived]);
      const entry = datapath.conntrackEntries()[0];
      assert.ok(entry);
      assert.equal(datapath.gcConntrack(entry.value.expiresNs + 1n), 1, "an explicit clock past the deadline");
    } finally {
      datapath.updateConfig({ ctTimeoutUdpS: 60 });
    }
  });

  test("re-adoption: a second instance on the same pin root sees the same maps", () => {
    const second = Datapath.open({ pinRoot });
    try {
      assert.deepEqual(second.readState(), datapath.readState());
      assert.deepEqual(second.readConfig(), datapath.readConfig());
      second.setEndpoint(ifNoEndpoint, { endpointId: 77, identity: 377, slot: 70, flags: 0 });
      assert.deepEqual(datapath.readState().endpoints.get(ifNoEndpoint), { endpointId: 77, identity: 377, slot: 70, flags: 0 });
      assert.equal(second.removeEndpoint(ifNoEndpoint), true);
      assert.equal(datapath.readState().endpoints.has(ifNoEndpoint), false);
    } finally {
      second.close();
    }
    assert.ok(existsSync(join(pinRoot, "pal_policy")), "close() leaves the pins");
  });

  test("the kernel takes exact-port policy entries, host ipcache entries and endpoints from their mirrors; writes and full syncs keep the mirrors copies", () => {
    const state = stateOf(initialDiff());
    datapath.replaceAll(state, ifindexOf);
    assertExactMirrors(datapath);
    // Mirror entries forged alone (no writer does that) stand for what a process killed between two writes leaves:
    // the first full sync of the next instance on the pin root repairs them.
    const restartedSync = () => {
      const again = Datapath.open({ pinRoot });
      try {
        again.replaceAll(state, ifindexOf);
      } finally {
        again.close();
      }
    };
    const aToB80 = (reason: ReasonName, message: string) => intoB({ src: A.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, reason, message);
    aToB80("policy-allow", "a to b on 80");
    // A deny and another identity in the hashes decide: the kernel reads them first.
    datapath.maps.policy.mirror.update(ALLOW_A_TO_B_80.key, { ...ALLOW_A_TO_B_80.value, verdict: VERDICT_DENY });
    aToB80("policy-deny", "the hash's entry decides");
    restartedSync();
    aToB80("policy-allow", "the full sync deleted the entry the trie does not hold");
    datapath.maps.ipcache.mirror.update(ipcacheKeyOf(parseCidr(`${A.v4}/32`)), { identity: C.identity, flags: 0 });
    aToB80("default-deny", "a's address has c's identity in the hash");
    restartedSync();
    aToB80("policy-allow", "the full sync repaired the host entry");
    assertExactMirrors(datapath);
    // Missing from a hash, an entry is found in the trie; the next full sync writes it again.
    datapath.maps.policy.mirror.delete(ALLOW_A_TO_B_80.key);
    datapath.maps.ipcache.mirror.delete(ipcacheKeyOf(parseCidr(`${A.v4}/32`)));
    aToB80("policy-allow", "the tries answer");
    restartedSync();
    assertExactMirrors(datapath);
    // Through the typed handles a write reaches both maps.
    datapath.maps.policy.remove([ALLOW_A_TO_B_80.key]);
    assert.equal(datapath.maps.policy.mirror.lookup(ALLOW_A_TO_B_80.key), undefined);
    aToB80("default-deny", "removed from trie and hash");
    datapath.maps.policy.update(ALLOW_A_TO_B_80.key, ALLOW_A_TO_B_80.value);
    assertExactMirrors(datapath);
    aToB80("policy-allow", "written to both again");
    // The endpoint array: forged, it decides; a full sync repairs it; a removed endpoint is gone from both.
    assert.ok(ifB < datapath.maps.endpoints.mirror.maxEntries, "the test interface is covered by the array");
    datapath.maps.endpoints.mirror.update({ ifindex: ifB }, { ...ENDPOINT_B, flags: 0 });
    aToB80("not-isolated", "b's entry in the array decides");
    restartedSync();
    aToB80("policy-allow", "the full sync repaired b's entry");
    datapath.removeEndpoint(ifB);
    assert.equal(datapath.maps.endpoints.mirror.lookup({ ifindex: ifB })?.endpointId, 0, "emptied in the array");
    aToB80("no-endpoint", "removed from hash and array");
    datapath.setEndpoint(ifB, ENDPOINT_B);
    assertExactMirrors(datapath);
    aToB80("policy-allow", "written to both again");
  });

  test("replaceAll compares the ipcache with the read of readIpcache while no write went through the datapath since", () => {
    const state = stateOf(initialDiff());
    datapath.replaceAll(state, ifindexOf);
    const stray = ipcacheKeyOf(parseCidr("198.51.100.7/32"));
    // Not through readIpcache, whose read the next full sync would take.
    const holdsStray = () => datapath.maps.ipcache.entries().some(([key]) => ipcacheKeyString(key) === "198.51.100.7/32");
    // Written through this datapath after the read: the read no longer holds, the full sync reads again.
    datapath.readIpcache();
    datapath.maps.ipcache.update(stray, { identity: 999, flags: 0 });
    assert.equal(datapath.replaceAll(state, ifindexOf).ipcacheRemovals, 1);
    assert.equal(holdsStray(), false);
    // Written by another writer (here a second instance on the pin root) after the read: the full sync
    // goes by the read (the agent is its maps' one writer), and the sync after it reads the map again.
    datapath.readIpcache();
    const other = Datapath.open({ pinRoot });
    try {
      other.maps.ipcache.update(stray, { identity: 999, flags: 0 });
    } finally {
      other.close();
    }
    assert.equal(datapath.replaceAll(state, ifindexOf).ipcacheRemovals, 0, "the read at start stands for the map");
    assert.equal(holdsStray(), true);
    assert.equal(datapath.replaceAll(state, ifindexOf).ipcacheRemovals, 1, "taken once: the next full sync reads");
    assert.equal(holdsStray(), false);
  });

  test("replaceAll writes only the difference between the maps and the state", () => {
    const state = stateOf(initialDiff());
    const same = datapath.replaceAll(state, ifindexOf);
    assert.deepEqual(
      { ...same, revision: 0 },
      {
        policyUpserts: 0,
        endpointUpserts: 0,
        ipcacheUpserts: 0,
        ipcacheRemovals: 0,
        endpointRemovals: 0,
        policyRemovals: 0,
        tcpLimitUpserts: 0,
        tcpLimitRemovals: 0,
        skippedEndpoints: ["t/unattached"],
        revision: 0,
      },
    );
    const revision = datapath.readConfig().revision;
    assert.equal(same.revision, revision, "no writes, no bump");

    const changed = stateOf(initialDiff());
    changed.policy.delete(policyKeyString(POLICY_B[1]!.key));
    // Any protocol from c: covers port 80 (no other entry of c does); the 8080/13 entry stays more specific.
    const denyAll = entry(C.identity, DIRECTION_INGRESS, 0, 0, 0, VERDICT_DENY, 99);
    changed.policy.set(policyKeyString(denyAll.key), denyAll);
    changed.ipcache.set(CIDR.cidr, ipcacheEntry({ cidr: CIDR.cidr, identity: 401, flags: 0 }));
    changed.ipcache.delete(`${HOST_IP}/32`);
    changed.endpoints.delete("t/a");
    changed.tcpLimits.delete(RULE.anyMax2_7100);
    changed.tcpLimits.set(RULE.anyMax3_7108, max(4));
    const result = datapath.replaceAll(changed, ifindexOf);
    assert.deepEqual(result, {
      policyUpserts: 1,
      endpointUpserts: 0,
      ipcacheUpserts: 1,
      ipcacheRemovals: 1,
      endpointRemovals: 1,
      policyRemovals: 1,
      tcpLimitUpserts: 1,
      tcpLimitRemovals: 1,
      skippedEndpoints: ["t/unattached"],
      revision: revision + 1,
    });
    assert.equal(datapath.maps.tcpLimits.lookup(RULE.anyMax2_7100), undefined);
    assert.deepEqual(datapath.maps.tcpLimits.lookup(RULE.anyMax3_7108), max(4));
    const frame = buildPacket({ src: A.v4, dst: B.v4, protocol: "TCP", sport: freshPort(), dport: 80 });
    expectVerdict("to-pod", ifA, frame, "no-endpoint", "a's endpoint was removed");
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "policy-deny", "the new any-protocol deny for c");
    intoB({ src: CIDR.inside, protocol: "TCP", sport: freshPort(), dport: 443 }, "default-deny", "the CIDR's new identity has no rule");

    const restored = datapath.replaceAll(state, ifindexOf);
    assert.deepEqual(
      { ...restored, revision: 0 },
      {
        policyUpserts: 1,
        endpointUpserts: 1,
        ipcacheUpserts: 2,
        ipcacheRemovals: 0,
        endpointRemovals: 0,
        policyRemovals: 1,
        tcpLimitUpserts: 2,
        tcpLimitRemovals: 0,
        skippedEndpoints: ["t/unattached"],
        revision: 0,
      },
    );
    intoB({ src: C.v4, protocol: "TCP", sport: freshPort(), dport: 80 }, "default-deny", "back to the original policy");
  });

  test("attach pins tcx links that outlive the instance; re-attach is a no-op; detach removes them", () => {
    assert.equal(datapath.attach(ifA), "tcx");
    const pins = ["ingress", "egress"].map((d) => join(pinRoot, "links", `${ifA}-${d}`));
    const expected = [
      { ifindex: ifA, attachType: "46 (ingress)", program: "pal_from_pod" },
      { ifindex: ifA, attachType: "47 (egress)", program: "pal_to_pod" },
    ];
    const first = pins.map(linkAt);
    assert.deepEqual(first.map(({ id: _, programId: __, ...rest }) => rest), expected);
    assert.equal(datapath.attach(ifA), "tcx", "re-attaching");
    assert.deepEqual(pins.map(linkAt), first, "the same links");

    datapath.close();
    datapath = Datapath.open({ pinRoot });
    datapath.events((event) => events.push(event)).unref();
    assert.deepEqual(datapath.attachedInterfaces(), [ifA], "found again by a new instance");
    assert.deepEqual(pins.map(linkAt), first, "still attached after close(), running the old instance's programs");
    assert.equal(datapath.attach(ifA), "tcx");
    const switched = pins.map(linkAt);
    assert.deepEqual(withoutProgram(switched), withoutProgram(first), "re-attaching from the new instance keeps the links");
    const pinned = ["pal_from_pod", "pal_to_pod"].map((name) => programIdAt(join(pinRoot, "programs", name)));
    assert.deepEqual(switched.map(({ programId }) => programId), pinned, "and switches them to the new instance's programs");
    assert.ok(switched.every(({ programId }, at) => programId !== first[at]!.programId), "which are not the old ones");
    assert.equal(datapath.detach(ifA), true);
    for (const pin of pins) assert.equal(existsSync(pin), false, `${pin} removed`);
    const remaining = (bpftool("link", "show") as { id: number }[]).map((link) => link.id);
    for (const link of first) assert.ok(!remaining.includes(link.id), `link ${link.id} released`);
    assert.equal(datapath.detach(ifA), false, "detaching twice");
  });

  test("attachPinnedPrograms hooks the pinned programs up without loading; the open datapath adopts the links", () => {
    assert.equal(attachPinnedPrograms(pinRoot, ifA), "tcx");
    const pins = ["ingress", "egress"].map((d) => join(pinRoot, "links", `${ifA}-${d}`));
    const links = pins.map(linkAt);
    assert.deepEqual(
      links.map(({ program, ifindex }) => ({ program, ifindex })),
      [
        { program: "pal_from_pod", ifindex: ifA },
        { program: "pal_to_pod", ifindex: ifA },
      ],
    );
    assert.deepEqual(datapath.attachedInterfaces(), [ifA]);
    assert.equal(datapath.attach(ifA), "tcx");
    assert.deepEqual(withoutProgram(pins.map(linkAt)), withoutProgram(links), "the agent keeps the links the plugin made");
    assert.equal(datapath.detach(ifA), true);
    assert.throws(() => attachPinnedPrograms(uniquePinRoot("dp-unpinned"), ifA), (error: unknown) => error instanceof DatapathError && /no agent has pinned its programs there yet/.test(error.message));
  });

  test("the tc fallback attaches clsact filters and detaches them", () => {
    const ifname = dummies.names[1]!;
    assert.equal(datapath.attach(ifB, { mode: "tc" }), "tc");
    assert.equal(datapath.attach(ifB, { mode: "tc" }), "tc", "re-attaching replaces in place");
    const filters = (direction: string) => execFileSync("tc", ["filter", "show", "dev", ifname, direction], { encoding: "utf8" });
    assert.match(filters("ingress"), /pal_from_pod/);
    assert.match(filters("egress"), /pal_to_pod/);
    assert.equal(filters("ingress").match(/handle 0x70616c/g)?.length, 1, "one filter, not two");
    assert.equal(datapath.detach(ifB), true);
    assert.doesNotMatch(filters("ingress"), /pal_from_pod/);
    assert.doesNotMatch(filters("egress"), /pal_to_pod/);
  });

  test("a pinned link of a vanished interface is cleaned up on open", () => {
    const extra = createInterfaces(1);
    const ifindex = extra.ifindexes[0]!;
    try {
      datapath.attach(ifindex);
    } finally {
      extra.remove();
    }
    const pin = join(pinRoot, "links", `${ifindex}-ingress`);
    assert.ok(existsSync(pin), "the pin outlives the device");
    const fdinfoIfindex = (() => {
      const fd = objGet(pin);
      try {
        return /^ifindex:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
      } finally {
        closeFd(fd);
      }
    })();
    assert.equal(fdinfoIfindex, "0", "the kernel marks the link defunct");
    const second = Datapath.open({ pinRoot });
    try {
      assert.equal(existsSync(pin), false);
      assert.equal(existsSync(join(pinRoot, "links", `${ifindex}-egress`)), false);
      assert.ok(!second.attachedInterfaces().includes(ifindex));
    } finally {
      second.close();
    }
  });

  test("headers cut short are malformed and dropped", () => {
    const frame = buildPacket({ src: C.v4, dst: B.v4, protocol: "TCP", sport: freshPort(), dport: 80 });
    expectVerdict("to-pod", ifB, frame.subarray(0, 14 + 20 + 8), "malformed", "TCP header cut short before its flags");
    // The in-place read of the common case leaves these to the general parser, which refuses them.
    const v6 = buildPacket({ src: C.v6, dst: B.v6, protocol: "TCP", sport: freshPort(), dport: 80 });
    expectVerdict("to-pod", ifB, v6.subarray(0, 14 + 40 + 13), "malformed", "IPv6: TCP header cut short before its flags");
    const udp = buildPacket({ src: C.v4, dst: B.v4, protocol: "UDP", sport: freshPort(), dport: 53 });
    expectVerdict("to-pod", ifB, udp.subarray(0, 14 + 20 + 3), "malformed", "UDP header cut short in its ports");
    const short = Buffer.from(frame);
    short.writeUInt16BE(19, 14 + 2);
    expectVerdict("to-pod", ifB, short, "malformed", "IPv4 total length below the header's");
  });

  test("every reason the program gives was counted for a packet whose verdict reasonAllows predicted", () => {
    assert.deepEqual([...observed].sort(), (Object.keys(REASONS) as ReasonName[]).filter((name) => name !== "none").sort());
  });

  test("destroy removes the pin root", () => {
    const root = uniquePinRoot("dp-destroy");
    const temporary = Datapath.open({ pinRoot: root });
    temporary.setEndpoint(ifA, ENDPOINT_A);
    temporary.destroy();
    assert.equal(existsSync(root), false);
    const again = Datapath.open({ pinRoot: root });
    try {
      assert.equal(again.readState().endpoints.size, 0, "a fresh start after destroy");
    } finally {
      again.destroy();
    }
  });
});
