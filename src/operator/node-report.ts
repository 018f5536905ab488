/**
 * The operator's reading of the per-node report an agent publishes
 * (src/agent/report.ts: ConfigMap `palisade-node-<nodeName>`, data key
 * `report.json`), checked field by field. The operator reads only what it
 * aggregates: which policy generations a node enforces.
 *
 * @module
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { REPORT_KEY, REPORT_NAME_PREFIX, type AppliedPolicy } from "../agent/report.ts";

/** One policy generation a node enforces, as the agent writes it; the kind is read as any string. */
export type ReportedPolicy = Omit<AppliedPolicy, "kind"> & { kind: string };

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
  if (!configMapName.startsWith(REPORT_NAME_PREFIX) || configMapName.length === REPORT_NAME_PREFIX.length) return undefined;
  return configMapName.slice(REPORT_NAME_PREFIX.length);
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
  if (node === undefined) throw new NodeReportError(`Cannot read node report "${ref}": metadata.name does not start with "${REPORT_NAME_PREFIX}"`);
  const text = configMap.data?.[REPORT_KEY];
  if (text === undefined) throw new NodeReportError(`Cannot read node report "${ref}": data["${REPORT_KEY}"] is missing`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new NodeReportError(`Cannot read node report "${ref}": data["${REPORT_KEY}"] is not JSON`, { cause });
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
