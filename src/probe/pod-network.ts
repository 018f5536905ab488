/**
 * Where a probe to or from a pod goes: the pod's address of a family, and
 * the network namespace its probes leave from. Which namespace that is, the
 * runtime that made the pod knows (the dev cluster's node runtime names it
 * from the node and the pod's uid); callers pass that rule in as a
 * {@linkcode SandboxNetns}, so this layer depends on no runtime.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";

/** The network namespace of the pod with `uid` on node `nodeName`, or `undefined` when that node's runtime is not one we can enter. */
export type SandboxNetns = (nodeName: string, uid: string) => string | undefined;

/** A pod probes cannot reach or leave from; the message names the pod and the field. */
export class ProbeTargetError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "ProbeTargetError";
}

/**
 * The pod's address of `family`, or `undefined` when it has none.
 *
 * @example
 * ```ts
 * podAddress({ status: { podIPs: [{ ip: "10.244.1.2" }, { ip: "fd00::2" }] } }, "ipv6"); // "fd00::2"
 * ```
 */
export function podAddress(pod: V1Pod, family: "ipv4" | "ipv6"): string | undefined {
  const ips = (pod.status?.podIPs ?? []).map((entry) => entry.ip);
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return ips.find((ip) => ip.includes(":") === (family === "ipv6"));
}

/**
 * The network namespace `pod`'s probes leave from, by `sandboxNetns`;
 * throws {@linkcode ProbeTargetError} when its node has none we can enter.
 *
 * @example
 * ```ts
 * podNetns(pod, podSandboxNetns); // "pal-1-0a1b2c3d" for a pod on dev node palisade-node-1
 * ```
 */
export function podNetns(pod: V1Pod, sandboxNetns: SandboxNetns): string {
  const node = pod.spec?.nodeName ?? "";
  const netns = sandboxNetns(node, pod.metadata?.uid ?? "");
  if (netns === undefined) {
    throw new ProbeTargetError(`Cannot probe from pod "${pod.metadata?.namespace}/${pod.metadata?.name}": spec.nodeName "${node}" is not a dev cluster node`);
  }
  return netns;
}
