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

/** A distribution-free confidence interval for a median: two order statistics and the confidence they give. */
export interface MedianInterval {
  low: number;
  high: number;
  /** The probability that the interval holds the true median, 0 to 1 (at least the asked one when there are enough samples). */
  confidence: number;
}

/**
 * The narrowest interval of order statistics [x(k), x(n+1-k)] that holds the
 * population median with at least `confidence`, by the binomial distribution
 * of samples below it (no assumption about their distribution). With too few
 * samples for that, the whole range and the confidence it has: 1 - 2^(1-n).
 *
 * @example
 * ```ts
 * medianInterval([5, 1, 4, 2, 3, 9, 7, 8, 6, 10]); // { low: 2, high: 9, confidence: 0.979 }
 * ```
 */
export function medianInterval(samples: readonly number[], confidence = 0.95): MedianInterval {
  if (samples.length === 0) throw new RangeError("Cannot take a median interval of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  // below[j] = P(at most j of n samples fall below the median) = P(Binomial(n, 1/2) <= j).
  const below: number[] = [];
  let term = 0.5 ** n;
  let sum = 0;
  for (let j = 0; j <= n; j++) {
    sum += term;
    below.push(sum);
    term = (term * (n - j)) / (j + 1);
  }
  // [x(k), x(n+1-k)] misses the median with probability 2 * P(Binomial <= k - 1).
  let k = 1;
  while (k + 1 <= n + 1 - (k + 1) && 1 - 2 * below[k]! >= confidence) k++;
  return { low: sorted[k - 1]!, high: sorted[n - k]!, confidence: 1 - 2 * below[k - 1]! };
}

/**
 * Shuffles `items` in place (Fisher-Yates) with a seeded generator, so that a
 * run's order can be repeated from its seed.
 *
 * @example
 * ```ts
 * const random = seededRandom(42); // from src/conformance/random-cases.ts
 * shuffle([1, 2, 3, 4], random); // the same order for seed 42 every time
 * ```
 */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
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
