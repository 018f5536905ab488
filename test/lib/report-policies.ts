/**
 * Synthetic policy lists for node report tests: policies named as real
 * clusters name them (a handful per namespace, names from a small vocabulary)
 * with random uids, and policies with random names that compress poorly, to
 * push a report past its size limit with few entries.
 *
 * @module
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { AppliedPolicy } from "../../src/k8s/node-report.ts";

const WORDS = ["allow", "deny", "frontend", "backend", "api", "db", "ingress", "egress", "dns", "monitoring", "from", "to", "same-namespace"];

/**
 * `count` policies, ten per namespace (`team-N-prod-M`), of both kinds, named like
 * `allow-dns-backend-13-4821`, with random uids and generations 1-5.
 *
 * @example
 * ```ts
 * encodeNodeReport({ ...report, policies: realisticPolicies(50_000) }).bytes.length; // about 615 kB
 * ```
 */
export function realisticPolicies(count: number): AppliedPolicy[] {
  const policies: AppliedPolicy[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${WORDS[i % WORDS.length]}-${WORDS[(i * 7) % WORDS.length]}-${WORDS[(i * 3) % WORDS.length]}-${i % 97}-${i}`;
    const namespace = `team-${Math.floor(i / 10) % 1000}-prod-${Math.floor(i / 10_000)}`;
    policies.push({ kind: i % 3 === 0 ? "EBPFNetworkPolicy" : "NetworkPolicy", namespace, name, uid: randomUUID(), generation: 1 + (i % 5) });
  }
  return policies;
}

/**
 * `count` NetworkPolicies in namespace x with random 60-character names (about 45 bytes each once
 * compressed): 30k of them are over the report's limit.
 */
export function incompressiblePolicies(count: number): AppliedPolicy[] {
  return Array.from({ length: count }, (_, i): AppliedPolicy => ({ kind: "NetworkPolicy", namespace: "x", name: randomBytes(30).toString("hex"), uid: String(i), generation: 1 }));
}
