/**
 * Durations on command lines, one grammar for every flag that takes one
 * (`palisade wait --timeout`, `palisade install-cni --timeout`,
 * `palisade operator --identity-grace-period`): a decimal number followed by
 * a unit, `ms`, `s` or `m` (`500ms`, `60s`, `1.5m`); a number without a
 * unit counts as seconds.
 *
 * @module
 */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000 };

/**
 * `text` in milliseconds, or `undefined` when it is not a duration; refuse
 * it with {@linkcode notADuration}.
 *
 * @example
 * ```ts
 * parseDuration("2m");   // 120000
 * parseDuration("5");    // 5000
 * parseDuration("soon"); // undefined
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  return match === null ? undefined : Number(match[1]) * (UNIT_MS[match[2] ?? "s"] ?? 1000);
}

/**
 * Why `text`, given to `flag`, is refused: the sentence to follow the
 * command's "Cannot …:" in its usage error.
 *
 * @example
 * ```ts
 * throw new UsageError(`Cannot wait: ${notADuration("--timeout", "soon")}`);
 * // Cannot wait: --timeout "soon" is not a duration (e.g. 60s, 2m, 500ms)
 * ```
 */
export function notADuration(flag: string, text: string): string {
  return `${flag} "${text}" is not a duration (e.g. 60s, 2m, 500ms)`;
}
