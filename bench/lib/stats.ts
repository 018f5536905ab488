/**
 * Small statistics and text-table helpers for the benchmarks: medians of
 * samples, relative changes, and fixed-width tables for a terminal.
 *
 * @module
 */

/**
 * The median of `samples` (the mean of the two middle values for an even count).
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

/**
 * The `q`-quantile of `samples` (0 <= q <= 1), interpolating linearly
 * between the two nearest ranks.
 *
 * @example
 * ```ts
 * quantile([1, 2, 3, 4, 5], 0.25); // 2
 * ```
 */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) throw new RangeError("Cannot take a quantile of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

/**
 * The relative change from `base` to `value` as signed percent text.
 *
 * @example
 * ```ts
 * growth(110, 100); // "+10.0%"
 * ```
 */
export function growth(value: number, base: number): string {
  const percent = (value / base - 1) * 100;
  return `${percent >= 0 ? "+" : ""}${percent.toFixed(1)}%`;
}

/**
 * A count in short form: 1, 100, 10k, 65k, 1M (rounded to whole units).
 *
 * @example
 * ```ts
 * shortCount(65536); // "65k"
 * ```
 */
export function shortCount(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 < 1000) return `${Math.round(n / 1_000_000)}M`;
  if (n >= 1000) return `${Math.floor(n / 1000)}k`;
  return String(n);
}

/**
 * Formats rows as a Markdown table with columns padded to equal width, so the
 * output reads well in a terminal and pastes into docs unchanged. Columns
 * after the first are right-aligned (they hold numbers).
 *
 * @example
 * ```ts
 * formatTable(["N", "ns"], [["1", "42"]]);
 * // | N |  ns |
 * // |---|----:|
 * // | 1 |  42 |
 * ```
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, 3, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((width, column) => (column === 0 ? (cells[column] ?? "").padEnd(width) : (cells[column] ?? "").padStart(width))).join(" | ")} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? "-".repeat(width + 2) : `${"-".repeat(width + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
