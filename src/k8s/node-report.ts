/**
 * The per-node enforcement report: a ConfigMap `palisade-node-<node>` in
 * `palisade-system` whose `binaryData["report.json.gz"]` (gzip-compressed
 * JSON) says which policy generations the node's agent has applied, how many
 * endpoints it enforces, up to which resourceVersion of pods and namespaces
 * it has caught up, and what it could not program (a full policy map). The
 * agent writes it; the operator, `palisade wait` and `palisade status` read
 * it, all through {@linkcode parseNodeReport}, which checks every field. It
 * lives here, below the agent and the operator, since both (and the probe
 * layer) speak it and it needs nothing but the client.
 *
 * The encoding is compact so that a node enforcing 50k+ policies still fits
 * the API's 1 MiB object limit: policies grouped by kind, namespace and name,
 * each as `[generation, uid prefix]`, compressed. A report that would still
 * not fit is written without its list, saying how many policies it left out
 * (`overflow`), so readers see why rather than an old report.
 *
 * @module
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { KubeClient } from "./client.ts";
import { PatchType } from "./client.ts";
import { isNotFound } from "./errors.ts";
import { resourcePath, Resources } from "./resource.ts";

/** The namespace the reports live in. */
export const REPORT_NAMESPACE = "palisade-system";

/** The `binaryData` key holding the report: gzip-compressed JSON. */
export const REPORT_KEY = "report.json.gz";

/** Name prefix of the report ConfigMaps; the rest of the name is the Node's name. */
export const REPORT_NAME_PREFIX = "palisade-node-";

/**
 * The most compressed bytes a report may take with its policy list; above it
 * the list is left out (`overflow`). The API refuses objects over 1 MiB; the
 * rest is room for the ConfigMap's metadata and the other fields.
 */
export const MAX_REPORT_BYTES = 1_000_000;

/**
 * How many leading characters of a policy's uid the report keeps. A uid only
 * tells a policy apart from a deleted one of the same kind, namespace and
 * name (both start at generation 1); Kubernetes uids are random (UUID v4), so
 * 8 hex digits (32 bits) mistake a recreated policy for its predecessor once
 * in 4 billion recreations, and even then only until the node applies it.
 */
export const UID_PREFIX_LENGTH = 8;

/** The policy kinds a report lists. */
const POLICY_KINDS = ["NetworkPolicy", "EBPFNetworkPolicy"] as const;

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
  kind: (typeof POLICY_KINDS)[number];
  namespace: string;
  name: string;
  /** Tells a policy apart from a deleted one of the same name (both start at generation 1); a read report holds its first {@linkcode UID_PREFIX_LENGTH} characters. */
  uid: string;
  generation: number;
}

/** A BPF map the desired state did not fit in: the agent failed some endpoints closed. */
export interface MapFull {
  /** The map, e.g. `pal_policy`. */
  map: string;
  /** Entries the whole desired state needs. */
  needed: number;
  /** The map's `max_entries`. */
  capacity: number;
  /** Local pods (`namespace/name`) denied in every direction a policy isolates them in, because their entries did not fit. */
  failedClosed: string[];
}

/** What the report says. */
export interface NodeReport {
  /** The Node the report is about (the ConfigMap's name says the same). */
  node: string;
  /** When this state was written to the kernel (ISO 8601). */
  appliedAt: string;
  /** Sorted by kind, namespace, name; empty when `overflow` is set. */
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
  /** Set when the policy list did not fit the report: how many policies the agent applied, unlisted. */
  overflow?: { policies: number };
  /** Set while the desired state does not fit a map. */
  mapFull?: MapFull;
}

/** A report ConfigMap whose content cannot be read; the message names the ConfigMap and the field. */
export class NodeReportError extends Error {
  override readonly name = "NodeReportError";
}

/** The encoded form: `policies` as kind → namespace → name → `[generation, uid prefix]`. */
type EncodedPolicies = Partial<Record<string, Record<string, Record<string, [number, string]>>>>;

function encodedJson(report: NodeReport, policies: EncodedPolicies): Buffer {
  return gzipSync(JSON.stringify({ ...report, policies }));
}

/**
 * The report as its ConfigMap stores it (gzip-compressed JSON), and whether
 * its policy list had to be left out to stay within
 * {@linkcode MAX_REPORT_BYTES} (then `overflow` says how many it had).
 *
 * @example
 * ```ts
 * const { bytes, overflow } = encodeNodeReport(report);
 * bytes.length < MAX_REPORT_BYTES; // true
 * ```
 */
