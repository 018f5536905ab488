/**
 * `npm run bench:scale`: one real agent and the real operator under a large
 * cluster's objects. A 1-node dev cluster in a temporary folder, then the
 * scale world (`bench/lib/scale-world.ts`: at full size 10k pods over 100
 * Nodes, 100 of them real pods on the dev node, 1k namespaces, 10k policies
 * of both APIs, 100k CIDRs) written through the API; then, measured:
 *
 * - load: the writes, and until the agent's report lists every policy at
 *   its generation and the newest pod;
 * - cold start to caught up: the agent stopped and started again (`dev up`),
 *   from its process's start until a report of the new process lists every
 *   policy and the newest pod (`appliedAt`: when its maps took it);
 * - agent and operator RSS (/proc VmRSS: after the load, after the cold
 *   starts, and again 30 s later, idle), map entries and identities (agent
 *   /metrics);
 * - single changes under that load (pod added, pod relabelled, namespace
 *   relabelled, policy added, changed, deleted): from the API write until
 *   the agent's maps hold it (`appliedAt`) and until its report is seen, and
 *   the node-local part (the agent's commit stages wait + sync + compile +
 *   write, from the first watch event of the commit to the maps), and the
 *   CPU time the agent's thread spent in compile and write (what is left of
 *   those two stages' time is time the thread waited for a core);
 * - API requests per change: the API server's own `apiserver_request_total`
 *   across a change, writes by resource, the benchmark's own write taken off.
 *
 * Prints Markdown tables next to issue 13's targets; never passes or fails
 * on a number. Run as root after a build: `node dist/bench/scale.js
 * [--factor 1] [--changes 30] [--restarts 3] [--concurrency 16] [--seed 13]
 * [--catch-up-timeout 900]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { V1Pod } from "@kubernetes/client-node";
import { COMMIT_STAGES, CPU_STAGES } from "../src/agent/metrics.ts";
import { agentMetricsUrl, DEV_UP_STEPS, devNetwork, devNodeSpec, devUp, ensureBinaries, readClusterState, runningPid } from "../src/devcluster/index.ts";
import type { DevLayout } from "../src/devcluster/index.ts";
import { PatchType, resourcePath, Resources } from "../src/k8s/index.ts";
import type { KubeClient, NodeReport } from "../src/k8s/index.ts";
import { onDevCluster, scrapeMetrics } from "./lib/dev-cluster.ts";
import { memoryOf, startedAt } from "./lib/process-memory.ts";
import { listsEvery, ReportWatch } from "./lib/report-watch.ts";
import { loadScaleWorld } from "./lib/scale-loader.ts";
import { FULL_SCALE, scaleSize, scaleWorld } from "./lib/scale-world.ts";
import type { ScaleWorld } from "./lib/scale-world.ts";
import { formatTable, median, quantile, shortCount } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    factor: { type: "string", default: "1" },
    changes: { type: "string", default: "30" },
    restarts: { type: "string", default: "3" },
    concurrency: { type: "string", default: "16" },
    seed: { type: "string", default: "13" },
    "catch-up-timeout": { type: "string", default: "900" },
  },
});
/** Seconds to wait for the agent to catch up before giving up, e.g. when its report cannot be written. */
const CATCH_UP_TIMEOUT_S = Number(values["catch-up-timeout"]);
const FACTOR = Number(values.factor);
const CHANGES = Number(values.changes);
const RESTARTS = Number(values.restarts);
const SIZE = FACTOR === 1 ? FULL_SCALE : scaleSize(FACTOR);
/** How long the processes are left idle after the last cold start before their memory is read again. */
const SETTLE_MS = 30_000;
/** How many changes of each kind also count API requests (each count reads the API server's /metrics twice). */
const COUNTED_CHANGES = 10;
const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

type ChangeKind = "pod added" | "pod relabelled" | "namespace relabelled" | "policy added" | "policy changed" | "policy deleted";
const KINDS: ChangeKind[] = ["pod added", "pod relabelled", "namespace relabelled", "policy added", "policy changed", "policy deleted"];

