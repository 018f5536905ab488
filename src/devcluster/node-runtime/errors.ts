/**
 * The error of the dev cluster's stand-in node runtime.
 *
 * @module
 */

/**
 * A pod sandbox could not be set up, torn down or reported.
 *
 * @example
 * ```ts
 * throw new NodeRuntimeError(`Cannot wire pod "x/a": the ptp plugin failed: ${detail}`, { cause });
 * ```
 */
export class NodeRuntimeError extends Error {
  override readonly name = "NodeRuntimeError";
}
