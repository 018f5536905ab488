/**
 * The error every dev cluster operation throws.
 *
 * @module
 */

/**
 * A dev cluster step that could not be done: the message names the component
 * or file and says what went wrong; `cause` carries the underlying error.
 *
 * @example
 * ```ts
 * throw new DevClusterError(`Cannot start "etcd": port 2379 is in use`);
 * ```
 */
export class DevClusterError extends Error {
  override name = "DevClusterError";
}
