/**
 * The error of a command line or input a `palisade` command cannot work
 * with; `main` prints its message and exits with status 2.
 *
 * @module
 */

/**
 * Input the command cannot work with: exit status 2.
 *
 * @example
 * ```ts
 * throw new UsageError(`Cannot probe: --port "${text}" is not a port number (1-65535)`);
 * ```
 */
export class UsageError extends Error {
  override name = "UsageError";
}
