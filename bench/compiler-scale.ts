/**
 * `npm run bench:compiler-scale`: the policy compiler alone (no cluster, no
 * kernel, no root) under the scale benchmark's world (`bench/lib/scale-world.ts`,
 * issue 13's cluster times `--factor`), driven as the agent drives it:
 *
 * - cold start: a fresh compiler fed every object, one `commit()`, then the
 *   full-sync read the agent makes (`mapsState()`, `httpView()`); wall time of each (and the commit's CPU
 *   time: on two shared cores the wall time is also whatever else runs), the JS heap the compiler
 *   holds with the array buffers it holds outside the heap (growth across the cold start, measured after forced
 *   collections, so not garbage) and the process's RSS after (the input world included);
 * - single changes in the first namespace (which holds real pods): a pod added
 *   and removed, a pod relabelled (version v1 ↔ v2), the namespace relabelled
 *   (env prod ↔ dev), a NetworkPolicy added and deleted; each the mutation,
 *   `commit()` and the reads the agent makes after every commit.
 *
 * Each cold start runs in a fresh process (`--processes`, default 3; a
 * process's second compile would find a warm heap), which then makes the
 * changes; the table gives the median over the processes of each figure, and
 * for changes the median and largest of every sample pooled.
 *
 * Usage: `node --expose-gc dist/bench/compiler-scale.js [--factor 0.5] [--processes 3] [--changes 20] [--seed 13]`
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { buildWorld, PolicyCompiler } from "../src/policy/index.ts";
import type { World } from "../src/policy/index.ts";
import { scaleSize, scaleWorld } from "./lib/scale-world.ts";
import type { ScaleWorld } from "./lib/scale-world.ts";
import { formatTable, median, quantile } from "./lib/stats.ts";

const NODE = "palisade-node-1";
const HOST_IP = "10.240.0.1";

/** What one process measured. */
interface ProcessResult {
  commitMs: number;
  /** CPU time of the cold commit, every thread of the process (V8's collector helpers included). */
  commitCpuMs: number;
  stateMs: number;
  /** JS heap and array buffers the compiler holds after the cold start (growth across it, each end after a collection), MB. */
  heapMb: number;
  rssMb: number;
  counts: { policyEntries: number; endpoints: number; identities: number };
  /** Per change (and its undoing), wall times in ms. */
  changes: Record<string, number[]>;
}

/** A change the benchmark makes (`on`) and undoes, named for each way. */
interface Change {
  names: [on: string, off: string];
  apply(compiler: PolicyCompiler, on: boolean): void;
}

/** The world as the agent's conversion gives it: real pods get addresses (their runtime would), in 10.244.0.0/16. */
function worldOf(scale: ScaleWorld): World {
  let real = 0;
  const pods = scale.pods.map((pod) => {
    const ips = pod.real ? [`10.244.${real >> 8}.${real++ & 255}`] : pod.ips;
    return { ...pod.object, status: { phase: "Running", podIPs: ips.map((ip) => ({ ip })) } };
  });
  const { world, errors } = buildWorld([...scale.namespaces, ...pods, ...scale.policies], { hostIPs: [HOST_IP] });
  if (errors.length > 0) throw new AggregateError(errors, `Cannot build the scale world: ${errors[0]?.message}`);
  return world;
}

function changesOf(world: World): Change[] {
  const firstPod = [...world.pods.values()][0];
  if (!firstPod) throw new Error("Cannot make changes: the world has no pod");
  const namespace = world.namespaces.get(firstPod.namespace);
  if (!namespace) throw new Error(`Cannot make changes: namespace "${firstPod.namespace}" is missing`);
  const otherVersion = firstPod.labels.version === "v1" ? "v2" : "v1";
  const otherEnv = namespace.labels.env === "dev" ? "prod" : "dev";
  return [
    {
      names: ["pod added (fake node)", "pod removed"],
      apply: (compiler, on) =>
        on
          ? compiler.upsertPod({ namespace: firstPod.namespace, name: "bench-added", labels: { app: "app-0", tier: "frontend", version: "v1" }, ips: ["198.19.255.254"], namedPorts: [], nodeName: "scale-node-01" })
          : compiler.deletePod(firstPod.namespace, "bench-added"),
    },
    {
      names: ["pod relabelled (version)", "pod relabelled back"],
      apply: (compiler, on) => compiler.upsertPod({ ...firstPod, labels: { ...firstPod.labels, version: on ? otherVersion : (firstPod.labels.version as string) } }),
    },
    {
      names: ["namespace relabelled (env)", "namespace relabelled back"],
      apply: (compiler, on) => compiler.upsertNamespace({ ...namespace, labels: { ...namespace.labels, env: on ? otherEnv : (namespace.labels.env as string) } }),
    },
    {
      names: ["policy added", "policy deleted"],
      apply: (compiler, on) =>
        on
          ? compiler.upsertPolicy({
              apiVersion: "networking.k8s.io/v1",
              kind: "NetworkPolicy",
              metadata: { namespace: firstPod.namespace, name: "bench-added" },
              spec: { podSelector: { matchLabels: { app: "app-0" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "app-1" } } }], ports: [{ port: 81 }] }] },
            })
          : compiler.deletePolicy("NetworkPolicy", firstPod.namespace, "bench-added"),
    },
  ];
}

