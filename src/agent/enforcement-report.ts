/**
 * What the agent's node report says it enforces, kept as commits reach the
 * datapath: the policy generations handed to the compiler count as applied
 * at the first commit that leaves no identity key pending (an address waiting
 * for its identity is not enforced as written yet), and the pod and namespace
 * resourceVersions move only at such a commit that also had every change
 * delivered so far behind it. The report is written only when it changed.
 *
 * @module
 */
import type { AppliedPolicy, NodeReport } from "../k8s/node-report.ts";
import type { PolicyKind } from "../policy/compiler.ts";

/**
 * Writes a node's report (the agent's: `writeNodeReport` through the API).
 * A failure throws; the commit is then retried, and the report with it.
 */
export type ReportWriter = (report: NodeReport, signal: AbortSignal) => Promise<void>;

/** Up to which resourceVersion of pods and of namespaces every change is applied, and how many objects there were then. */
export interface CaughtUp {
  podResourceVersion: string;
  namespaceResourceVersion: string;
  pods: number;
  namespaces: number;
}

/** What a commit tells the report. */
export interface CommitReport {
  /** Local pods with endpoint state. */
  endpoints: number;
  /** Identity keys still waiting for a number. */
  pendingIdentities: number;
  /** Where the watch stood if every change it delivered was processed before this commit; `undefined` if some were not. */
  caughtUp: CaughtUp | undefined;
}

function compareApplied(a: AppliedPolicy, b: AppliedPolicy): number {
  return a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
}

/**
 * The report of one node, as the agent builds it.
 *
 * @example
 * ```ts
 * const report = new EnforcementReport("node-1", (r, signal) => writeNodeReport(client, r, signal));
 * report.fed({ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 });
 * report.committed({ endpoints: 3, pendingIdentities: 0, caughtUp }); // lists x/p at generation 2
 * await report.write(signal);
 * ```
 */
export class EnforcementReport {
  readonly #node: string;
  readonly #write: ReportWriter;
  /** Generations handed to the compiler, by `kind/namespace/name`. */
  readonly #fed = new Map<string, AppliedPolicy>();
  #applied: AppliedPolicy[] = [];
  #caughtUp: CaughtUp = { podResourceVersion: "", namespaceResourceVersion: "", pods: 0, namespaces: 0 };
  #endpoints = 0;
  #lastWritten = "";
  /** When the last commit reached the maps: the report's `appliedAt`, not when the report is written. */
  #appliedAt = new Date(0);

  constructor(node: string, write: ReportWriter) {
    this.#node = node;
    this.#write = write;
  }

  /** A policy generation was handed to the compiler; it replaces the policy's earlier one. */
  fed(policy: AppliedPolicy): void {
    this.#fed.set(`${policy.kind}/${policy.namespace}/${policy.name}`, policy);
  }

  /** The generation of a policy last handed to the compiler, if any. */
  fedPolicy(kind: PolicyKind, namespace: string, name: string): AppliedPolicy | undefined {
    return this.#fed.get(`${kind}/${namespace}/${name}`);
  }

  /** A policy was taken out of the compiler. */
  forget(kind: PolicyKind, namespace: string, name: string): void {
    this.#fed.delete(`${kind}/${namespace}/${name}`);
  }

  /** The policy generations the report lists as applied. */
  get applied(): readonly AppliedPolicy[] {
    return this.#applied;
  }

  /** A commit reached the datapath: what the report says follows it. */
  committed(commit: CommitReport): void {
    this.#appliedAt = new Date();
    this.#endpoints = commit.endpoints;
    if (commit.pendingIdentities > 0) return;
    this.#applied = [...this.#fed.values()].sort(compareApplied);
    if (commit.caughtUp !== undefined) this.#caughtUp = commit.caughtUp;
  }

  /** Writes the report if it changed since the last write. */
  async write(signal: AbortSignal): Promise<void> {
    const content = { node: this.#node, policies: this.#applied, endpoints: this.#endpoints, ...this.#caughtUp };
    const text = JSON.stringify(content);
    if (text === this.#lastWritten) return;
    await this.#write({ ...content, appliedAt: this.#appliedAt.toISOString() }, signal);
    this.#lastWritten = text;
  }
}
