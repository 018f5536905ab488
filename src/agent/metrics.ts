/**
 * The agent's metrics in the Prometheus text exposition format (0.0.4):
 * a histogram of apply durations, and a renderer that writes every
 * `palisade_*` family from a snapshot of what the agent and the datapath
 * report.
 *
 * @module
 */

/** Upper bounds of the apply-duration buckets, in seconds: a map write batch takes from sub-millisecond to seconds. */
export const APPLY_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/**
 * A cumulative histogram of observations, as Prometheus defines one.
 *
 * @example
 * ```ts
 * const h = new Histogram([0.1, 1]);
 * h.observe(0.05);
 * h.count; // 1
 * ```
 */
export class Histogram {
  /** Bucket upper bounds, ascending (the `+Inf` bucket is implicit). */
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** An empty histogram with the given ascending bucket bounds. */
  constructor(bounds: readonly number[] = APPLY_DURATION_BUCKETS) {
    this.bounds = [...bounds];
    this.#counts = bounds.map(() => 0);
  }

  /** Records one value. */
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    this.bounds.forEach((bound, i) => {
      if (value <= bound) this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    });
  }

  /** Number of observations. */
  get count(): number {
    return this.#count;
  }

  /** Sum of observations. */
  get sum(): number {
    return this.#sum;
  }

  /** Cumulative counts per bound (observations ≤ bound), in bound order. */
  cumulativeCounts(): number[] {
    return [...this.#counts];
  }
}

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
  policyEntries: number;
  endpoints: number;
  identities: number;
  applyDuration: Histogram;
  /** Packets per verdict reason. */
  verdicts: Record<string, bigint>;
  rules: RuleVerdictSample[];
  /** Watch events received per kind. */
  k8sEvents: ReadonlyMap<string, number>;
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
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  family("palisade_policy_entries", "gauge", "Policy map entries the agent has written.");
  out.push(`palisade_policy_entries ${s.policyEntries}`);
  family("palisade_endpoints", "gauge", "Local pods enforced by this agent.");
  out.push(`palisade_endpoints ${s.endpoints}`);
  family("palisade_identities", "gauge", "Security identities in use, reserved ones included.");
  out.push(`palisade_identities ${s.identities}`);

  family("palisade_apply_duration_seconds", "histogram", "Time to compile and write one batch of changes to the datapath.");
  const counts = s.applyDuration.cumulativeCounts();
  s.applyDuration.bounds.forEach((bound, i) => out.push(`palisade_apply_duration_seconds_bucket{le="${bound}"} ${counts[i] ?? 0}`));
  out.push(`palisade_apply_duration_seconds_bucket{le="+Inf"} ${s.applyDuration.count}`);
  out.push(`palisade_apply_duration_seconds_sum ${s.applyDuration.sum}`);
  out.push(`palisade_apply_duration_seconds_count ${s.applyDuration.count}`);

  family("palisade_verdicts_total", "counter", "Packets per datapath verdict reason.");
  for (const [reason, packets] of Object.entries(s.verdicts)) out.push(`palisade_verdicts_total${labels({ reason })} ${packets}`);
  family("palisade_rule_verdicts_total", "counter", "New flows decided per policy rule.");
  for (const r of s.rules) out.push(`palisade_rule_verdicts_total${labels({ kind: r.kind, policy: r.policy, rule: r.rule })} ${r.packets}`);
  family("palisade_k8s_events_total", "counter", "Watch events received per object kind.");
  for (const [kind, count] of s.k8sEvents) out.push(`palisade_k8s_events_total${labels({ kind })} ${count}`);
  return `${out.join("\n")}\n`;
}

function labels(values: Record<string, string>): string {
  const pairs = Object.entries(values).map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"')}"`);
  return `{${pairs.join(",")}}`;
}
