/**
 * The node addresses learned from host-network pods, by pod: what the agent
 * and the operator feed to {@link PolicyCompiler.setHostIPs}.
 *
 * @module
 */

/**
 * Host IPs per pod key, and their union.
 *
 * @example
 * ```ts
 * const hostIps = new HostIpsByPod();
 * const all = hostIps.set("kube-system/proxy", ["10.240.0.1"]); // ["10.240.0.1"]
 * if (all) compiler.setHostIPs(all);
 * ```
 */
export class HostIpsByPod {
  readonly #byPod = new Map<string, string[]>();

  /** Records the host IPs of pod `key` (none: forgets it); returns the union of all pods' when it changed, else undefined. */
  set(key: string, ips: string[]): string[] | undefined {
    const before = this.#byPod.get(key) ?? [];
    if (before.join() === ips.join()) return undefined;
    if (ips.length === 0) this.#byPod.delete(key);
    else this.#byPod.set(key, ips);
    return [...new Set([...this.#byPod.values()].flat())];
  }
}
