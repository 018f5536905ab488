/**
 * Where a probe to or from a pod goes: the pod's address of a family, and
 * the network namespace its probes leave from. Which namespace that is, the
 * runtime that made the pod knows: it records it on the pod in
 * {@linkcode SANDBOX_NETNS_ANNOTATION} (the dev cluster's node runtime does,
 * before it reports the pod Ready), so this layer depends on no runtime and
 * re-derives no naming rule.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";

/** The annotation in which a node runtime records the network namespace of a pod's sandbox, for probes to enter. */
export const SANDBOX_NETNS_ANNOTATION = "palisade.dev/sandbox-netns";

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
 * The network namespace `pod`'s probes leave from, as its runtime recorded
 * it; throws {@linkcode ProbeTargetError} when none did.
 *
 * @example
 * ```ts
 * podNetns({ metadata: { annotations: { "palisade.dev/sandbox-netns": "pal-1-0a1b2c3d" } } }); // "pal-1-0a1b2c3d"
 * ```
 */
export function podNetns(pod: V1Pod): string {
  const netns = pod.metadata?.annotations?.[SANDBOX_NETNS_ANNOTATION];
  if (netns === undefined || netns === "") {
    throw new ProbeTargetError(
      `Cannot probe from pod "${pod.metadata?.namespace}/${pod.metadata?.name}": metadata.annotations has no "${SANDBOX_NETNS_ANNOTATION}", which the dev cluster's node runtime sets on the pods it runs (is it a dev cluster pod, and Running?)`,
    );
  }
  return netns;
}
