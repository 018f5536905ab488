/**
 * Writes synthetic Palisade state into a datapath's maps through its typed
 * handles: ipcache /32 entries for filler peers and N policy entries spread
 * over the peers' identities and ports, written in batches. A million
 * entries this way take seconds; through the policy compiler they would take
 * minutes and measure the compiler, not the datapath.
 *
 * @module
 */
import type { Datapath } from "../../src/datapath/index.ts";
import {
  DIRECTION_INGRESS,
  FIRST_ALLOCATED_IDENTITY,
  hostCidr,
  ipcacheKeyOf,
  parseIp,
  PROTOCOL_NUMBERS,
  VERDICT_ALLOW,
  type IpcacheKey,
  type IpcacheValue,
  type PolicyEntry,
} from "../../src/policy/index.ts";
import { peerAddress, syntheticRule } from "./synthetic-rules.ts";

/** The identity of filler peer `j`. */
export function peerIdentity(j: number): number {
  return FIRST_ALLOCATED_IDENTITY + j;
}

/** `entry(i)` for i in [from, to), generated as they are written. */
function* generate<T>(from: number, to: number, entry: (i: number) => T): Generator<T> {
  for (let i = from; i < to; i++) yield entry(i);
}

function hostEntry(address: string, identity: number): [IpcacheKey, IpcacheValue] {
  return [ipcacheKeyOf(hostCidr(parseIp(address))), { identity, flags: 0 }];
}

/**
 * Writes ipcache entries `peerAddress(j)/32 -> peerIdentity(j)` for j in [0, peers).
 *
 * @example
 * ```ts
 * writePeerIpcache(datapath, 1000); // 10.128.0.0 .. 10.128.3.231
 * ```
 */
export function writePeerIpcache(datapath: Datapath, peers: number): void {
  datapath.maps.ipcache.upsert(generate(0, peers, (j) => hostEntry(peerAddress(j), peerIdentity(j))));
}

/**
 * Writes ipcache entries `address/32 -> identity` for named hosts (the
 * measured pods).
 */
export function writeHostIpcache(datapath: Datapath, hosts: readonly { address: string; identity: number }[]): void {
  datapath.maps.ipcache.upsert(hosts.map(({ address, identity }) => hostEntry(address, identity)));
}

/** Where synthetic policy entries go: rule i lands in slot `baseSlot + slotOffset`. */
export interface SyntheticPolicyLayout {
  baseSlot: number;
  peers: number;
  /** Rotates which peer rule 0 uses (see syntheticRule). */
  peerOffset: number;
}

/**
 * The policy entry of synthetic rule `i`: allow TCP to one exact port from
 * one peer identity, ingress, rule id i + 1.
 */
export function syntheticPolicyEntry(i: number, layout: SyntheticPolicyLayout): PolicyEntry {
  const rule = syntheticRule(i, layout.peers, layout.peerOffset);
  return {
    key: {
      slot: layout.baseSlot + rule.slotOffset,
      identity: peerIdentity(rule.peer),
      direction: DIRECTION_INGRESS,
      protocol: PROTOCOL_NUMBERS.TCP,
      port: rule.port,
      portPrefixLen: 16,
    },
    value: { verdict: VERDICT_ALLOW, auditVerdict: VERDICT_ALLOW, ruleId: i + 1, auditRuleId: i + 1, flags: 0 },
  };
}

/**
 * Writes synthetic policy entries `from` (inclusive) to `to` (exclusive), so a
 * grid can grow the map step by step.
 *
 * @example
 * ```ts
 * writeSyntheticPolicy(datapath, layout, 0, 100);
 * writeSyntheticPolicy(datapath, layout, 100, 10_000); // now 10k entries
 * ```
 */
export function writeSyntheticPolicy(datapath: Datapath, layout: SyntheticPolicyLayout, from: number, to: number): void {
  datapath.maps.policy.upsert(
    generate(from, to, (i) => {
      const entry = syntheticPolicyEntry(i, layout);
      return [entry.key, entry.value] as const;
    }),
  );
}

/** Writes arbitrary policy entries (e.g. the one rule admitting a measured flow). */
export function writePolicyEntries(datapath: Datapath, entries: readonly PolicyEntry[]): void {
  datapath.maps.policy.upsert(entries.map((entry) => [entry.key, entry.value] as const));
}
