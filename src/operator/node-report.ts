/**
 * The per-node report an agent publishes in a ConfigMap
 * `palisade-node-<nodeName>` of the operator's namespace (data key
 * `report.json`), and its parsing. The operator reads only what it
 * aggregates: which policy generations a node enforces.
 *
 * @module
 */
import type { V1ConfigMap } from "@kubernetes/client-node";

/** Name prefix of the report ConfigMaps; the rest of the name is the Node's name. */
export const NODE_REPORT_PREFIX = "palisade-node-";

/** Data key of the report inside its ConfigMap. */
export const NODE_REPORT_KEY = "report.json";

/** One policy generation a node enforces. */
export interface ReportedPolicy {
  /** `NetworkPolicy` or `EBPFNetworkPolicy`. */
  kind: string;
  namespace: string;
  name: string;
  /** The policy's `metadata.uid`: a deleted and recreated policy starts at generation 1 again. */
  uid: string;
  /** The `metadata.generation` the node's datapath holds. */
  generation: number;
}

/** What the operator reads of one node's report. */
export interface NodeReport {
  /** The Node the report is about (from the ConfigMap's name). */
  node: string;
  /** Policies the node enforces, each at one generation. */
  policies: ReportedPolicy[];
}

/** A report ConfigMap whose content cannot be read. */
export class NodeReportError extends Error {
  override readonly name = "NodeReportError";
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
  if (!configMapName.startsWith(NODE_REPORT_PREFIX) || configMapName.length === NODE_REPORT_PREFIX.length) return undefined;
  return configMapName.slice(NODE_REPORT_PREFIX.length);
}

/**
 * Parses a report ConfigMap. Throws {@linkcode NodeReportError} naming the
 * ConfigMap and field when the report is missing or malformed.
 *
 * @example
 * ```ts
 * parseNodeReport({ metadata: { name: "palisade-node-n1", namespace: "palisade-system" },
 *   data: { "report.json": '{"node":"n1","policies":[{"kind":"EBPFNetworkPolicy","namespace":"x","name":"p","uid":"u1","generation":2}]}' } });
 * // { node: "n1", policies: [{ kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 }] }
 * ```
 */
export function parseNodeReport(configMap: V1ConfigMap): NodeReport {
  const ref = `${configMap.metadata?.namespace ?? ""}/${configMap.metadata?.name ?? ""}`;
  const node = reportedNodeName(configMap.metadata?.name ?? "");
  if (node === undefined) throw new NodeReportError(`Cannot read node report "${ref}": metadata.name does not start with "${NODE_REPORT_PREFIX}"`);
  const text = configMap.data?.[NODE_REPORT_KEY];
  if (text === undefined) throw new NodeReportError(`Cannot read node report "${ref}": data["${NODE_REPORT_KEY}"] is missing`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new NodeReportError(`Cannot read node report "${ref}": data["${NODE_REPORT_KEY}"] is not JSON`, { cause });
  }
  const policies = (value as { policies?: unknown } | null)?.policies;
  if (!Array.isArray(policies)) throw new NodeReportError(`Cannot read node report "${ref}": policies is not a list`);
  return {
    node,
    policies: policies.map((entry: unknown, i) => {
      const p = entry as Partial<ReportedPolicy> | null;
      if (typeof p?.kind !== "string" || typeof p.namespace !== "string" || typeof p.name !== "string" || typeof p.uid !== "string" || !Number.isInteger(p.generation)) {
        throw new NodeReportError(`Cannot read node report "${ref}": policies[${i}] needs kind, namespace, name, uid (strings) and generation (an integer)`);
      }
      return { kind: p.kind, namespace: p.namespace, name: p.name, uid: p.uid, generation: p.generation as number };
    }),
  };
}
