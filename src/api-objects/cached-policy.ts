/**
 * A policy object as the agent's informers keep it: its metadata and what
 * converting it gave, done once as it arrives, in place of its spec. An
 * accepted policy is held as the {@linkcode NormalizedPolicy} the compiler
 * takes and keeps, so the agent holds a policy's rules once, not as parsed
 * JSON in its cache beside their normalized form in its compiler (at scale,
 * 1k allow-lists of 100k ipBlock peers: two objects and a string each in the
 * cache, 18 MB). A refused policy is held as its errors, each naming the
 * object and the field, and the isolation it still stands for
 * ({@linkcode isolationOfRefused}), normalized too.
 *
 * The operator keeps the spec ({@linkcode policyFields}): it reads more of it.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { normalizePolicy } from "../policy/normalized-policy.ts";
import type { NormalizedPolicy } from "../policy/normalized-policy.ts";
import { PolicyError } from "../policy/validate.ts";
import { policyFields } from "./cached-fields.ts";
import { policyFromObject } from "./convert.ts";
import { isolationOfRefused } from "./refused-policy.ts";

/** What converting a policy object gave: the policy as the compiler reads it, or why it is refused and what it still isolates. */
export type PolicyConversion =
  | { readonly ok: true; readonly policy: NormalizedPolicy }
  | { readonly ok: false; readonly errors: readonly PolicyError[]; readonly isolation: NormalizedPolicy | undefined };

/** A NetworkPolicy or EBPFNetworkPolicy as the agent's informers cache it: no spec, its conversion instead. */
export interface CachedPolicy extends KubernetesObject {
  readonly converted: PolicyConversion;
}

/**
 * Converts a policy object (`policyFromObject`, then `normalizePolicy`), as
 * an informer's `transform`: the metadata the policy layer reads and the
 * conversion. A policy that validation lets through but normalizing cannot
 * convert is refused like any other, with the error naming its field.
 *
 * @example
 * ```ts
 * const informer = new Informer({ client, resource: Resources.networkPolicies, transform: cachedPolicy });
 * const { converted } = cachedPolicy(obj);
 * if (converted.ok) compiler.upsertNormalizedPolicy(converted.policy);
 * ```
 */
export function cachedPolicy(obj: object): CachedPolicy {
  const { apiVersion, kind, metadata } = policyFields(obj as KubernetesObject);
  return { apiVersion, kind, metadata, converted: conversionOf(obj) };
}

function conversionOf(obj: object): PolicyConversion {
  const converted = policyFromObject(obj);
  if (!converted.ok) return refused(obj, converted.errors);
  try {
    return { ok: true, policy: normalizePolicy(converted.value) };
  } catch (error) {
    if (error instanceof PolicyError) return refused(obj, [error]);
    throw error;
  }
}

function refused(obj: object, errors: readonly PolicyError[]): PolicyConversion {
  const isolation = isolationOfRefused(obj);
  return { ok: false, errors, isolation: isolation && normalizePolicy(isolation) };
}
