/**
 * What the agent's node report says it enforces, kept as commits reach the
 * datapath: the policy generations handed to the compiler count as applied
 * at the first commit that leaves no identity key pending (an address waiting
 * for its identity is not enforced as written yet), and the pod and namespace
 * resourceVersions move only at such a commit that also had every change
 * delivered so far behind it. The report is written only when it changed.
 *
 * Writing it is not part of a commit: the maps hold the commit already. A
 * write the API server refuses for what it says (400, 413, 422: retrying the
 * same report cannot help) is logged once and not retried until the report
 * changes; any other failure throws, for the caller to retry on its own
 * backoff. Both are counted by reason.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { KubeApiError } from "../k8s/errors.ts";
import type { Logger } from "../k8s/logger.ts";
import { compareApplied } from "../k8s/node-report.ts";
import type { AppliedPolicy, MapFull, NodeReport } from "../k8s/node-report.ts";
import type { PolicyKind } from "../policy/compiler.ts";
import { policyObjectKey } from "../policy/normalized-policy.ts";

/**
 * Writes a node's report (the agent's: `writeNodeReport` through the API);
 * resolves to whether its policy list was left out for size.
 */
export type ReportWriter = (report: NodeReport, signal: AbortSignal) => Promise<{ overflow: boolean }>;

/** Why a report write failed: `rejected` by the API server for its content (not retried), or `unavailable` (retried). */
export type ReportFailureReason = "rejected" | "unavailable";

/** HTTP statuses that refuse the report itself: the same report would be refused again. */
const REJECTED_STATUSES = new Set([400, 413, 422]);

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
  /** Set when the desired state did not fit a map and endpoints were failed closed. */
  mapFull?: MapFull | undefined;
}

/**
 * The report of one node, as the agent builds it.
 *
 * @example
 * ```ts
 * const report = new EnforcementReport("node-1", (r, signal) => writeNodeReport(client, r, signal), logger);
 * report.fed({ kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 });
 * report.committed({ endpoints: 3, pendingIdentities: 0, caughtUp }); // lists x/p at generation 2
 * await report.write(signal);
 * ```
 */
export class EnforcementReport {
  readonly #node: string;
  readonly #write: ReportWriter;
  readonly #log: Logger;
  /** Generations handed to the compiler, by `kind/namespace/name`. */
  readonly #fed = new Map<string, AppliedPolicy>();
  #applied: AppliedPolicy[] = [];
  #caughtUp: CaughtUp = { podResourceVersion: "", namespaceResourceVersion: "", pods: 0, namespaces: 0 };
  #endpoints = 0;
  #mapFull: MapFull | undefined;
  /**
   * The SHA-256 digest of the content last written, or refused by the API server (then not tried again): not the
   * content itself, which lists every policy (1.35 MB held for good at 10k policies).
   */
  #lastWritten = "";
  /** Whether the last report written left its policy list out for size. */
  #overflow = false;
  readonly #failures: Record<ReportFailureReason, number> = { rejected: 0, unavailable: 0 };
  /** When the last commit reached the maps: the report's `appliedAt`, not when the report is written. */
  #appliedAt = new Date(0);

  constructor(node: string, write: ReportWriter, logger: Logger) {
    this.#node = node;
    this.#write = write;
    this.#log = logger;
  }

  /** Failed report writes since start, by reason. */
  get failures(): Readonly<Record<ReportFailureReason, number>> {
    return this.#failures;
  }

  /** A policy generation was handed to the compiler; it replaces the policy's earlier one. */
  fed(policy: AppliedPolicy): void {
    this.#fed.set(policyObjectKey(policy.kind, policy.namespace, policy.name), policy);
  }

  /** The generation of a policy last handed to the compiler, if any. */
  fedPolicy(kind: PolicyKind, namespace: string, name: string): AppliedPolicy | undefined {
    return this.#fed.get(policyObjectKey(kind, namespace, name));
  }

  /** A policy was taken out of the compiler. */
  forget(kind: PolicyKind, namespace: string, name: string): void {
    this.#fed.delete(policyObjectKey(kind, namespace, name));
  }

  /** The policy generations the report lists as applied. */
  get applied(): readonly AppliedPolicy[] {
    return this.#applied;
  }

  /** A commit reached the datapath: what the report says follows it. */
  committed(commit: CommitReport): void {
    this.#appliedAt = new Date();
    this.#endpoints = commit.endpoints;
    this.#mapFull = commit.mapFull;
    if (commit.pendingIdentities > 0) return;
    this.#applied = [...this.#fed.values()].sort(compareApplied);
    if (commit.caughtUp !== undefined) this.#caughtUp = commit.caughtUp;
  }

  /**
   * Writes the report if it changed since the last write (or refusal).
   *
   * @throws when the write failed for a reason other than its content (the API server unreachable, overloaded, ...): retry later.
   */
  async write(signal: AbortSignal): Promise<void> {
    const content = { node: this.#node, policies: this.#applied, endpoints: this.#endpoints, ...this.#caughtUp, ...(this.#mapFull === undefined ? {} : { mapFull: this.#mapFull }) };
    const digest = createHash("sha256").update(JSON.stringify(content)).digest("base64");
    if (digest === this.#lastWritten) return;
    let overflow: boolean;
    try {
      ({ overflow } = await this.#write({ ...content, appliedAt: this.#appliedAt.toISOString() }, signal));
    } catch (error) {
      if (!(error instanceof KubeApiError && REJECTED_STATUSES.has(error.code))) {
        this.#failures.unavailable++;
        throw error;
      }
      this.#failures.rejected++;
      this.#lastWritten = digest;
      this.#log.error({ node: this.#node, policies: this.#applied.length, err: error }, `Cannot write the report of node "${this.#node}": the API server refused it (${error.code}); the maps hold the state, and the report is written again when it changes`);
      return;
    }
    this.#lastWritten = digest;
    if (overflow !== this.#overflow) {
      if (overflow) this.#log.warn({ node: this.#node, policies: this.#applied.length }, `The report of node "${this.#node}" is too large to list its ${this.#applied.length} policies: written without the list, so readers cannot confirm them`);
      else this.#log.info({ node: this.#node, policies: this.#applied.length }, `The report of node "${this.#node}" lists its policies again`);
      this.#overflow = overflow;
    }
  }
}
