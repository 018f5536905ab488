/**
 * Writes synthetic Palisade state straight into a datapath's pinned maps:
 * ipcache /32 entries for filler peers and N policy entries spread over the
 * peers' identities and ports, encoded with the ABI codecs and written with
 * batch updates. A million entries this way take seconds; through the policy
 * compiler they would take minutes and measure the compiler, not the datapath.
 *
 * @module
 */
import { join } from "node:path";
import {
  MAP_NAMES,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  policyKeyCodec,
  policyValueCodec,
  type Codec,
} from "../../src/datapath/index.ts";
import { closeFd, mapUpdateBatch, objGet } from "../../src/datapath/native.ts";
import {
  DIRECTION_INGRESS,
  FIRST_ALLOCATED_IDENTITY,
  hostCidr,
  ipcacheKeyOf,
  parseIp,
  PROTOCOL_NUMBERS,
  VERDICT_ALLOW,
  type PolicyEntry,
} from "../../src/policy/index.ts";
import { peerAddress, syntheticRule } from "./synthetic-rules.ts";

const BATCH = 65_536;

/** The identity of filler peer `j`. */
export function peerIdentity(j: number): number {
  return FIRST_ALLOCATED_IDENTITY + j;
}

function writeBatched<K, V>(pinRoot: string, map: string, keyCodec: Codec<K>, valueCodec: Codec<V>, count: number, entry: (i: number) => [K, V]): void {
  const fd = objGet(join(pinRoot, map));
  try {
    const keySize = keyCodec.layout.size;
    const valueSize = valueCodec.layout.size;
    for (let from = 0; from < count; from += BATCH) {
      const n = Math.min(BATCH, count - from);
      const keys = Buffer.alloc(n * keySize);
      const values = Buffer.alloc(n * valueSize);
      for (let i = 0; i < n; i++) {
        const [key, value] = entry(from + i);
        keyCodec.encode(key, keys, i * keySize);
        valueCodec.encode(value, values, i * valueSize);
      }
      mapUpdateBatch(fd, keys, values, n);
    }
  } finally {
    closeFd(fd);
  }
}

/**
 * Writes ipcache entries `peerAddress(j)/32 -> peerIdentity(j)` for j in [0, peers).
 *
 * @example
 * ```ts
 * writePeerIpcache(pinRoot, 1000); // 10.128.0.0 .. 10.128.3.231
 * ```
 */
export function writePeerIpcache(pinRoot: string, peers: number): void {
  writeBatched(pinRoot, MAP_NAMES.ipcache, ipcacheKeyCodec, ipcacheValueCodec, peers, (j) => [
    ipcacheKeyOf(hostCidr(parseIp(peerAddress(j)))),
    { identity: peerIdentity(j), flags: 0 },
  ]);
}

/**
 * Writes ipcache entries `address/32 -> identity` for named hosts (the
 * measured pods).
 */
export function writeHostIpcache(pinRoot: string, hosts: readonly { address: string; identity: number }[]): void {
  writeBatched(pinRoot, MAP_NAMES.ipcache, ipcacheKeyCodec, ipcacheValueCodec, hosts.length, (i) => [
    ipcacheKeyOf(hostCidr(parseIp(hosts[i]!.address))),
    { identity: hosts[i]!.identity, flags: 0 },
  ]);
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
    value: { verdict: VERDICT_ALLOW, auditVerdict: VERDICT_ALLOW, ruleId: i + 1, auditRuleId: i + 1 },
  };
}

/**
 * Writes synthetic policy entries `from` (inclusive) to `to` (exclusive), so a
 * grid can grow the map step by step.
 *
 * @example
 * ```ts
 * writeSyntheticPolicy(pinRoot, layout, 0, 100);
 * writeSyntheticPolicy(pinRoot, layout, 100, 10_000); // now 10k entries
 * ```
 */
export function writeSyntheticPolicy(pinRoot: string, layout: SyntheticPolicyLayout, from: number, to: number): void {
  writeBatched(pinRoot, MAP_NAMES.policy, policyKeyCodec, policyValueCodec, to - from, (i) => {
    const entry = syntheticPolicyEntry(from + i, layout);
    return [entry.key, entry.value];
  });
}

/** Writes arbitrary policy entries (e.g. the one rule admitting a measured flow). */
export function writePolicyEntries(pinRoot: string, entries: readonly PolicyEntry[]): void {
  writeBatched(pinRoot, MAP_NAMES.policy, policyKeyCodec, policyValueCodec, entries.length, (i) => [entries[i]!.key, entries[i]!.value]);
}
