/**
 * The per-node enforcement report, the MVP way: a ConfigMap
 * `palisade-node-<node>` in `palisade-system` whose `report.json` says
 * which policy generations the node's agent has applied, how many endpoints
 * it enforces, and up to which resourceVersion of pods and namespaces it has
 * caught up. The agent writes it; the operator, `palisade wait` and
 * `palisade status` read it, all through {@linkcode parseNodeReport}, which
 * checks every field. It lives here, below the agent and the operator, since
 * both (and the probe layer) speak it and it needs nothing but the client.
 *
 * @module
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { KubeClient } from "./client.ts";
import { PatchType } from "./client.ts";
import { isNotFound } from "./errors.ts";
import { resourcePath, Resources } from "./resource.ts";

/** The namespace the reports live in. */
export const REPORT_NAMESPACE = "palisade-system";

/** The data key holding the report. */
export const REPORT_KEY = "report.json";

/** Name prefix of the report ConfigMaps; the rest of the name is the Node's name. */
export const REPORT_NAME_PREFIX = "palisade-node-";

/** The policy kinds a report lists. */
const POLICY_KINDS: readonly string[] = ["NetworkPolicy", "EBPFNetworkPolicy"];

/**
 * The name of the ConfigMap holding `node`'s report.
 *
 * @example
 * ```ts
 * reportConfigMapName("worker-1"); // "palisade-node-worker-1"
 * ```
 */
export function reportConfigMapName(node: string): string {
  return `${REPORT_NAME_PREFIX}${node}`;
}

/**
 * The Node a ConfigMap reports on, or `undefined` if its name is not a
 * report's name.
 *
 * @example
 * ```ts
 * reportedNodeName("palisade-node-worker-1"); // "worker-1"
 * reportedNodeName("kube-root-ca.crt");       // undefined
 * ```
 */
export function reportedNodeName(configMapName: string): string | undefined {
  if (!configMapName.startsWith(REPORT_NAME_PREFIX) || configMapName.length === REPORT_NAME_PREFIX.length) return undefined;
  return configMapName.slice(REPORT_NAME_PREFIX.length);
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
  /** The Node the report is about (the ConfigMap's name says the same). */
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

/** A report ConfigMap whose content cannot be read; the message names the ConfigMap and the field. */
export class NodeReportError extends Error {
  override readonly name = "NodeReportError";
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
 * Reads `node`'s report: `undefined` when there is none, and
 * {@linkcode NodeReportError} when it is malformed.
 *
 * @example
 * ```ts
 * const report = await readNodeReport(client, "node-1");
 * report?.policies.find((p) => p.name === "deny-all")?.generation;
 * ```
 */
export async function readNodeReport(client: KubeClient, node: string): Promise<NodeReport | undefined> {
  let configMap: V1ConfigMap;
  try {
    configMap = await client.request<V1ConfigMap>("GET", resourcePath(Resources.configMaps, { namespace: REPORT_NAMESPACE, name: reportConfigMapName(node) }));
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  return parseNodeReport(configMap);
}

function isCount(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0;
}

function checkedPolicy(entry: unknown, refuse: (problem: string) => NodeReportError, index: number): AppliedPolicy {
  const p = entry as Partial<Record<keyof AppliedPolicy, unknown>> | null;
  if (typeof p?.kind !== "string" || !POLICY_KINDS.includes(p.kind)) throw refuse(`policies[${index}].kind is not ${POLICY_KINDS.join(" or ")}`);
  if (typeof p.namespace !== "string" || typeof p.name !== "string" || typeof p.uid !== "string" || !isCount(p.generation)) {
    throw refuse(`policies[${index}] needs namespace, name, uid (strings) and generation (a whole number)`);
  }
  return { kind: p.kind as AppliedPolicy["kind"], namespace: p.namespace, name: p.name, uid: p.uid, generation: p.generation };
}

/**
 * Parses a report ConfigMap, checking every field. Throws
 * {@linkcode NodeReportError} naming the ConfigMap and the field when the
 * name is not a report's or the report is missing or malformed.
 *
 * @example
 * ```ts
 * parseNodeReport({ metadata: { name: "palisade-node-n1", namespace: "palisade-system" }, data: { "report.json": text } }).policies;
 * // [{ kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 }]
 * ```
 */
export function parseNodeReport(configMap: V1ConfigMap): NodeReport {
  const ref = `${configMap.metadata?.namespace ?? ""}/${configMap.metadata?.name ?? ""}`;
  const refuse = (problem: string, cause?: unknown): NodeReportError => new NodeReportError(`Cannot read node report "${ref}": ${problem}`, cause === undefined ? undefined : { cause });
  const node = reportedNodeName(configMap.metadata?.name ?? "");
  if (node === undefined) throw refuse(`metadata.name does not start with "${REPORT_NAME_PREFIX}"`);
  const text = configMap.data?.[REPORT_KEY];
  if (text === undefined) throw refuse(`data["${REPORT_KEY}"] is missing`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw refuse(`data["${REPORT_KEY}"] is not JSON`, cause);
  }
  const report = (value ?? {}) as Partial<Record<keyof NodeReport, unknown>>;
  if (report.node !== node) throw refuse(`node ${JSON.stringify(report.node)} is not "${node}", the node its name says`);
  if (!Array.isArray(report.policies)) throw refuse("policies is not a list");
  const policies = report.policies.map((entry: unknown, i) => checkedPolicy(entry, refuse, i));
  for (const field of ["appliedAt", "podResourceVersion", "namespaceResourceVersion"] as const) {
    if (typeof report[field] !== "string") throw refuse(`${field} is not a string`);
  }
  for (const field of ["endpoints", "pods", "namespaces"] as const) {
    if (!isCount(report[field])) throw refuse(`${field} is not a whole number`);
  }
  return {
    node,
    appliedAt: report.appliedAt as string,
    policies,
    endpoints: report.endpoints as number,
    podResourceVersion: report.podResourceVersion as string,
    namespaceResourceVersion: report.namespaceResourceVersion as string,
    pods: report.pods as number,
    namespaces: report.namespaces as number,
  };
}
