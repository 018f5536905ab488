/**
 * Truth tables: a verdict per ordered pair of pods, and upstream's grid that
 * prints them (rows are sources, columns destinations, `.` allowed, `X`
 * denied, `-` a self pair or a pair without a verdict). Every table
 * Palisade prints is this grid: the conformance runner's expected and
 * observed tables, `palisade explain -o table` and `palisade probe matrix
 * -o table`, so their outputs compare cell by cell with each other and with
 * upstream's.
 *
 * @module
 */

/** A verdict per ordered pair, keyed `from to`. */
export type Verdicts = Map<string, boolean>;

/** The key of an ordered pair in {@linkcode Verdicts}. */
export function pairKey(from: string, to: string): string {
  return `${from} ${to}`;
}

/**
 * `verdicts` over `pods` (rows and columns in that order) in upstream's
 * grid form.
 *
 * @example
 * ```ts
 * printGrid(new Map([["x/a x/b", true], ["x/b x/a", false]]), ["x/a", "x/b"]);
 * // "-   x/a  x/b\nx/a  -    .\nx/b  X    -"
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
