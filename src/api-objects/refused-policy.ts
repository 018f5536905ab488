/**
 * What a policy Palisade refuses still says for sure: whom it selects and
 * which directions it isolates. A policy the API server stored but
 * validation refuses (a CIDR with leading zeros, an IPv4-mapped prefix, a
 * field an older schema let through) cannot be enforced as written, but
 * skipping it would leave the pods it isolates open: a node fails closed
 * instead, isolating those pods in those directions with none of the
 * policy's rules, until the policy is corrected.
 *
 * @module
 */
import type { AnyPolicy } from "../policy/api-types.ts";
import { policyFromObject } from "./convert.ts";

const TYPES = ["Ingress", "Egress"] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The isolation `obj` (a NetworkPolicy or EBPFNetworkPolicy object that
 * fails validation) still stands for: the same selector and directions,
 * no rules (both directions when its own cannot be read), enforced (an
 * Audit policy stays in Audit); undefined when even its selector cannot be read.
 *
 * @example
 * ```ts
 * const converted = policyFromObject(obj);
 * const isolation = converted.ok ? undefined : isolationOfRefused(obj); // enforce it in the policy's place
 * ```
 */
export function isolationOfRefused(obj: unknown): AnyPolicy | undefined {
  if (!isRecord(obj) || !isRecord(obj.spec)) return undefined;
  const spec = obj.spec;
  const selectorField = obj.kind === "EBPFNetworkPolicy" ? "selector" : "podSelector";
  const listed = Array.isArray(spec.policyTypes) ? spec.policyTypes : [];
  // As the API server defaults them: Ingress, plus Egress when egress has a rule; both when they cannot be read.
  const readable = listed.every((type) => TYPES.includes(type as (typeof TYPES)[number]));
  const policyTypes = !readable ? [...TYPES] : listed.length > 0 ? listed : ["Ingress", ...(Array.isArray(spec.egress) && spec.egress.length > 0 ? ["Egress"] : [])];
  const mode = spec.mode === "Audit" ? { mode: "Audit" } : {};
  const standIn = { ...obj, spec: { [selectorField]: spec[selectorField], policyTypes, ingress: [], egress: [], ...(obj.kind === "EBPFNetworkPolicy" && mode) } };
  const converted = policyFromObject(standIn);
  return converted.ok ? converted.value : undefined;
}
