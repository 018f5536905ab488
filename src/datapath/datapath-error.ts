/**
 * The error of the datapath layer's own operations.
 *
 * @module
 */

/**
 * A datapath operation failed; the message names the object, map or
 * interface, and `cause` holds the kernel's error.
 *
 * @example
 * ```ts
 * try {
 *   datapath.readConfig();
 * } catch (error) {
 *   if (error instanceof DatapathError) log.error({ err: error }, error.message);
 * }
 * ```
 */
export class DatapathError extends Error {
  override name = "DatapathError";
}
