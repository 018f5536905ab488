/**
 * Quoting for POSIX shell text we write: the `export` lines of `palisade dev
 * up` and the CNI plugin wrapper script.
 *
 * @module
 */

/**
 * `value` as one shell word: as is when it has only safe characters, single-quoted otherwise.
 *
 * @example
 * ```ts
 * shellQuote("/opt/cni/bin");   // "/opt/cni/bin"
 * shellQuote("/tmp/my dir");    // "'/tmp/my dir'"
 * ```
 */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
