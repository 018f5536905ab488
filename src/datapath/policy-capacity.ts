/**
 * What to do when the desired policy entries do not fit `pal_policy`: keep
 * as many endpoints fully programmed as fit, in a fixed order, and fail the
 * others closed. A failed-closed endpoint keeps its flags (the directions a
 * policy isolates it in) but points at {@linkcode FAIL_CLOSED_SLOT}, which
 * holds no entry, so every new flow in an isolated direction is denied (its
 * tracked flows too, at the revision bump) and a direction no policy
 * isolates stays open, as policy says. Never a partial or stale slot: a
 * missing allow may drop what policy admits, a missing deny would admit
 * what it forbids.
 *
 * @module
 */
import type { DesiredMaps, EndpointState, PolicyEntry } from "../policy/desired-state.ts";

/** The slot no entry is ever written to: the compiler numbers slots from 1. */
export const FAIL_CLOSED_SLOT = 0;

/** An endpoint's state failed closed: same flags and identity, no entries. */
export function failClosed(state: EndpointState): EndpointState {
  return { ...state, slot: FAIL_CLOSED_SLOT };
}

/** What fits the policy map, from {@linkcode fitPolicyMap}. */
export interface PolicyFit {
  /** The state to write: the kept endpoints' slots, the others failed closed. */
  state: DesiredMaps;
  /** Policy entries the whole desired state needs. */
  needed: number;
  /** Pod keys failed closed, sorted. */
  failedClosed: string[];
}

/**
 * Keeps endpoints in the order of their pod keys, each whose slot is kept
 * already or whose entries still fit `capacity`, and fails the others
 * closed. The order is fixed so that the same state always keeps the same
 * endpoints; an endpoint needing more than what is left does not stop a
 * smaller one after it from being kept.
 *
 * @example
 * ```ts
 * const fit = fitPolicyMap(compiler.mapsState(), datapath.policyCapacity());
 * datapath.replaceAll(fit.state, ifindexOf); // fit.failedClosed deny in every isolated direction
 * ```
 */
export function fitPolicyMap(state: DesiredMaps, capacity: number): PolicyFit {
  const bySlot = new Map<number, PolicyEntry[]>();
  for (const entry of state.policy.values()) {
    const entries = bySlot.get(entry.key.slot);
    if (entries === undefined) bySlot.set(entry.key.slot, [entry]);
    else entries.push(entry);
  }
  const kept = new Set<number>();
  let used = 0;
  const endpoints = new Map<string, EndpointState>();
  const failedClosed: string[] = [];
  for (const pod of [...state.endpoints.keys()].sort()) {
    const endpoint = state.endpoints.get(pod) as EndpointState;
    const size = kept.has(endpoint.slot) ? 0 : (bySlot.get(endpoint.slot)?.length ?? 0);
    if (used + size <= capacity) {
      kept.add(endpoint.slot);
      used += size;
      endpoints.set(pod, endpoint);
    } else {
      endpoints.set(pod, failClosed(endpoint));
      failedClosed.push(pod);
    }
  }
  const policy = new Map<string, PolicyEntry>();
  for (const [text, entry] of state.policy) if (kept.has(entry.key.slot)) policy.set(text, entry);
  return { state: { ...state, endpoints, policy }, needed: state.policy.size, failedClosed };
}
