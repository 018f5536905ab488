/**
 * The `-o table` output of `palisade explain` and `palisade probe matrix`:
 * their pair verdicts as the conformance truth table, with a legend.
 *
 * @module
 */
import { pairKey, printGrid } from "../conformance/truth-table.ts";

/** One ordered pair's verdict, as `-o json` prints it. */
export interface PairVerdict {
  from: string;
  to: string;
  allowed: boolean;
  reason: string;
}

const LEGEND = ". allowed   X denied   - not checked (same pod, or no address of that family)";

/**
 * The grid of `verdicts` over every pod they name (sorted), then the legend.
 *
 * @example
 * ```ts
 * verdictTable([{ from: "x/a", to: "x/b", allowed: false, reason: "timeout" }]);
 * // "-   x/a  x/b\nx/a  -    X\nx/b  -    -\n\n. allowed   X denied   - not checked (…)"
 * ```
 */
export function verdictTable(verdicts: readonly PairVerdict[]): string {
  const pods = [...new Set(verdicts.flatMap((v) => [v.from, v.to]))].sort();
  return `${printGrid(new Map(verdicts.map((v) => [pairKey(v.from, v.to), v.allowed])), pods)}\n\n${LEGEND}`;
}
