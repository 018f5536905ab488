/**
 * Finds the host-side interface of a local pod the way the CNI ptp plugin
 * wires it: the kernel's route to the pod's IP leaves through that
 * interface directly (no gateway). Asks `ip -j route get`, so it sees what
 * the kernel would do with a packet to the pod.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The host-side interface of a pod. */
export interface PodInterface {
  name: string;
  ifindex: number;
}

/** Looks up a pod's host-side interface by its IP; `undefined` when there is none (yet). */
export type PodInterfaceLookup = (ip: string) => Promise<PodInterface | undefined>;

interface LinkAnswer {
  ifindex?: number;
  linkinfo?: { info_kind?: string };
}

interface RouteGetAnswer {
  type?: string;
  dev?: string;
  gateway?: string;
}

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
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync("ip", ["-j", "route", "get", ip], { timeout: 5_000 }));
  } catch {
    // No route at all (unreachable): the pod's interface is not there.
    return undefined;
  }
  const [route] = JSON.parse(stdout) as RouteGetAnswer[];
  if (route?.dev === undefined || route.gateway !== undefined || (route.type !== undefined && route.type !== "unicast")) return undefined;
  if (route.dev === "lo") return undefined;
  let link: LinkAnswer | undefined;
  try {
    ({ stdout } = await execFileAsync("ip", ["-j", "-d", "link", "show", "dev", route.dev], { timeout: 5_000 }));
    [link] = JSON.parse(stdout) as LinkAnswer[];
  } catch {
    // The interface went away between the two questions.
    return undefined;
  }
  if (link?.ifindex === undefined || link.linkinfo?.info_kind === "bridge") return undefined;
  return { name: route.dev, ifindex: link.ifindex };
}