export function encodeNodeReport(report: NodeReport): { bytes: Buffer; overflow: boolean } {
  const policies: EncodedPolicies = {};
  for (const p of report.policies) {
    const names = ((policies[p.kind] ??= {})[p.namespace] ??= {});
    names[p.name] = [p.generation, p.uid.slice(0, UID_PREFIX_LENGTH)];
  }
  const bytes = encodedJson(report, policies);
  if (bytes.length <= MAX_REPORT_BYTES) return { bytes, overflow: false };
  return { bytes: encodedJson({ ...report, overflow: { policies: report.policies.length } }, {}), overflow: true };
}

/**
 * Creates or updates the node's report ConfigMap with a server-side apply
 * (one request, no read first). Resolves to whether the policy list was left
 * out for size (see {@linkcode encodeNodeReport}).
 *
 * @example
 * ```ts
 * await writeNodeReport(client, { node: "node-1", appliedAt: new Date().toISOString(), policies: [], endpoints: 0, podResourceVersion: "1", namespaceResourceVersion: "1", pods: 0, namespaces: 0 });
 * ```
 */
export async function writeNodeReport(client: KubeClient, report: NodeReport, signal?: AbortSignal): Promise<{ overflow: boolean }> {
  const name = reportConfigMapName(report.node);
  const { bytes, overflow } = encodeNodeReport(report);
  const body = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: REPORT_NAMESPACE, labels: { "app.kubernetes.io/part-of": "palisade", "palisade.dev/node": report.node } },
    binaryData: { [REPORT_KEY]: bytes.toString("base64") },
  };
  await client.request("PATCH", resourcePath(Resources.configMaps, { namespace: REPORT_NAMESPACE, name }), {
    body,
    contentType: PatchType.apply,
    query: { fieldManager: "palisade-agent", force: true },
    ...(signal === undefined ? {} : { signal }),
  });
  return { overflow };
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

const appliedIndexes = new WeakMap<NodeReport, Map<string, AppliedPolicy>>();

function appliedKey(kind: string, namespace: string, name: string, uid: string): string {
  return `${kind}\u0000${namespace}\u0000${name}\u0000${uid.slice(0, UID_PREFIX_LENGTH)}`;
}

/**
 * The policy generation `report` lists for the policy with this kind,
 * namespace, name and uid (a full uid or the report's prefix of it); a
 * same-named entry of another uid is a deleted predecessor and not returned.
 * Indexed on first use, so checking every policy of a cluster is linear.
 *
 * @example
 * ```ts
 * findApplied(report, { kind: "NetworkPolicy", namespace: "x", name: "p", uid: policy.metadata.uid })?.generation; // 3
 * ```
 */
export function findApplied(report: NodeReport, policy: Pick<AppliedPolicy, "kind" | "namespace" | "name" | "uid">): AppliedPolicy | undefined {
  let index = appliedIndexes.get(report);
  if (index === undefined) {
    index = new Map(report.policies.map((p) => [appliedKey(p.kind, p.namespace, p.name, p.uid), p]));
    appliedIndexes.set(report, index);
  }
  return index.get(appliedKey(policy.kind, policy.namespace, policy.name, policy.uid));
}

/**
 * What keeps `report`'s node from confirming any policy, when something does:
 * its list was too large to write, or a map is full. One sentence naming the
 * node; `undefined` when the report is whole.
 *
 * @example
 * ```ts
 * reportProblem(report); // 'node "n1" cannot program every endpoint: map pal_policy needs 1092874 entries, its capacity is 1048576; 3 endpoints fail closed (x/a, x/b, y/c)'
 * ```
 */
export function reportProblem(report: NodeReport): string | undefined {
  const node = JSON.stringify(report.node);
  if (report.mapFull !== undefined) {
    const { map, needed, capacity, failedClosed } = report.mapFull;
    const named = failedClosed.slice(0, 5).join(", ") + (failedClosed.length > 5 ? `, and ${failedClosed.length - 5} more` : "");
    return `node ${node} cannot program every endpoint: map ${map} needs ${needed} entries, its capacity is ${capacity}; ${failedClosed.length} endpoints fail closed (${named})`;
  }
  if (report.overflow !== undefined) {
    return `node ${node} applied ${report.overflow.policies} policies but its report is too large to list them (over ${MAX_REPORT_BYTES} bytes compressed)`;
  }
  return undefined;
}

/**
 * The order of a report's policy list: by kind, namespace, name.
 *
 * @example
 * ```ts
 * policies.sort(compareApplied);
 * ```
 */
export function compareApplied(a: AppliedPolicy, b: AppliedPolicy): number {
  return a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
}

