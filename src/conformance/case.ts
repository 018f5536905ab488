/**
 * What a conformance case is, as data: steps that change the cluster
 * (policies, pod and namespace labels) and, after each, the probes to run
 * and the connectivity they must find.
 *
 * @module
 */
import type { NetworkPolicy } from "../policy/index.ts";
import type { ProbeProtocol } from "../probe/index.ts";
import type { Expectation } from "./reachability.ts";

// A case probes with what the probers send.
export type { ProbeProtocol };

/** One probe of the whole matrix: every ordered pair of model pods on one port and protocol. */
export interface MatrixProbe {
  port: number;
  protocol: ProbeProtocol;
  /** What every pair must find: a ported truth table, or whatever the reference evaluator says of the model and policies at that step. */
  expect: Expectation | "reference-evaluator";
}

/**
 * A change to the cluster before a step's probes.
 * - `apply`: creates the policy, or replaces the one of that namespace and name.
 * - `deleteAllPolicies`: deletes every policy of both kinds in the model's namespaces.
 * - `labelNamespace` / `labelPod`: adds (or overwrites) labels on a namespace or a pod (`ns/name`).
 */
export type StepAction =
  | { apply: NetworkPolicy }
  | { deleteAllPolicies: true }
  | { labelNamespace: string; labels: Record<string, string> }
  | { labelPod: string; labels: Record<string, string> };

/** One step: changes, then probes. */
export interface CaseStep {
  /** What the step checks, in a few words. */
  description: string;
  actions: StepAction[];
  probes: MatrixProbe[];
}

/** A conformance case: named by its upstream title, with the upstream context's protocol. */
export interface ConformanceCase {
  /** The upstream `It(...)` title. */
  title: string;
  /** The upstream context the case belongs to: the TCP, UDP or SCTP suite. */
  context: ProbeProtocol;
  steps: CaseStep[];
}
