/**
 * Finds the host-side interface of a local pod the way the CNI ptp plugin
 * wires it: the kernel's route to the pod's IP leaves through that
 * interface directly (no gateway). Asks the kernel over rtnetlink what
 * `ip route get` asks, so it sees what the kernel would do with a packet to
 * the pod, without forking a process per pod.
 *
 * @module
 */
import { linkGet, routeGet, RTN_UNICAST } from "../datapath/index.ts";

/** The host-side interface of a pod. */
export interface PodInterface {
  name: string;
  ifindex: number;
}

/** Looks up a pod's host-side interface by its IP; `undefined` when there is none (yet). */
export type PodInterfaceLookup = (ip: string) => Promise<PodInterface | undefined>;

/**
 * The interface the route to `ip` leaves through, if that route reaches the
 * pod directly: not through a gateway, not a local address, and not a
 * bridge (a bridged pod's own veth cannot be told from the route).
 *
 * @example
 * ```ts
 * await podInterfaceByRoute("10.244.1.5"); // { name: "veth1a2b3c", ifindex: 17 }
 * ```
 */
export async function podInterfaceByRoute(ip: string): Promise<PodInterface | undefined> {
  try {
    const route = routeGet(ip);
    if (route.type !== RTN_UNICAST || route.gateway || route.ifindex === 0) return undefined;
    const link = linkGet(route.ifindex);
    if (link.kind === "bridge" || link.name === "lo") return undefined;
    return { name: link.name, ifindex: route.ifindex };
  } catch {
    // No route (unreachable), the interface went away between the two questions, or no address at all: no interface.
    return undefined;
  }
}
