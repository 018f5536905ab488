/**
 * The per-node enforcement report, the MVP way: a ConfigMap
 * `palisade-node-<node>` in `palisade-system` whose `report.json` says
 * which policy generations this agent has applied, how many endpoints it
 * enforces, and up to which resourceVersion of pods and namespaces it has
 * caught up. The operator and `palisade wait` read it.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { PatchType } from "../k8s/client.ts";
import { isNotFound } from "../k8s/errors.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";

/** The namespace the reports live in. */
export const REPORT_NAMESPACE = "palisade-system";

/** The data key holding the report. */
export const REPORT_KEY = "report.json";

/** Name prefix of the report ConfigMaps; the rest of the name is the Node's name. */
export const REPORT_NAME_PREFIX = "palisade-node-";

/** The name of the ConfigMap holding `node`'s report. */
export function reportConfigMapName(node: string): string {
  return `${REPORT_NAME_PREFIX}${node}`;
}

/** A policy generation the agent enforces. */
export interface AppliedPolicy {
  kind: "NetworkPolicy" | "EBPFNetworkPolicy";
  namespace: string;
  name: string;
  /** Tells a policy apart from a deleted one of the same name (both start at generation 1). */
  uid: string;
  generation: number;
}

/** What `report.json` holds. */
export interface NodeReport {
  node: string;
  /** When this state was written to the kernel (ISO 8601). */
  appliedAt: string;
  /** Sorted by kind, namespace, name. */
  policies: AppliedPolicy[];
  endpoints: number;
  /** The pods resourceVersion every change up to which is applied. */
  podResourceVersion: string;
  /** The namespaces resourceVersion every change up to which is applied. */
  namespaceResourceVersion: string;
  /** How many pods (cluster-wide) the agent knew at `podResourceVersion`: tells a deletion it has not seen yet. */
  pods: number;
  /** How many namespaces the agent knew at `namespaceResourceVersion`. */
  namespaces: number;
}

/**
 * Creates or updates the node's report ConfigMap with a server-side apply
 * (one request, no read first).
 *
 * @example
 * ```ts
 * await writeNodeReport(client, { node: "node-1", appliedAt: new Date().toISOString(), policies: [], endpoints: 0, podResourceVersion: "1", namespaceResourceVersion: "1", pods: 0, namespaces: 0 });
 * ```
 */
export async function writeNodeReport(client: KubeClient, report: NodeReport, signal?: AbortSignal): Promise<void> {
  const name = reportConfigMapName(report.node);
  const body = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: REPORT_NAMESPACE, labels: { "app.kubernetes.io/part-of": "palisade", "palisade.dev/node": report.node } },
    data: { [REPORT_KEY]: JSON.stringify(report) },
  };
  await client.request("PATCH", resourcePath(Resources.configMaps, { namespace: REPORT_NAMESPACE, name }), {
    body,
    contentType: PatchType.apply,
    query: { fieldManager: "palisade-agent", force: true },
    ...(signal === undefined ? {} : { signal }),
  });
}

/**
 * Reads a node's report; `undefined` when there is none.
 *
 * @example
 * ```ts
 * const report = await readNodeReport(client, "node-1");
 * report?.policies.find((p) => p.name === "deny-all")?.generation;
 * ```
 */
export async function readNodeReport(client: KubeClient, node: string): Promise<NodeReport | undefined> {
  try {
    const cm = await client.request<{ data?: Record<string, string> }>("GET", resourcePath(Resources.configMaps, { namespace: REPORT_NAMESPACE, name: reportConfigMapName(node) }));
    const text = cm.data?.[REPORT_KEY];
    return text === undefined ? undefined : (JSON.parse(text) as NodeReport);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
