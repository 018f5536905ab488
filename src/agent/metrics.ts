/**
 * The agent's metrics: every `palisade_*` family, rendered from a snapshot
 * of what the agent's compiler holds, what the datapath counts and what the
 * agent measured.
 *
 * @module
 */
import { renderPrometheus, type Histogram } from "../k8s/prometheus.ts";
import { MAP_NAMES } from "../datapath/index.ts";
import type { PolicyCompiler } from "../policy/compiler.ts";
import type { AgentDatapath } from "./agent-datapath.ts";
import type { ReportFailureReason } from "./enforcement-report.ts";
import type { Reconciler } from "./reconciler.ts";

/** Upper bounds of the commit-stage buckets, in seconds: a stage takes from microseconds to seconds. */
export const COMMIT_STAGE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/**
 * Where the time of one commit goes, from the first watch event it carries
 * to its report: `wait` in the queue (batching, other work), `sync` turning
 * objects into compiler input, `compile`, `write` to the maps, `report`
 * written to the API.
 */
export const COMMIT_STAGES = ["wait", "sync", "compile", "write", "report"] as const;

/** One of {@link COMMIT_STAGES}. */
export type CommitStage = (typeof COMMIT_STAGES)[number];

/**
 * The commit stages that run without a pause on the agent's thread, whose CPU time is measured too: a stage's
 * wall time less its CPU time is time the thread was off a core, waiting for one or blocked.
 */
export const CPU_STAGES = ["compile", "write"] as const satisfies readonly CommitStage[];

/** One of {@link CPU_STAGES}. */
export type CpuStage = (typeof CPU_STAGES)[number];

/** A rule's new-flow verdict count, named by what the rule is. */
export interface RuleVerdictSample {
  kind: string;
  /** `namespace/name` of the policy. */
  policy: string;
  /** The rule, e.g. `ingress[0]`. */
  rule: string;
  packets: bigint;
}

/** Everything {@linkcode renderMetrics} writes. */
export interface MetricsSnapshot {
  /** Policy entries the desired state needs (all written, unless `endpointsFailedClosed`). */
  policyEntries: number;
  /** `pal_policy`'s max_entries. */
  policyCapacity: number;
  /** Local endpoints failed closed because their entries do not fit `pal_policy`. */
  endpointsFailedClosed: number;
  /** Failed report writes by reason. */
  reportWriteFailures: Readonly<Record<ReportFailureReason, number>>;
  endpoints: number;
  identities: number;
  /** Identity keys waiting for their PalisadeIdentity object. */
  identitiesPending: number;
  commitStages: Readonly<Record<CommitStage, Histogram>>;
  /** The agent thread's CPU time in the stages of {@link CPU_STAGES}. */
  commitCpu: Readonly<Record<CpuStage, Histogram>>;
  /** Packets per verdict reason. */
  verdicts: Record<string, bigint>;
  rules: RuleVerdictSample[];
  /** Watch events received per kind. */
  k8sEvents: ReadonlyMap<string, number>;
}

/** Where {@linkcode snapshotMetrics} reads the numbers. */
export interface MetricsSources {
  /** The compiler as of the last commit: sizes, pending identity keys, and what each rule id stands for. */
  compiled: Pick<PolicyCompiler, "stateCounts" | "pendingIdentityKeys" | "rule">;
  /** The verdict counters and the policy map's capacity. */
  datapath: Pick<AgentDatapath, "ruleStats" | "reasonStats" | "policyCapacity">;
  /** What did not fit, and the report writes that failed. */
  reconciler: Pick<Reconciler, "mapFull" | "reportWriteFailures">;
  commitStages: Readonly<Record<CommitStage, Histogram>>;
  /** The agent thread's CPU time in the stages of {@link CPU_STAGES}. */
  commitCpu: Readonly<Record<CpuStage, Histogram>>;
  /** Watch events received per kind. */
  k8sEvents: ReadonlyMap<string, number>;
}

/**
 * The numbers /metrics serves, now. Rule counters are named by the policy
 * and rule behind them; counters of rule ids the compiler no longer knows
 * (a rule of a deleted policy) are left out.
 *
 * @example
 * ```ts
 * renderMetrics(snapshotMetrics({ compiled: compiler, datapath, commitStages, commitCpu, k8sEvents }));
 * ```
 */