const collect = (globalThis as { gc?: () => void }).gc;

function measureProcess(factor: number, seed: number, changeRuns: number): ProcessResult {
  if (collect === undefined) throw new Error("Cannot measure the heap: run node with --expose-gc");
  const world = worldOf(scaleWorld(scaleSize(factor), { seed, realNode: NODE }));
  collect();
  const before = process.memoryUsage();
  const compiler = new PolicyCompiler({ nodeName: NODE });
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (const ns of world.namespaces.values()) compiler.upsertNamespace(ns);
  for (const pod of world.pods.values()) compiler.upsertPod(pod);
  for (const policy of world.policies) compiler.upsertPolicy(policy);
  compiler.setHostIPs(world.hostIPs);
  compiler.commit();
  const committed = performance.now();
  const commitCpu = process.cpuUsage(cpu);
  compiler.mapsState();
  compiler.httpView();
  const stateMs = performance.now() - committed;
  collect();
  const memory = process.memoryUsage();
  const changes: Record<string, number[]> = {};
  for (const change of changesOf(world)) {
    for (let run = 0; run < 2 * changeRuns; run++) {
      const on = run % 2 === 0;
      const t0 = performance.now();
      change.apply(compiler, on);
      compiler.commit();
      compiler.httpView();
      compiler.stateCounts();
      compiler.pendingIdentityKeys();
      (changes[change.names[on ? 0 : 1]] ??= []).push(performance.now() - t0);
    }
  }
  return {
    commitMs: committed - started,
    commitCpuMs: (commitCpu.user + commitCpu.system) / 1000,
    stateMs,
    heapMb: (memory.heapUsed + memory.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20,
    rssMb: memory.rss / 2 ** 20,
    counts: compiler.stateCounts(),
    changes,
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      factor: { type: "string", default: "0.5" },
      processes: { type: "string", default: "3" },
      changes: { type: "string", default: "20" },
      seed: { type: "string", default: "13" },
      child: { type: "boolean", default: false },
    },
  });
  const [factor, processes, changeRuns, seed] = [Number(values.factor), Number(values.processes), Number(values.changes), Number(values.seed)];
  if (!(factor > 0) || !Number.isInteger(processes) || processes < 1 || !Number.isInteger(changeRuns) || changeRuns < 1) {
    throw new Error(`Cannot run the benchmark: --factor "${values.factor}", --processes "${values.processes}" and --changes "${values.changes}" must be positive`);
  }
  if (values.child) {
    process.stdout.write(JSON.stringify(measureProcess(factor, seed, changeRuns)));
    return;
  }
  const results: ProcessResult[] = [];
  for (let i = 0; i < processes; i++) {
    const args = [...process.execArgv, process.argv[1] as string, "--child", "--factor", String(factor), "--changes", String(changeRuns), "--seed", String(seed)];
    results.push(JSON.parse(execFileSync(process.execPath, args, { encoding: "utf8", maxBuffer: 2 ** 26 })) as ProcessResult);
  }
  const size = scaleSize(factor);
  const counts = results[0]?.counts;
  const of = (pick: (r: ProcessResult) => number, digits = 0) => median(results.map(pick)).toFixed(digits);
  process.stdout.write(
    `# Policy compiler under the scale world, factor ${factor}\n\n` +
      `${size.fakePods + size.realPods} pods (${size.realPods} local), ${size.namespaces} namespaces, ${size.policies} policies, ${size.cidrs} CIDRs: ` +
      `${counts?.policyEntries} policy entries, ${counts?.endpoints} endpoints, ${counts?.identities} identities. ` +
      `Medians over ${processes} processes; changes: ${changeRuns} of each per process, pooled.\n\n`,
  );
  const cold = [
    ["cold commit (every object, one commit)", `${of((r) => r.commitMs)} ms`],
    ["its CPU time (every thread)", `${of((r) => r.commitCpuMs)} ms`],
    ["full-sync read (mapsState(), httpView())", `${of((r) => r.stateMs)} ms`],
    ["JS heap and array buffers the compiler holds", `${of((r) => r.heapMb)} MB`],
    ["RSS after", `${of((r) => r.rssMb)} MB`],
  ];
  process.stdout.write(`${formatTable(["cold start", "median"], cold)}\n\n`);
  const rows = Object.keys(results[0]?.changes ?? {}).map((name) => {
    const samples = results.flatMap((r) => r.changes[name] ?? []);
    return [name, median(samples).toFixed(1), quantile(samples, 0.99).toFixed(1), Math.max(...samples).toFixed(1)];
  });
  process.stdout.write(`${formatTable(["change (one agent commit)", "p50 ms", "p99 ms", "max ms"], rows)}\n`);
}

main();
