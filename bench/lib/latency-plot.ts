/**
 * The policy-latency benchmark's samples, as its JSON keeps them, and their
 * plot: the distribution (an empirical CDF) of the time from a policy write
 * until every node's maps hold it, its report is seen and its status says
 * Programmed, with the targets of issue 13 item 3 marked.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import type { CommitStage } from "../../src/agent/metrics.ts";

/** Issue 13 item 3: a policy write enforced on every node's maps within these, ms. */
export const LATENCY_TARGETS = { p50: 10, p99: 30 } as const;

/** Where one change's time went, ms, on the node whose maps took it last. */
export type LatencySplit = Record<"delivered" | CommitStage | "back", number>;

/** The split's parts in the order they happen, as the tables name them. */
export const LATENCY_SPLIT: readonly { key: keyof LatencySplit; label: string }[] = [
  { key: "delivered", label: "API write and its watch delivery to the agent" },
  { key: "wait", label: "wait in the agent's queue (batching)" },
  { key: "sync", label: "sync (objects into compiler input)" },
  { key: "compile", label: "compile" },
  { key: "write", label: "map writes" },
  { key: "back", label: "maps to report seen (report write and its watch back)" },
  { key: "report", label: "of which the report write (API)" },
];

/** One change, ms from just before the API write. */
export interface LatencySample {
  /** Until the API server answered the write (its watch event often reaches the agents first). */
  answered: number;
  inMaps: number;
  reportSeen: number;
  statusSeen: number;
  split: LatencySplit;
}

/** What `policy-latency.js --json FILE` writes. */
export interface LatencyJson {
  kind: "policy-latency";
  date: string;
  nodes: number;
  samples: LatencySample[];
}

const SERIES = [
  { key: "inMaps", label: "every node's maps hold it" },
  { key: "reportSeen", label: "every node's report is seen" },
  { key: "statusSeen", label: "the policy's status says Programmed" },
] as const;

/** The Vega-Lite spec of the latency CDF: one step line per series, the targets as marks. */
export function latencyPlotSpec(json: LatencyJson): TopLevelSpec {
  const points = SERIES.flatMap(({ key, label }) => {
    const sorted = json.samples.map((s) => s[key]).sort((a, b) => a - b);
    return sorted.map((ms, i) => ({ series: label, ms: Math.round(ms * 10) / 10, fraction: (i + 1) / sorted.length }));
  });
  const targets = [
    { target: `target p50 ≤ ${LATENCY_TARGETS.p50} ms (maps)`, ms: LATENCY_TARGETS.p50, fraction: 0.5 },
    { target: `target p99 ≤ ${LATENCY_TARGETS.p99} ms (maps)`, ms: LATENCY_TARGETS.p99, fraction: 0.99 },
  ];
  const x = { field: "ms", type: "quantitative" as const, scale: { type: "log" as const }, title: "ms from the API write (log scale)" };
  const y = { field: "fraction", type: "quantitative" as const, title: "fraction of changes", scale: { domain: [0, 1] } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Policy write to enforcement", subtitle: `${json.samples.length} changes of one policy, ${json.nodes}-node dev cluster, ${json.date.slice(0, 10)}`, fontSize: 12, anchor: "start" },
    width: 520,
    height: 260,
    layer: [
      {
        data: { values: points },
        mark: { type: "line", interpolate: "step-after" },
        encoding: { x, y, color: { field: "series", type: "nominal", title: null, scale: { domain: SERIES.map((s) => s.label), range: ["#1f77b4", "#ff7f0e", "#2ca02c"] }, legend: { labelLimit: 320 } } },
      },
      {
        data: { values: targets },
        mark: { type: "point", shape: "cross", size: 120, filled: true },
        encoding: { x, y, color: { field: "target", type: "nominal", title: null, scale: { range: ["#d62728", "#9467bd"] }, legend: { labelLimit: 320 } } },
      },
    ],
    resolve: { scale: { color: "independent" } },
  };
}
