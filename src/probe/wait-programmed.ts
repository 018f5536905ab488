/**
 * Waiting until what is in the API server now is enforced everywhere (the
 * check behind `palisade wait --for=programmed` and between the conformance
 * runner's steps): every EBPFNetworkPolicy Programmed at its generation, and
 * every node's agent report listing every policy at its generation, no
 * deleted one, and caught up with the pod and namespace changes made before
 * the wait began.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { sleep } from "../k8s/backoff.ts";
import type { KubeClient } from "../k8s/client.ts";
import type { Condition } from "../k8s/conditions.ts";
import { findApplied, NodeReportError, readNodeReport, reportProblem, type AppliedPolicy, type NodeReport } from "../k8s/node-report.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";

/** The timeout was reached; the message names what lags. */
export class WaitTimeoutError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "WaitTimeoutError";
}

interface Policy extends KubernetesObject {
  status?: { conditions?: Condition[] };
}

interface List<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

function atLeast(reported: string, wanted: string): boolean {
  try {
    return BigInt(reported) >= BigInt(wanted);
  } catch {
    return reported === wanted;
  }
}

function key(kind: string, object: KubernetesObject): string {
  return `${kind} "${object.metadata?.namespace}/${object.metadata?.name}"`;
}

/**
 * Where pods or namespaces stood when the wait began: the newest object's
 * resourceVersion, the list's (the store's revision then) and the count.
 */
export interface StartPoint {
  newest: string;
  list: string;
  count: number;
}

/** Where pods and namespaces stood when the wait began. */
export interface WaitStart {
  pods: StartPoint;
  namespaces: StartPoint;
}

/**
 * Whether a node caught up with every change before `start`, from what it
 * reports: the resourceVersion up to which it applied changes and how many
 * objects it knew then. Past the list's resourceVersion, surely. Past the
 * newest object's, every change it may still miss is a deletion (any other
 * change would have made a newer object), so it caught up when it knows as
 * many objects as the list had.
 */
function caughtUp(resourceVersion: string, count: number, start: StartPoint): boolean {
  return atLeast(resourceVersion, start.list) || (atLeast(resourceVersion, start.newest) && count === start.count);
}

/**
 * What keeps the cluster from being programmed, one line each; empty when
 * nothing does. `start` is where pods and namespaces stood when the wait began.
 *
 * @example
 * ```ts
 * const lag = await laggards(client, start); // ['node "n1" enforces NetworkPolicy "x/p" at generation 1, not 2']
 * ```
 */
export async function laggards(client: KubeClient, start: WaitStart): Promise<string[]> {
  const [ebpf, netpols, nodes] = await Promise.all([
    client.request<List<Policy>>("GET", resourcePath(Resources.ebpfNetworkPolicies)),
    client.request<List<KubernetesObject>>("GET", resourcePath(Resources.networkPolicies)),
    client.request<List<KubernetesObject>>("GET", resourcePath(Resources.nodes)),
  ]);
  const lag: string[] = [];
  for (const policy of ebpf.items) {
    const generation = policy.metadata?.generation ?? 0;
    const programmed = policy.status?.conditions?.find((c) => c.type === "Programmed");
    if (programmed?.status !== "True" || programmed.observedGeneration !== generation) {
      const state = programmed === undefined ? "has no Programmed condition" : `is Programmed=${programmed.status} at generation ${programmed.observedGeneration ?? "?"}: ${programmed.message}`;
      lag.push(`${key("EBPFNetworkPolicy", policy)} generation ${generation} ${state}`);
    }
  }
  const wanted = [
    ...ebpf.items.map((p) => ({ kind: "EBPFNetworkPolicy" as const, object: p })),
    ...netpols.items.map((p) => ({ kind: "NetworkPolicy" as const, object: p })),
  ];
  const reports = await Promise.all(nodes.items.map(async (node) => {
    const name = node.metadata?.name ?? "";
    const report = await readNodeReport(client, name).catch((error: unknown) => {
      if (error instanceof NodeReportError) return error;
      throw error;
    });
    return { node: name, report };
  }));
  for (const { node, report } of reports) lag.push(...nodeLag(node, report, wanted, start));
  return lag;
}