export function snapshotMetrics(sources: MetricsSources): MetricsSnapshot {
  const { compiled, datapath } = sources;
  const counts = compiled.stateCounts();
  const verdicts: Record<string, bigint> = {};
  for (const [reason, counter] of Object.entries(datapath.reasonStats())) verdicts[reason] = counter.packets;
  const rules: RuleVerdictSample[] = [];
  for (const [id, counter] of datapath.ruleStats()) {
    const rule = compiled.rule(id);
    if (rule === undefined) continue;
    rules.push({ kind: rule.kind, policy: `${rule.namespace}/${rule.name}`, rule: `${rule.direction.toLowerCase()}[${rule.index}]`, packets: counter.packets });
  }
  return {
    policyEntries: counts.policyEntries,
    policyCapacity: datapath.policyCapacity(),
    endpointsFailedClosed: sources.reconciler.mapFull?.failedClosed.length ?? 0,
    reportWriteFailures: { ...sources.reconciler.reportWriteFailures },
    endpoints: counts.endpoints,
    identities: counts.identities,
    identitiesPending: compiled.pendingIdentityKeys().length,
    commitStages: sources.commitStages,
    commitCpu: sources.commitCpu,
    verdicts,
    rules,
    k8sEvents: sources.k8sEvents,
  };
}

/**
 * The snapshot as Prometheus text.
 *
 * @example
 * ```ts
 * renderMetrics(snapshot).split("\n").filter((l) => l.startsWith("palisade_endpoints")); // ["palisade_endpoints 3"]
 * ```
 */
export function renderMetrics(s: MetricsSnapshot): string {
  return renderPrometheus([
    { name: "palisade_policy_entries", type: "gauge", help: "Policy map entries the desired state needs (all written unless endpoints fail closed).", samples: [{ value: s.policyEntries }] },
    { name: "palisade_map_max_entries", type: "gauge", help: "Capacity (max_entries) of a datapath map.", samples: [{ labels: { map: MAP_NAMES.policy }, value: s.policyCapacity }] },
    {
      name: "palisade_map_capacity_exceeded",
      type: "gauge",
      help: "1 while the desired state needs more entries than the map holds (some endpoints fail closed), else 0.",
      samples: [{ labels: { map: MAP_NAMES.policy }, value: s.policyEntries > s.policyCapacity ? 1 : 0 }],
    },
    {
      name: "palisade_endpoints_failed_closed",
      type: "gauge",
      help: "Local endpoints denied in every isolated direction because their policy entries do not fit the map.",
      samples: [{ value: s.endpointsFailedClosed }],
    },
    {
      name: "palisade_report_write_failures_total",
      type: "counter",
      help: "Node report writes that failed: rejected (the API server refused the report, not retried until it changes) or unavailable (retried).",
      samples: Object.entries(s.reportWriteFailures).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    { name: "palisade_endpoints", type: "gauge", help: "Local pods enforced by this agent.", samples: [{ value: s.endpoints }] },
    { name: "palisade_identities", type: "gauge", help: "Security identities in use, reserved ones included.", samples: [{ value: s.identities }] },
    {
      name: "palisade_identities_pending",
      type: "gauge",
      help: "Identity keys this node's ipcache needs that have no PalisadeIdentity yet; their addresses are left out meanwhile.",
      samples: [{ value: s.identitiesPending }],
    },
    {
      name: "palisade_commit_stage_seconds",
      type: "histogram",
      help: "Time of each stage of a commit: wait (queued since its first watch event), sync, compile, write (maps), report.",
      samples: COMMIT_STAGES.flatMap((stage) => s.commitStages[stage].samples().map((sample) => ({ ...sample, labels: { stage, ...sample.labels } }))),
    },
    {
      name: "palisade_commit_stage_cpu_seconds",
      type: "histogram",
      help: "CPU time of the agent's thread in the compile and write stages of a commit; the stage's time less this is time the thread waited for a core or blocked.",
      samples: CPU_STAGES.flatMap((stage) => s.commitCpu[stage].samples().map((sample) => ({ ...sample, labels: { stage, ...sample.labels } }))),
    },
    {
      name: "palisade_verdicts_total",
      type: "counter",
      help: "Packets per datapath verdict reason.",
      samples: Object.entries(s.verdicts).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: "palisade_rule_verdicts_total",
      type: "counter",
      help: "New flows decided per policy rule.",
      samples: s.rules.map((r) => ({ labels: { kind: r.kind, policy: r.policy, rule: r.rule }, value: r.packets })),
    },
    {
      name: "palisade_k8s_events_total",
      type: "counter",
      help: "Watch events received per object kind.",
      samples: [...s.k8sEvents].map(([kind, value]) => ({ labels: { kind }, value })),
    },
  ]);
}
