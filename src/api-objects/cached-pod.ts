/**
 * A Pod as the agent's informers keep it: the metadata the agent reads of
 * the object itself and what converting it gave, done once as it arrives,
 * in place of its spec, status and labels. The converted pod is what the
 * agent hands the compiler, whose ipcache keeps its labels and named ports
 * as given, so the agent holds a pod's fields once, not as parsed JSON in
 * its cache beside their converted form in its compiler (at scale, 10k pods:
 * 11.6 MB in the cache, 5.2 more in the compiler).
 *
 * The operator keeps the fields (`podFields`): it indexes its
 * pods by namespace and converts them as it reads them.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { canonicalNamedPorts } from "../policy/identity-key.ts";
import { SharedValues } from "../policy/shared-values.ts";
import type { NamedPort, PodInfo } from "../policy/world.ts";
import { cachedPodMetadata } from "./cached-fields.ts";
import { podFromObject } from "./convert.ts";
import type { Converted, ConvertedPod } from "./convert.ts";

/** A Pod as the agent's informers cache it: no spec, status, uid or labels, its conversion instead. */
export interface CachedPod extends KubernetesObject {
  readonly converted: Converted<ConvertedPod>;
}

/**
 * Converts a Pod object ({@linkcode podFromObject}), as an informer's
 * `transform`: the metadata the agent reads of the object
 * ({@linkcode cachedPodMetadata}) and the conversion, which holds the labels.
 *
 * @example
 * ```ts
 * const informer = new Informer({ client, resource: Resources.pods, transform: cachedPod });
 * const { converted } = cachedPod(obj);
 * if (converted.ok) compiler.upsertPod(converted.value.pod);
 * ```
 */
export function cachedPod(obj: object): CachedPod {
  const { apiVersion, kind, metadata } = obj as KubernetesObject;
  const converted = podFromObject(obj);
  if (converted.ok) {
    const { pod, hostIPs } = converted.value;
    converted.value = { pod: withSharedFields(pod), hostIPs: hostIPs.length === 0 ? NO_HOST_IPS : hostIPs };
  }
  return { apiVersion, kind, metadata: cachedPodMetadata(metadata), converted };
}

/** The node addresses of every pod not on the host network: none. */
const NO_HOST_IPS = Object.freeze([]) as unknown as string[];

/** The pod with shared labels and named ports, every field in the object itself: one added later costs a 40-byte property array. */
function withSharedFields({ namespace, name, labels, ips, namedPorts, nodeName }: PodInfo): PodInfo {
  const [podLabels, ports] = [sharedLabels(labels), sharedPorts(namedPorts)];
  return nodeName === undefined ? { namespace, name, labels: podLabels, ips, namedPorts: ports } : { namespace, name, labels: podLabels, ips, namedPorts: ports, nodeName };
}

const LABELS = new SharedValues<Record<string, string>>();
const PORTS = new SharedValues<NamedPort[]>();

/** Equal labels as one frozen object (the pods of a workload have the same): 10k pods of the scale world, 0.6 MB. */
function sharedLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return LABELS.shared(JSON.stringify(entries), () => labels);
}

/**
 * Equal named ports as one frozen list, in canonical order, which the compiler keeps as it is: 10k pods of two
 * named ports each, 2.8 MB.
 */
function sharedPorts(ports: NamedPort[]): NamedPort[] {
  const canonical = canonicalNamedPorts(ports);
  return PORTS.shared(JSON.stringify(canonical), () => canonical.map((port) => Object.freeze(port)));
}
