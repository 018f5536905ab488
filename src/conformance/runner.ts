/**
 * Runs conformance cases on a live cluster: for each case, reset the model,
 * then for each step apply its changes, wait until every node enforces them
 * (the check behind `palisade wait --for=programmed`), probe the full
 * matrix with real packets for each of the step's probes and families, all
 * pairs at once, and compare with the expectation. No probe is retried: a
 * denied pair concludes after the timeout, and a verdict is final.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { waitProgrammed, type ProberPool } from "../probe/index.ts";
import type { ConformanceCase, MatrixProbe, ProbeProtocol } from "./case.ts";
import { CaseState } from "./case-state.ts";
import type { ClusterModel } from "./cluster-model.ts";
import { MODEL_PODS, type Family } from "./model.ts";
import { referenceVerdicts } from "./reference-matrix.ts";
import { expectedVerdicts } from "./reachability.ts";
import { pairKey, type Verdicts } from "./truth-table.ts";
import type { ApiMode } from "./to-ebpfnp.ts";

/** How a run probes and which API it writes. */
export interface RunOptions {
  api: ApiMode;
  families: Family[];
  /** How long a probe waits for an answer before it counts as denied. */
  timeoutMs: number;
  /** Protocols the probers can send; cases needing another are skipped with a reason. */
  protocols: ReadonlySet<ProbeProtocol>;
  /** How long to wait for the cluster to enforce a step. */
  programmedTimeoutMs: number;
}

/** A pair whose measured verdict differs from the expected one. */
export interface PairDifference {
  from: string;
  to: string;
  expected: boolean;
  observed: boolean;
  /** How the probe ended: connected, refused or timeout. */
  reason: string;
}

/** One probe of one step that found something else than expected. */
export interface ProbeFailure {
  step: number;
  description: string;
  family: Family;
  protocol: ProbeProtocol;
  port: number;
  expected: Verdicts;
  observed: Verdicts;
  differences: PairDifference[];
}

/** A case's outcome. */
export interface CaseResult {
  name: string;
  status: "passed" | "failed" | "skipped";
  /** Why it was skipped, or the error that ended it. */
  reason?: string;
  failures: ProbeFailure[];
  /** Probes sent (pairs × probes × families). */
  probes: number;
  seconds: number;
}

/** What a case needs from the cluster: the model, a client and the probers. */
export interface RunContext {
  client: KubeClient;
  model: ClusterModel;
  pool: ProberPool;
}

function skipReason(testCase: ConformanceCase, options: RunOptions): string | undefined {
  const missing = [...new Set(testCase.steps.flatMap((step) => step.probes.map((probe) => probe.protocol)))].filter((p) => !options.protocols.has(p));
  if (missing.length === 0) return undefined;
  return `the probers cannot send ${missing.join(", ")}: this build has no ${missing.join("/")} prober (native/out/palisade-sctp; run npm run build)`;
}

async function measure(context: RunContext, family: Family, probe: MatrixProbe, timeoutMs: number): Promise<Map<string, { allowed: boolean; reason: string }>> {
  const entries = await Promise.all(MODEL_PODS.flatMap((from) => MODEL_PODS.filter((to) => to !== from).map(async (to) => {
    const host = context.model.addresses.get(to)?.find((ip) => ip.includes(":") === (family === "ipv6"));
    const netns = context.model.netns.get(from);
    if (host === undefined || netns === undefined) throw new Error(`Cannot probe ${from} -> ${to}: no ${family} address or network namespace`);
    const reason = await context.pool.probe(netns, { protocol: probe.protocol, host, port: probe.port, timeoutMs });
    return [pairKey(from, to), { allowed: reason === "connected", reason }] as const;
  })));
  return new Map(entries);
}

/**
 * Runs one case: `caseIndex` is its place in the run (for `--api both`'s
 * alternation). Never throws for the case's own trouble: an error ends the
 * case as failed with the error as reason.
 */
export async function runCase(context: RunContext, testCase: ConformanceCase, caseIndex: number, name: string, options: RunOptions): Promise<CaseResult> {
  const started = Date.now();
  const seconds = (): number => (Date.now() - started) / 1000;
  const skip = skipReason(testCase, options);
  if (skip !== undefined) return { name, status: "skipped", reason: skip, failures: [], probes: 0, seconds: 0 };
  const failures: ProbeFailure[] = [];
  let probes = 0;
  try {
    await context.model.reset();
    const state = new CaseState(context.model.addresses, options.families, options.api, caseIndex);
    for (const [index, step] of testCase.steps.entries()) {
      for (const action of step.actions) {
        const policy = state.record(action);
        if (policy !== undefined) await context.model.apply(policy);
        else if ("deleteAllPolicies" in action) await context.model.deleteAllPolicies();
        else if ("labelNamespace" in action) await context.model.labelNamespace(action.labelNamespace, action.labels);
        else if ("labelPod" in action) await context.model.labelPod(action.labelPod, action.labels);
      }
      await waitProgrammed(context.client, options.programmedTimeoutMs);
      const jobs = options.families.flatMap((family) => step.probes.map(async (probe) => {
        const expected = probe.expect === "reference-evaluator" ? referenceVerdicts(state.world(), MODEL_PODS, family, probe.port, probe.protocol) : expectedVerdicts(probe.expect, MODEL_PODS);
        const measured = await measure(context, family, probe, options.timeoutMs);
        probes += measured.size;
        const observed: Verdicts = new Map([...measured].map(([key, value]) => [key, value.allowed]));
        const differences: PairDifference[] = [];
        for (const [key, want] of expected) {
          const got = measured.get(key);
          if (got === undefined || got.allowed === want) continue;
          const [from = "", to = ""] = key.split(" ");
          differences.push({ from, to, expected: want, observed: got.allowed, reason: got.reason });
        }
        if (differences.length > 0) failures.push({ step: index + 1, description: step.description, family, protocol: probe.protocol, port: probe.port, expected, observed, differences });
      }));
      await Promise.all(jobs);
    }
  } catch (error) {
    return { name, status: "failed", reason: (error as Error).message, failures, probes, seconds: seconds() };
  }
  return { name, status: failures.length === 0 ? "passed" : "failed", failures, probes, seconds: seconds() };
}