interface ChangeSample {
  toMaps: number;
  toReport: number;
  nodeLocal: number;
  /** The node-local time by commit stage (wait, sync, compile, write), ms. */
  stages: Record<string, number>;
  /** The agent thread's CPU time in the compile and write stages, ms. */
  cpu: number;
  /** API writes by resource during the change, the benchmark's own included. */
  writes?: Map<string, number>;
  ownWrites?: number;
}

/** Writes (POST, PUT, PATCH, DELETE) the API server counted, by resource/subresource; Lease renewals (heartbeats of every component) left out. */
function apiWrites(kubectl: string, kubeconfig: string): Map<string, number> {
  const run = spawnSync(kubectl, ["get", "--raw", "/metrics"], { env: { ...process.env, KUBECONFIG: kubeconfig }, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  const writes = new Map<string, number>();
  for (const line of run.stdout.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const label = (name: string) => line.match(new RegExp(`[{,]${name}="([^"]*)"`))?.[1] ?? "";
    if (!["POST", "PUT", "PATCH", "DELETE", "APPLY"].includes(label("verb")) || label("resource") === "leases") continue;
    const key = label("subresource") === "" ? label("resource") : `${label("resource")}/${label("subresource")}`;
    writes.set(key, (writes.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return writes;
}

function difference(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  return new Map([...after].map(([key, n]): [string, number] => [key, n - (before.get(key) ?? 0)]).filter(([, n]) => n > 0));
}

/** `promise`, or an error naming `what` once CATCH_UP_TIMEOUT_S have passed. */
function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Cannot measure the scale world: ${what} not within ${CATCH_UP_TIMEOUT_S} s (see the agent's log)`)), CATCH_UP_TIMEOUT_S * 1000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function newestPodVersion(client: KubeClient): Promise<number> {
  const pods = await client.request<{ items: V1Pod[] }>("GET", resourcePath(Resources.pods));
  return Math.max(...pods.items.map((p) => Number(p.metadata?.resourceVersion)));
}

async function main({ layout, client }: { layout: DevLayout; client: KubeClient }): Promise<void> {
  const slot = readClusterState(layout)?.networkSlot;
  if (slot === undefined) throw new Error(`Cannot run the scale benchmark: the dev cluster in ${layout.dir} recorded no network slot`);
  const devNode = devNodeSpec(devNetwork(slot), 1);
  const node = devNode.name;
  const metricsUrl = `${agentMetricsUrl(devNode)}/metrics`;
  const agentPidFile = join(layout.run, readdirSync(layout.run).find((f) => f.startsWith("agent-") && f.endsWith(".pid")) ?? "agent.pid");
  const operatorPidFile = join(layout.run, "operator.pid");
  const { kubectl } = await ensureBinaries();
  const reports = await ReportWatch.start(client);

  const world = scaleWorld(SIZE, { seed: Number(values.seed), realNode: node });
  say(`world: ${JSON.stringify(SIZE)}`);
  const loadStarted = performance.now();
  const loaded = await loadScaleWorld(client, world, { concurrency: Number(values.concurrency), progress: say });
  const written = performance.now();
  const caughtUp = (rv: number, after = 0) => (r: NodeReport) => Date.parse(r.appliedAt) >= after && Number(r.podResourceVersion) >= rv && listsEvery(r, loaded);
  await within("the agent's report of the loaded world", reports.until(node, caughtUp(await newestPodVersion(client))));
  const loadFigures = { writes: (written - loadStarted) / 1000, caughtUp: (performance.now() - loadStarted) / 1000 };
  say(`loaded in ${loadFigures.writes.toFixed(0)} s, agent caught up after ${loadFigures.caughtUp.toFixed(0)} s`);
  const afterLoad = { agent: memoryOf(agentPidFile), operator: memoryOf(operatorPidFile) };

  const coldStarts: { toMaps: number; toReport: number }[] = [];
  for (let run = 1; run <= RESTARTS; run++) {
    const old = runningPid(agentPidFile, process.execPath);
    if (old !== undefined) process.kill(old, "SIGTERM");
    while (old !== undefined && runningPid(agentPidFile, process.execPath) === old) await new Promise((resolve) => setTimeout(resolve, 50));
    await devUp(layout, { nodes: undefined }, () => {}, DEV_UP_STEPS);
    const pid = runningPid(agentPidFile, process.execPath);
    if (pid === undefined) throw new Error("Cannot time the agent's cold start: dev up did not start it");
    const start = startedAt(pid);
    const { report, seenAt } = await within("the restarted agent's report", reports.until(node, caughtUp(await newestPodVersion(client), start)));
    coldStarts.push({ toMaps: (Date.parse(report.appliedAt) - start) / 1000, toReport: (performance.timeOrigin + seenAt - start) / 1000 });
    say(`cold start ${run}: maps after ${coldStarts.at(-1)?.toMaps.toFixed(1)} s`);
  }
  const steady = { agent: memoryOf(agentPidFile), operator: memoryOf(operatorPidFile) };
  // Caught up is right after the full sync's garbage: the same processes half a minute later, idle, hold what they keep.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const settled = { agent: memoryOf(agentPidFile), operator: memoryOf(operatorPidFile) };
  const metrics = await scrapeMetrics(metricsUrl);

  const samples = new Map<ChangeKind, ChangeSample[]>(KINDS.map((k) => [k, []]));
  const nodeLocalStages = COMMIT_STAGES.filter((s) => s !== "report");
  const stageSums = async () => {
    const m = await scrapeMetrics(metricsUrl);
    const cpu = CPU_STAGES.reduce((sum, stage) => sum + 1000 * (m.get(`palisade_commit_stage_cpu_seconds_sum{stage="${stage}"}`) ?? NaN), 0);
    const commits = m.get(`palisade_commit_stage_seconds_count{stage="compile"}`) ?? NaN;
    return { cpu, commits, stages: new Map(nodeLocalStages.map((stage) => [stage, 1000 * (m.get(`palisade_commit_stage_seconds_sum{stage="${stage}"}`) ?? NaN)])) };
  };
  /** Times one change: `write` makes it and returns what the report must show for it. */
  const timeChange = async (kind: ChangeKind, index: number, ownWrites: number, write: () => Promise<(r: NodeReport) => boolean>) => {
    const counted = index < COUNTED_CHANGES;
    const writesBefore = counted ? apiWrites(kubectl, layout.adminKubeconfig) : undefined;
    const stagesBefore = await stageSums();
    const startedWall = performance.timeOrigin + performance.now();
    const started = performance.now();
    const shows = await write();
    const { report, seenAt } = await within(`the agent's report of a change (${kind})`, reports.until(node, shows));
    const stagesAfter = await stageSums();
    const stages = Object.fromEntries(nodeLocalStages.map((stage) => [stage, (stagesAfter.stages.get(stage) ?? NaN) - (stagesBefore.stages.get(stage) ?? NaN)]));
    const nodeLocal = Object.values(stages).reduce((sum, ms) => sum + ms, 0);
    const sample: ChangeSample = { toMaps: Date.parse(report.appliedAt) - startedWall, toReport: seenAt - started, nodeLocal, stages, cpu: stagesAfter.cpu - stagesBefore.cpu };
    if (writesBefore) {
      sample.writes = difference(apiWrites(kubectl, layout.adminKubeconfig), writesBefore);
      sample.ownWrites = ownWrites;
    }
    samples.get(kind)?.push(sample);
    // Each sample, so a p99 can be traced to its round (the first after the agent's start, or a later one).
    const commits = stagesAfter.commits - stagesBefore.commits;
    say(`changes: ${kind} ${index + 1}: node-local ${nodeLocal.toFixed(1)} ms (compile ${stages["compile"]?.toFixed(1)}) in ${commits} commits, CPU ${sample.cpu.toFixed(1)} ms`);
  };
  await runChanges(client, world, timeChange);
  await reports.stop();

  // Output.
  const ms = (v: number) => v.toFixed(1);
  const rows = KINDS.map((kind) => {
    const s = samples.get(kind) ?? [];
    const q = (pick: (c: ChangeSample) => number, p: number) => ms(quantile(s.map(pick), p));
    const writes = s.filter((c) => c.writes).map((c) => [...(c.writes ?? new Map<string, number>()).values()].reduce((a, b) => a + b, -(c.ownWrites ?? 0)));
    return [kind, String(s.length), q((c) => c.toMaps, 0.5), q((c) => c.toMaps, 0.99), q((c) => c.toReport, 0.5), q((c) => c.toReport, 0.99), q((c) => c.nodeLocal, 0.5), q((c) => c.nodeLocal, 0.99), writes.length ? median(writes).toFixed(1) : ""];
  });
  // The node-local time split by stage, so a p99 shows which part of the agent it came from.
  const byStage = KINDS.map((kind) => {
    const s = samples.get(kind) ?? [];
    return [
      kind,
      ...nodeLocalStages.flatMap((stage) => [ms(median(s.map((c) => c.stages[stage] ?? NaN))), ms(Math.max(...s.map((c) => c.stages[stage] ?? NaN)))]),
      ms(median(s.map((c) => c.cpu))),
      ms(Math.max(...s.map((c) => c.cpu))),
    ];
  });
  const byResource = KINDS.map((kind) => {
    const counted = (samples.get(kind) ?? []).filter((c) => c.writes);
    const keys = new Set(counted.flatMap((c) => [...(c.writes ?? new Map<string, number>()).keys()]));
    return `| ${kind} | ${[...keys].sort().map((key) => `${key} ${median(counted.map((c) => c.writes?.get(key) ?? 0))}`).join(", ")} |`;
  });
  const cold = (pick: (c: { toMaps: number; toReport: number }) => number) => median(coldStarts.map(pick)).toFixed(1);
  const mb = (v: number) => v.toFixed(0);
  process.stdout.write(
    [
      `## Scale: ${shortCount(SIZE.fakePods + SIZE.realPods)} pods (${SIZE.realPods} real) over ${SIZE.fakeNodes + 1} Nodes, ${shortCount(SIZE.namespaces)} namespaces, ${shortCount(SIZE.policies)} policies, ${shortCount(SIZE.cidrs)} CIDRs (factor ${FACTOR})`,
      "",
      `Load: ${loadFigures.writes.toFixed(0)} s of API writes (concurrency ${values.concurrency}), agent caught up ${loadFigures.caughtUp.toFixed(0)} s after the first write.`,
      "",
      formatTable(
        ["figure", "measured", "target"],
        [
          [`cold start to caught up, maps (median of ${coldStarts.length})`, `${cold((c) => c.toMaps)} s`, "≤ 10 s"],
          [`cold start to caught up, report seen`, `${cold((c) => c.toReport)} s`, ""],
          ["agent RSS after cold start (peak)", `${mb(steady.agent.rss)} MB (${mb(steady.agent.peak)})`, "≤ 150 MB"],
          ["agent RSS after the load (peak)", `${mb(afterLoad.agent.rss)} MB (${mb(afterLoad.agent.peak)})`, "≤ 150 MB"],
          [`agent RSS ${SETTLE_MS / 1000} s after the last cold start`, `${mb(settled.agent.rss)} MB`, "≤ 150 MB"],
          ["operator RSS after cold start (after the load)", `${mb(steady.operator.rss)} MB (${mb(afterLoad.operator.rss)})`, ""],
          [`operator RSS ${SETTLE_MS / 1000} s after the agent's last cold start`, `${mb(settled.operator.rss)} MB`, ""],
          ["policy map entries", shortCount(metrics.get("palisade_policy_entries") ?? NaN), ""],
          ["identities (agent)", shortCount(metrics.get("palisade_identities") ?? NaN), ""],
          ["endpoints", String(metrics.get("palisade_endpoints")), ""],
        ],
      ),
      "",
      `Single changes (ms; target: enforced node-locally ≤ 20 ms p99; API writes by the cluster: median of the first ${COUNTED_CHANGES}, the benchmark's own write taken off):`,
      "",
      formatTable(["change", "n", "to maps p50", "to maps p99", "to report p50", "to report p99", "node-local p50", "node-local p99", "API writes"], rows),
      "",
      "Node-local time by commit stage, and the CPU time of the agent's thread in compile + write (ms, median / largest of the samples):",
      "",
      formatTable(["change", ...nodeLocalStages.flatMap((stage) => [`${stage} p50`, `${stage} max`]), "CPU p50", "CPU max"], byStage),
      "",
      "| change | API writes by resource, the benchmark's own included (median per change) |",
      "|---|---|",
      ...byResource,
      "",
    ].join("\n"),
  );
}

/**
 * Makes CHANGES changes of each kind, one at a time, in the first namespace
 * (whose pods include real ones on the dev node), leaving the world as it was.
 */
async function runChanges(
  client: KubeClient,
  world: ScaleWorld,
  timeChange: (kind: ChangeKind, index: number, ownWrites: number, write: () => Promise<(r: NodeReport) => boolean>) => Promise<void>,
): Promise<void> {
  const namespace = world.namespaces[0]?.metadata.name ?? "";
  const env = world.namespaces[0]?.metadata.labels?.["env"] ?? "";
  const fakeNode = world.nodes[0];
  const relabelled = world.pods.find((p) => !p.real && p.object.metadata.namespace === namespace);
  if (fakeNode === undefined || relabelled === undefined) throw new Error("Cannot make single changes: the world has no fake node or no fake pod in its first namespace");
  const pods = resourcePath(Resources.pods, { namespace });
  const policies = resourcePath(Resources.networkPolicies, { namespace });
  const podRv = (obj: { metadata: { resourceVersion: string } }) => (r: NodeReport) => Number(r.podResourceVersion) >= Number(obj.metadata.resourceVersion);
  const merge = { contentType: PatchType.merge };
  type Written = { metadata: { resourceVersion: string; generation: number } };
  const policy = (name: string, port: number) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace },
    spec: { podSelector: { matchLabels: { app: "app-0" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "app-1" } } }], ports: [{ protocol: "TCP", port }] }] },
  });
  const listed = (name: string, generation: number | undefined) => (r: NodeReport) => {
    const entry = r.policies.find((p) => p.kind === "NetworkPolicy" && p.namespace === namespace && p.name === name);
    return generation === undefined ? entry === undefined : entry?.generation === generation;
  };

  for (let i = 0; i < CHANGES; i++) {
    say(`changes: round ${i + 1} of ${CHANGES}`);
    const name = `churn-${i}`;
    // A pod on a fake node gets its address: what the agent acts on (an ipcache entry).
    await client.request("POST", pods, { body: { apiVersion: "v1", kind: "Pod", metadata: { name, namespace, labels: { app: "app-1", tier: "backend", version: "v1" } }, spec: { nodeName: fakeNode.object.metadata.name, automountServiceAccountToken: false, containers: [{ name: "main", image: "none" }] } } });
    await timeChange("pod added", i, 1, async () => {
      const ip = `198.19.${200 + (i >> 8)}.${i & 255}`;
      const status = { phase: "Running", hostIP: fakeNode.internalIP, podIP: ip, podIPs: [{ ip }] };
      return podRv(await client.request<Written>("PATCH", `${pods}/${name}/status`, { body: { status }, ...merge }));
    });
    await timeChange("pod relabelled", i, 1, async () =>
      podRv(await client.request<Written>("PATCH", `${pods}/${relabelled.object.metadata.name}`, { body: { metadata: { labels: { version: i % 2 === 0 ? "v2" : "v1" } } }, ...merge })),
    );
    await timeChange("namespace relabelled", i, 1, async () => {
      const ns = await client.request<Written>("PATCH", resourcePath(Resources.namespaces, { name: namespace }), { body: { metadata: { labels: { env: i % 2 === 0 ? "dev" : env } } }, ...merge });
      return (r) => Number(r.namespaceResourceVersion) >= Number(ns.metadata.resourceVersion);
    });
    await timeChange("policy added", i, 1, async () => listed(name, (await client.request<Written>("POST", policies, { body: policy(name, 8080) })).metadata.generation));
    await timeChange("policy changed", i, 1, async () => listed(name, (await client.request<Written>("PATCH", `${policies}/${name}`, { body: policy(name, 8081), ...merge })).metadata.generation));
    await timeChange("policy deleted", i, 1, async () => {
      await client.request("DELETE", `${policies}/${name}`);
      return listed(name, undefined);
    });
    await client.request("DELETE", `${pods}/${name}`, { query: { gracePeriodSeconds: 0 } });
  }
  // The world as it was: the namespace's and the pod's labels back.
  await client.request("PATCH", resourcePath(Resources.namespaces, { name: namespace }), { body: { metadata: { labels: { env } } }, ...merge });
  await client.request("PATCH", `${pods}/${relabelled.object.metadata.name}`, { body: { metadata: { labels: relabelled.object.metadata.labels } }, ...merge });
}

await onDevCluster("scale", 1, "scale-bench", main);
