/**
 * Expected connectivity over the model's pods, written as upstream writes
 * it: everything allowed (or denied) by default, then ordered overrides
 * from a set of pods to a set of pods. A pattern is `*` (every pod),
 * `x/*` (every pod of namespace x), `* /a` without the space (pod a of every
 * namespace) or `x/a`. Later overrides win.
 *
 * @module
 */
import { parseObjectKey } from "../k8s/cache.ts";
import { pairKey, type Verdicts } from "./truth-table.ts";

/** A pod pattern: `*`, `NS/*`, `* /POD` (no space) or `NS/POD`. */
export type PodPattern = string;

/** One override: traffic from pods matching `from` to pods matching `to` is allowed or not. */
export type Override = readonly [from: PodPattern, to: PodPattern, allowed: boolean];

/** Expected connectivity: the default verdict and the overrides, in order. */
export interface Expectation {
  allowByDefault: boolean;
  overrides: readonly Override[];
}

/**
 * Everything allowed except what the overrides say.
 *
 * @example
 * ```ts
 * allowedExcept(["*", "x/*", false], ["x/b", "x/a", true]);
 * ```
 */
export function allowedExcept(...overrides: Override[]): Expectation {
  return { allowByDefault: true, overrides };
}

/** Whether pod `pod` (`ns/name`) matches `pattern`. */
export function patternMatches(pattern: PodPattern, pod: string): boolean {
  if (pattern === "*") return true;
  const { namespace, name } = parseObjectKey(pattern);
  const target = parseObjectKey(pod);
  return (namespace === "*" || namespace === target.namespace) && (name === "*" || name === target.name);
}

/** Whether traffic from `from` to `to` (both `ns/name`) is expected to pass. */
export function expected(expectation: Expectation, from: string, to: string): boolean {
  let allowed = expectation.allowByDefault;
  for (const [fromPattern, toPattern, verdict] of expectation.overrides) {
    if (patternMatches(fromPattern, from) && patternMatches(toPattern, to)) allowed = verdict;
  }
  return allowed;
}

/** Every ordered pair of distinct pods in `pods` with its expected verdict; self pairs are not checked, as upstream ignores loopback. */
export function expectedVerdicts(expectation: Expectation, pods: readonly string[]): Verdicts {
  const verdicts: Verdicts = new Map();
  for (const from of pods) {
    for (const to of pods) if (from !== to) verdicts.set(pairKey(from, to), expected(expectation, from, to));
  }
  return verdicts;
}