function isCount(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkedPolicies(encoded: unknown, refuse: (problem: string) => NodeReportError): AppliedPolicy[] {
  if (!isRecord(encoded)) throw refuse("policies is not an object of kinds");
  const policies: AppliedPolicy[] = [];
  for (const [kind, namespaces] of Object.entries(encoded)) {
    if (!(POLICY_KINDS as readonly string[]).includes(kind)) throw refuse(`policies["${kind}"] is not ${POLICY_KINDS.join(" or ")}`);
    if (!isRecord(namespaces)) throw refuse(`policies["${kind}"] is not an object of namespaces`);
    for (const [namespace, names] of Object.entries(namespaces)) {
      if (!isRecord(names)) throw refuse(`policies["${kind}"]["${namespace}"] is not an object of names`);
      for (const [name, entry] of Object.entries(names)) {
        if (!Array.isArray(entry) || entry.length !== 2 || !isCount(entry[0]) || typeof entry[1] !== "string") {
          throw refuse(`policies["${kind}"]["${namespace}"]["${name}"] is not [generation (a whole number), uid (a string)]`);
        }
        policies.push({ kind: kind as AppliedPolicy["kind"], namespace, name, uid: entry[1], generation: entry[0] });
      }
    }
  }
  // JSON objects put integer-like keys first: the list is sorted again.
  return policies.sort(compareApplied);
}

function checkedMapFull(value: unknown, refuse: (problem: string) => NodeReportError): MapFull {
  if (!isRecord(value) || typeof value["map"] !== "string" || !isCount(value["needed"]) || !isCount(value["capacity"])) {
    throw refuse("mapFull needs map (a string), needed and capacity (whole numbers)");
  }
  const failedClosed = value["failedClosed"];
  if (!Array.isArray(failedClosed) || !failedClosed.every((pod) => typeof pod === "string")) throw refuse("mapFull.failedClosed is not a list of pod names");
  return { map: value["map"], needed: value["needed"], capacity: value["capacity"], failedClosed: failedClosed as string[] };
}

/**
 * Parses a report ConfigMap, checking every field. Throws
 * {@linkcode NodeReportError} naming the ConfigMap and the field when the
 * name is not a report's or the report is missing or malformed.
 *
 * @example
 * ```ts
 * parseNodeReport({ metadata: { name: "palisade-node-n1", namespace: "palisade-system" }, binaryData: { "report.json.gz": base64 } }).policies;
 * // [{ kind: "EBPFNetworkPolicy", namespace: "x", name: "p", uid: "0f8e2c1a", generation: 2 }]
 * ```
 */
export function parseNodeReport(configMap: V1ConfigMap): NodeReport {
  const ref = `${configMap.metadata?.namespace ?? ""}/${configMap.metadata?.name ?? ""}`;
  const refuse = (problem: string, cause?: unknown): NodeReportError => new NodeReportError(`Cannot read node report "${ref}": ${problem}`, cause === undefined ? undefined : { cause });
  const node = reportedNodeName(configMap.metadata?.name ?? "");
  if (node === undefined) throw refuse(`metadata.name does not start with "${REPORT_NAME_PREFIX}"`);
  const encoded = configMap.binaryData?.[REPORT_KEY];
  if (encoded === undefined) throw refuse(`binaryData["${REPORT_KEY}"] is missing`);
  let value: unknown;
  try {
    value = JSON.parse(gunzipSync(Buffer.from(encoded, "base64")).toString("utf8"));
  } catch (cause) {
    throw refuse(`binaryData["${REPORT_KEY}"] is not gzip-compressed JSON`, cause);
  }
  if (!isRecord(value)) throw refuse(`binaryData["${REPORT_KEY}"] is not a JSON object`);
  const report = value as Partial<Record<keyof NodeReport, unknown>>;
  if (report.node !== node) throw refuse(`node ${JSON.stringify(report.node)} is not "${node}", the node its name says`);
  const policies = checkedPolicies(report.policies, refuse);
  for (const field of ["appliedAt", "podResourceVersion", "namespaceResourceVersion"] as const) {
    if (typeof report[field] !== "string") throw refuse(`${field} is not a string`);
  }
  for (const field of ["endpoints", "pods", "namespaces"] as const) {
    if (!isCount(report[field])) throw refuse(`${field} is not a whole number`);
  }
  const overflow = report.overflow;
  if (overflow !== undefined && !(isRecord(overflow) && isCount(overflow["policies"]))) throw refuse("overflow.policies is not a whole number");
  return {
    node,
    appliedAt: report.appliedAt as string,
    policies,
    endpoints: report.endpoints as number,
    podResourceVersion: report.podResourceVersion as string,
    namespaceResourceVersion: report.namespaceResourceVersion as string,
    pods: report.pods as number,
    namespaces: report.namespaces as number,
    ...(overflow === undefined ? {} : { overflow: { policies: overflow["policies"] as number } }),
    ...(report.mapFull === undefined ? {} : { mapFull: checkedMapFull(report.mapFull, refuse) }),
  };
}