/**
 * What keeps `node` from enforcing `wanted` and every pod and namespace
 * change before `start`, one line each; `report` is the node's report, none
 * yet, or why it could not be read.
 *
 * @example
 * ```ts
 * nodeLag("n1", undefined, [], start); // ['node "n1" has no agent report yet']
 * ```
 */
export function nodeLag(node: string, report: NodeReport | NodeReportError | undefined, wanted: { kind: "EBPFNetworkPolicy" | "NetworkPolicy"; object: KubernetesObject }[], start: WaitStart): string[] {
  if (report === undefined) return [`node "${node}" has no agent report yet`];
  if (report instanceof NodeReportError) return [`node "${node}" has no readable agent report: ${report.message}`];
  const problem = reportProblem(report);
  if (report.overflow !== undefined) return [problem as string];
  const lag: string[] = problem === undefined ? [] : [problem];
  const current = new Set<AppliedPolicy>();
  for (const { kind, object } of wanted) {
    const generation = object.metadata?.generation ?? 0;
    // Matched by uid too: a policy deleted and created again under its name restarts at generation 1.
    const applied = findApplied(report, { kind, namespace: object.metadata?.namespace ?? "", name: object.metadata?.name ?? "", uid: object.metadata?.uid ?? "" });
    if (applied !== undefined) current.add(applied);
    if (applied?.generation !== generation) {
      lag.push(`node "${node}" enforces ${key(kind, object)} at ${applied === undefined ? "no generation" : `generation ${applied.generation}`}, not ${generation}`);
    }
  }
  for (const stale of report.policies) {
    if (!current.has(stale)) lag.push(`node "${node}" still enforces deleted ${stale.kind} "${stale.namespace}/${stale.name}"`);
  }
  if (!caughtUp(report.podResourceVersion, report.pods, start.pods)) {
    lag.push(`node "${node}" has applied pods up to resourceVersion ${report.podResourceVersion} (${report.pods} pods), not ${start.pods.newest} (${start.pods.count} pods)`);
  }
  if (!caughtUp(report.namespaceResourceVersion, report.namespaces, start.namespaces)) {
    lag.push(`node "${node}" has applied namespaces up to resourceVersion ${report.namespaceResourceVersion} (${report.namespaces} namespaces), not ${start.namespaces.newest} (${start.namespaces.count} namespaces)`);
  }
  return lag;
}

/**
 * Where `list` stands. The newest object's resourceVersion, not only the
 * list's: the list's is the store's latest revision, which an agent whose
 * watch saw no later change (and no bookmark yet) never reports, so an idle
 * cluster would never count as caught up.
 */
function startPoint(list: List<KubernetesObject>): StartPoint {
  let newest = 0n;
  for (const item of list.items) {
    const rv = item.metadata?.resourceVersion;
    if (rv !== undefined && /^\d+$/.test(rv) && BigInt(rv) > newest) newest = BigInt(rv);
  }
  return { newest: String(newest), list: list.metadata?.resourceVersion ?? String(newest), count: list.items.length };
}

/**
 * Waits until {@linkcode laggards} finds nothing; throws
 * {@linkcode WaitTimeoutError} naming what lags after `timeoutMs`.
 *
 * @example
 * ```ts
 * await waitProgrammed(KubeClient.fromDefault(), 60_000);
 * ```
 */
export async function waitProgrammed(client: KubeClient, timeoutMs: number): Promise<void> {
  const [pods, namespaces] = await Promise.all([
    client.request<List<KubernetesObject>>("GET", resourcePath(Resources.pods)),
    client.request<List<KubernetesObject>>("GET", resourcePath(Resources.namespaces)),
  ]);
  const start: WaitStart = { pods: startPoint(pods), namespaces: startPoint(namespaces) };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lag = await laggards(client, start);
    if (lag.length === 0) return;
    if (Date.now() >= deadline) {
      throw new WaitTimeoutError(`Cannot confirm the cluster is programmed within ${timeoutMs / 1000} s:\n  ${lag.join("\n  ")}`);
    }
    await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
  }
}
