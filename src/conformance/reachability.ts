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

/** A verdict per ordered pair, keyed `from to`. */
export type Verdicts = Map<string, boolean>;

/** The key of an ordered pair in {@linkcode Verdicts}. */
export function pairKey(from: string, to: string): string {
  return `${from} ${to}`;
}

/** Every ordered pair of distinct pods in `pods` with its expected verdict; self pairs are not checked, as upstream ignores loopback. */
export function expectedVerdicts(expectation: Expectation, pods: readonly string[]): Verdicts {
  const verdicts: Verdicts = new Map();
  for (const from of pods) {
    for (const to of pods) if (from !== to) verdicts.set(pairKey(from, to), expected(expectation, from, to));
  }
  return verdicts;
}

/**
 * Upstream's truth-table form: rows are sources, columns destinations, `.`
 * allowed, `X` denied, `-` a self pair or a pair without a verdict.
 *
 * @example
 * ```ts
 * printGrid(expectedVerdicts(allowedExcept(["*", "x/a", false]), ["x/a", "x/b"]), ["x/a", "x/b"]);
 * // "-   x/a x/b\nx/a  -   . \nx/b  X   - "
 * ```
 */
export function printGrid(verdicts: Verdicts, pods: readonly string[]): string {
  const width = Math.max(3, ...pods.map((pod) => pod.length));
  const cell = (text: string): string => text.padEnd(width + 1);
  const lines = [["-".padEnd(width), ...pods.map(cell)].join(" ").trimEnd()];
  for (const from of pods) {
    const cells = pods.map((to) => {
      const verdict = verdicts.get(pairKey(from, to));
      return cell(` ${verdict === undefined ? "-" : verdict ? "." : "X"}`);
    });
    lines.push([from.padEnd(width), ...cells].join(" ").trimEnd());
  }
  return lines.join("\n");
}

/**
 * Parses the grid {@linkcode printGrid} prints back into verdicts, so a
 * table copied from a report can be compared or replayed.
 *
 * @example
 * ```ts
 * parseGrid("-   x/a x/b\nx/a  -   .\nx/b  X   -").get("x/b x/a"); // false
 * ```
 */
export function parseGrid(text: string): Verdicts {
  const [header = "", ...rows] = text.trim().split("\n");
  const columns = header.trim().split(/\s+/).slice(1);
  const verdicts: Verdicts = new Map();
  for (const row of rows) {
    const [from = "", ...cells] = row.trim().split(/\s+/);
    if (cells.length !== columns.length) throw new SyntaxError(`Cannot parse grid row "${row}": ${cells.length} cells for ${columns.length} columns`);
    cells.forEach((value, i) => {
      const to = columns[i] ?? "";
      if (value === ".") verdicts.set(pairKey(from, to), true);
      else if (value === "X") verdicts.set(pairKey(from, to), false);
      else if (value !== "-") throw new SyntaxError(`Cannot parse grid row "${row}": cell ${JSON.stringify(value)} is not ".", "X" or "-"`);
    });
  }
  return verdicts;
}
