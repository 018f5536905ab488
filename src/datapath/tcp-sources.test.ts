import assert from "node:assert/strict";
import { test } from "node:test";
import type { CtKey, CtValue, TcpSourceKey, TcpSourceValue } from "./abi.ts";
import { bucketTake, recountTcpSources, type TokenBucket } from "./tcp-sources.ts";

const SECOND = 1_000_000_000n;

function flow(saddr: string, sport: number, value: Partial<CtValue> = {}): { key: CtKey; value: CtValue } {
  return {
    key: { family: saddr.includes(":") ? 6 : 4, saddr, daddr: "10.0.0.2", sport, dport: 80, protocol: 6, direction: 0, endpointId: 1 },
    value: { expiresNs: 100n * SECOND, revision: 1, ruleId: 7, remoteIdentity: 2, tcpFlags: 1, tcpStrict: false, counted: true, ...value },
  };
}

const src = (saddr: string, ruleId = 7): TcpSourceKey => ({ ruleId, family: saddr.includes(":") ? 6 : 4, saddr });
const held = (conns: bigint, fullAtNs = 0n): TcpSourceValue => ({ fullAtNs, conns });

test("the recount makes each source's count the number of its counted live flows", () => {
  const conntrack = [
    flow("10.0.0.9", 1000),
    flow("10.0.0.9", 1001),
    flow("10.0.0.9", 1002, { counted: false }), // a flow admitted without a maxConnectionsPerSource unit
    flow("10.0.0.9", 1003, { ruleId: 8 }), // another rule, its own count
    flow("10.0.0.9", 1004, { expiresNs: 5n * SECOND }), // expired: its unit leaked
    flow("fd00::9", 1005),
    { ...flow("10.0.0.9", 1006), key: { ...flow("10.0.0.9", 1006).key, protocol: 17 } }, // not TCP
  ];
  const sources: [TcpSourceKey, TcpSourceValue][] = [
    [src("10.0.0.9"), held(5n, 20n * SECOND)], // leaked 3 (the kernel missed closes)
    [src("10.0.0.9", 8), held(1n)], // right: not written
    [src("fd00::9"), held(0xffff_ffff_ffff_ffffn)], // below 0 after racing give-backs
    [src("10.0.0.10"), held(2n)], // no flow left, bucket full: idle
    [src("10.0.0.11"), held(0n, 30n * SECOND)], // no flow, bucket still refilling: kept
    [src("10.0.0.12", 99), held(1n)], // its rule has no limits any more
  ];
  const { upserts, removals } = recountTcpSources(conntrack, sources, new Set([7, 8]), 10n * SECOND);
  assert.deepEqual(upserts, [
    [src("10.0.0.9"), held(2n, 20n * SECOND)],
    [src("fd00::9"), held(1n)],
  ]);
  assert.deepEqual(removals, [src("10.0.0.10"), src("10.0.0.12", 99)]);
});

test("the recount makes a source again that the LRU evicted while it holds flows, unless its rule lost its limits", () => {
  const conntrack = [flow("10.0.0.9", 1000), flow("10.0.0.9", 1001), flow("10.0.0.8", 1002, { ruleId: 99 })];
  assert.deepEqual(recountTcpSources(conntrack, [], new Set([7]), SECOND), { upserts: [[src("10.0.0.9"), held(2n)]], removals: [] });
});

test("without a limited rule the recount removes every source, whatever conntrack holds (Datapath then skips reading it)", () => {
  const conntrack = [flow("10.0.0.9", 1000), flow("10.0.0.9", 1001, { ruleId: 8 })];
  const sources: [TcpSourceKey, TcpSourceValue][] = [[src("10.0.0.9"), held(2n)], [src("10.0.0.9", 8), held(1n, 30n * SECOND)]];
  const expected = { upserts: [], removals: [src("10.0.0.9"), src("10.0.0.9", 8)] };
  assert.deepEqual(recountTcpSources(conntrack, sources, new Set(), 10n * SECOND), expected);
  assert.deepEqual(recountTcpSources([], sources, new Set(), 10n * SECOND), expected);
});

test("the token bucket mirror: a full burst, then refusal, then one token per interval", () => {
  let bucket: TokenBucket = { fullAtNs: 0n };
  const take = (nowNs: bigint): boolean => {
    const result = bucketTake(bucket, nowNs, 1, 2);
    bucket = result.bucket;
    return result.admitted;
  };
  const t0 = 1000n * SECOND;
  assert.deepEqual([take(t0), take(t0), take(t0)], [true, true, false], "starts full: burst 2");
  assert.equal(bucket.fullAtNs, t0 + 2n * SECOND, "a refusal takes nothing");
  assert.deepEqual([take(t0 + SECOND / 2n), take(t0 + SECOND - 1n)], [false, false]);
  assert.deepEqual([take(t0 + SECOND), take(t0 + SECOND)], [true, false], "one token a second");
  assert.deepEqual([take(t0 + 10n * SECOND), take(t0 + 10n * SECOND), take(t0 + 10n * SECOND)], [true, true, false], "never more than the burst after a quiet time");
  // Rates that do not divide a second: the interval is truncated to whole ns, as the kernel divides.
  let fast: TokenBucket = { fullAtNs: 0n };
  let admitted = 0;
  for (let i = 0; i < 10; i++) {
    const result = bucketTake(fast, t0, 3, 3);
    fast = result.bucket;
    if (result.admitted) admitted++;
  }
  assert.equal(admitted, 3);
  assert.equal(fast.fullAtNs, t0 + 3n * 333_333_333n);
});
