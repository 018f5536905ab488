/**
 * What the status of an EBPFNetworkPolicy should say, computed from the
 * policy, the pods of its namespace, the Nodes and their agents' reports.
 * Pure: the operator's reconciler feeds it from its caches and writes the
 * result with `patchStatus`.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { ConditionInput } from "../k8s/index.ts";
import type { EBPFNetworkPolicy } from "../policy/api-types.ts";
import { matchesSelector } from "../policy/selector.ts";
import { validatePolicy } from "../policy/validate.ts";
import type { ValidationIssue } from "../policy/validate.ts";
import { findApplied, reportProblem } from "../k8s/node-report.ts";
import type { NodeReport } from "../k8s/node-report.ts";

/** Condition types the operator sets. */
export const ConditionType = {
  /** The policy passed the operator's checks. */
  accepted: "Accepted",
  /** Every node's agent enforces the policy's current generation. */
  programmed: "Programmed",
} as const;

/** Reasons of the conditions the operator sets. */
export const ConditionReason = {
  valid: "Valid",
  invalid: "Invalid",
  /** The policy is valid, but an object it references (TLS material) is missing or malformed. */
  invalidReference: "InvalidReference",
  programmed: "Programmed",
  pending: "Pending",
  notAccepted: "NotAccepted",
  noNodes: "NoNodes",
  /** A node's policy map cannot hold the desired state: pods the policy selects there fail closed. */
  mapFull: "MapFull",
  /** A node's report is too large to list its policies: whether it enforces this one is unknown. */
  reportTooLarge: "ReportTooLarge",
} as const;

/** What one node's agent says about a policy, when it does not enforce the current generation. */
export interface NodeLag {
  node: string;
  /** The generation the node enforces, or `undefined` when it does not list the policy. */
  generation: number | undefined;
  /** Why the node's report could not be used, or what the node could not program, if so. */
  problem?: string;
  /** Set when the node cannot program the policy ({@linkcode ConditionReason.mapFull}) or cannot say whether it does ({@linkcode ConditionReason.reportTooLarge}). */
  reason?: typeof ConditionReason.mapFull | typeof ConditionReason.reportTooLarge;
}

/** The inputs of {@linkcode computePolicyStatus}. */
export interface PolicyStatusInput {
  /** The policy as the API server has it. */
  policy: EBPFNetworkPolicy;
  /** Pods of the policy's namespace. */
  pods: readonly V1Pod[];
  /** Names of every Node of the cluster. */
  nodes: readonly string[];
  /** Agent reports by node name; an `Error` when a node's report is unreadable. */
  reports: ReadonlyMap<string, NodeReport | Error>;
  /** What is wrong with the objects the policy references (TLS material); none when absent. */
  referenceIssues?: readonly ValidationIssue[];
}

/** The status to write: conditions and the other `status` fields. */
export interface PolicyStatusDecision {
  /** `metadata.generation` of the policy the status describes. */
  observedGeneration: number;
  /** Accepted, then Programmed. */
  conditions: ConditionInput[];
  /** `selectedPods`, `programmedNodes`, `totalNodes`, `programmed`, `observedGeneration`. */
  fields: {
    selectedPods: number;
    programmedNodes: number;
    totalNodes: number;
    programmed: string;
    observedGeneration: number;
  };
  /** What the operator's checks found wrong, in the policy or, when it is valid, in what it references (empty when accepted). */
  issues: ValidationIssue[];
  /** Nodes that do not enforce the current generation yet. */
  lagging: NodeLag[];
}

/** At most this many lagging nodes are named in a condition message. */
const MAX_NAMED_NODES = 5;

/**
 * The status an EBPFNetworkPolicy should have.
 *
 * @example
 * ```ts
 * const decision = computePolicyStatus({ policy, pods, nodes: ["n1", "n2"], reports });
 * decision.fields.programmed; // "1/2"
 * decision.conditions[1];     // { type: "Programmed", status: "False", reason: "Pending", message: '1 of 2 nodes enforce generation 3; waiting for "n2" (at generation 2)' }
 * ```
 */
export function computePolicyStatus(input: PolicyStatusInput): PolicyStatusDecision {
  const { policy, pods, nodes, reports } = input;
  const generation = policy.metadata.generation ?? 0;
  const invalid = validatePolicy(policy);
  const issues = invalid.length > 0 ? invalid : [...(input.referenceIssues ?? [])];
  const accepted = issues.length === 0;
  const lagging: NodeLag[] = [];
  for (const node of nodes) {
    const report = reports.get(node);
    if (report instanceof Error) {
      lagging.push({ node, generation: undefined, problem: report.message });
      continue;
    }
    if (report?.overflow !== undefined) {
      lagging.push({ node, generation: undefined, problem: reportProblem(report) as string, reason: ConditionReason.reportTooLarge });
      continue;
    }
    // A same-named entry with another uid is a deleted predecessor: the node does not list this policy yet.
    const entry = report && findApplied(report, { kind: "EBPFNetworkPolicy", namespace: policy.metadata.namespace ?? "", name: policy.metadata.name ?? "", uid: policy.metadata.uid ?? "" });
    const failedClosed = report?.mapFull?.failedClosed;
    if (failedClosed !== undefined && pods.some((pod) => failedClosed.includes(`${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`) && isSelected(policy, pod))) {
      lagging.push({ node, generation: entry?.generation, problem: reportProblem(report as NodeReport) as string, reason: ConditionReason.mapFull });
      continue;
    }
    if (entry?.generation !== generation) {
      lagging.push({ node, generation: entry?.generation, ...(report === undefined ? { problem: "no report" } : {}) });
    }
  }
  const programmedNodes = accepted ? nodes.length - lagging.length : 0;
  const selectedPods = accepted ? pods.filter((pod) => isSelected(policy, pod)).length : 0;
  return {
    observedGeneration: generation,
    conditions: [acceptedCondition(issues, invalid.length > 0 ? ConditionReason.invalid : ConditionReason.invalidReference), programmedCondition(accepted, generation, nodes.length, lagging)],
    fields: {
      selectedPods,
      programmedNodes,
      totalNodes: nodes.length,
      programmed: `${programmedNodes}/${nodes.length}`,
      observedGeneration: generation,
    },
    issues,
    lagging,
  };
}

/**
 * The one-line form of validation issues: each as `field message`, joined by `; `.
 *
 * @example
 * ```ts
 * describeIssues([{ field: "spec.selector.matchLabels", message: 'value "a b" is not a label value' }]);
 * // 'spec.selector.matchLabels value "a b" is not a label value'
 * ```
 */
export function describeIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => (issue.field === "" ? issue.message : `${issue.field} ${issue.message}`)).join("; ");
}

function isSelected(policy: EBPFNetworkPolicy, pod: V1Pod): boolean {
  // The status counts Running pods: those a datapath has an endpoint for.
  return pod.status?.phase === "Running" && matchesSelector(policy.spec.selector, pod.metadata?.labels ?? {});
}

function acceptedCondition(issues: readonly ValidationIssue[], reason: string): ConditionInput {
  if (issues.length === 0) {
    return { type: ConditionType.accepted, status: "True", reason: ConditionReason.valid, message: "The policy passed the operator's checks" };
  }
  return { type: ConditionType.accepted, status: "False", reason, message: describeIssues(issues) };
}

function programmedCondition(accepted: boolean, generation: number, total: number, lagging: readonly NodeLag[]): ConditionInput {
  const type = ConditionType.programmed;
  if (!accepted) {
    return { type, status: "False", reason: ConditionReason.notAccepted, message: "The policy is not accepted, so no node enforces it" };
  }
  if (total === 0) return { type, status: "False", reason: ConditionReason.noNodes, message: "The cluster has no Nodes" };
  if (lagging.length === 0) {
    return { type, status: "True", reason: ConditionReason.programmed, message: `All ${total} nodes enforce generation ${generation}` };
  }
  // A node that cannot program the policy outweighs one that cannot tell, which outweighs one still catching up.
  const rank = (lag: NodeLag): number => (lag.reason === ConditionReason.mapFull ? 0 : lag.reason === ConditionReason.reportTooLarge ? 1 : 2);
  const ordered = [...lagging].sort((a, b) => rank(a) - rank(b));
  const named = ordered.slice(0, MAX_NAMED_NODES).map(describeLag).join(", ");
  const more = lagging.length > MAX_NAMED_NODES ? ` and ${lagging.length - MAX_NAMED_NODES} more` : "";
  const reason = ordered[0]?.reason ?? ConditionReason.pending;
  return {
    type,
    status: reason === ConditionReason.reportTooLarge ? "Unknown" : "False",
    reason,
    message: `${total - lagging.length} of ${total} nodes enforce generation ${generation}; waiting for ${named}${more}`,
  };
}

function describeLag(lag: NodeLag): string {
  const node = JSON.stringify(lag.node);
  if (lag.problem !== undefined) return `${node} (${lag.problem})`;
  return lag.generation === undefined ? `${node} (policy not listed)` : `${node} (at generation ${lag.generation})`;
}
