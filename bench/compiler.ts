/**
 * `npm run bench:compiler`: what one agent commit costs in the policy
 * compiler, run by hand (never as a timed test). A compiler holding about 10k
 * policy entries (a synthetic cluster: namespaces of replicated apps, each
 * namespace default-deny with ingress by app, from monitoring and from
 * production namespaces, and egress to DNS and to a CIDR with holes) takes one
 * change at a time, driven the way the agent drives it: the mutation, then
 * `commit()`, then the reads the agent makes after every commit. Each change
 * is undone by the next run, so every run changes the same amount.
 *
 * Prints a Markdown table: per change, the median (and interquartile range) of
 * the wall time and of the bytes allocated on the JS heap. Allocation is the
 * growth of the used heap across a run with no garbage collection in it (a
 * run during which V8 collected is measured again), which needs
 * `--expose-gc` and a young generation larger than one run allocates: the npm
 * script passes both.
 *
 * Usage: `node --expose-gc --max-semi-space-size=128 dist/bench/compiler.js [--runs N]`
 *
 * @module
 */
import { GCProfiler } from "node:v8";
import { parseArgs } from "node:util";
import { PolicyCompiler } from "../src/policy/index.ts";
import type { AnyPolicy, NamespaceInfo, NetworkPolicy, PodInfo } from "../src/policy/index.ts";
import { formatTable, median, quantile } from "./lib/stats.ts";

const NODE = "n1";
const NAMESPACES = 10;
const APPS = 5;
const REPLICAS = 4;
const WARMUP_RUNS = 20;

/** A change the benchmark makes and undoes, run after run. */
interface Change {
  name: string;
  /** Applies the change (`on`) or its undoing to the compiler's input. */
  apply(compiler: PolicyCompiler, on: boolean): void;
}

function namespaceOf(i: number): NamespaceInfo {
  const name = `ns${i}`;
  const env = i % 2 === 0 ? "prod" : "dev";
  return { name, labels: { "kubernetes.io/metadata.name": name, env, ...(i === 0 ? { team: "monitoring" } : {}) } };
}

function podOf(namespace: number, app: number, replica: number, version = "v1"): PodInfo {
  const index = (namespace * APPS + app) * REPLICAS + replica;
  return {
    namespace: `ns${namespace}`,
    name: `app${app}-${replica}`,
    labels: { app: `app${app}`, version },
    ips: [`10.${100 + (index >> 16)}.${(index >> 8) & 255}.${index & 255}`],
    namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
    // Half the pods are local: endpoints of this node.
    nodeName: replica % 2 === 0 ? NODE : "n2",
  };
}

function policy(namespace: number, name: string, spec: NetworkPolicy["spec"]): NetworkPolicy {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace: `ns${namespace}`, name }, spec };
}

function policiesOf(namespace: number, appPort = 8000): AnyPolicy[] {
  const out: AnyPolicy[] = [policy(namespace, "default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] })];
  for (let app = 0; app < APPS; app++) {
    out.push(
      policy(namespace, `app${app}`, {
        podSelector: { matchLabels: { app: `app${app}` } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: `app${(app + 1) % APPS}` } } }], ports: [{ port: appPort, endPort: appPort + 99 }, { port: "http" }] },
          { from: [{ namespaceSelector: { matchLabels: { env: "prod" } } }], ports: [{ port: 9000 + app, endPort: 9015 + app }] },
        ],
      }),
    );
  }
  out.push(
    policy(namespace, "monitoring", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "monitoring" } } }], ports: [{ port: 9090 }] }] }),
    policy(namespace, "egress", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [
        { to: [{ namespaceSelector: {} }], ports: [{ port: 53, protocol: "UDP" }, { port: "http" }] },
        { to: [{ ipBlock: { cidr: "10.200.0.0/16", except: ["10.200.1.0/24", "10.200.2.0/24"] } }], ports: [{ port: 443 }] },
      ],
    }),
  );
  return out;
}

function cluster(): PolicyCompiler {
  const compiler = new PolicyCompiler({ nodeName: NODE });
  for (let n = 0; n < NAMESPACES; n++) {
    compiler.upsertNamespace(namespaceOf(n));
    for (let app = 0; app < APPS; app++) for (let replica = 0; replica < REPLICAS; replica++) compiler.upsertPod(podOf(n, app, replica));
    for (const p of policiesOf(n)) compiler.upsertPolicy(p);
  }
  compiler.setHostIPs(["10.240.0.1"]);
  compiler.commit();
  return compiler;
}

const CHANGES: Change[] = [
  {
    name: "pod relabelled (new identity)",
    apply: (compiler, on) => compiler.upsertPod(podOf(3, 2, 0, on ? "v2" : "v1")),
  },
  {
    name: "pod added (a replica: known identity)",
    apply: (compiler, on) => (on ? compiler.upsertPod(podOf(3, 2, REPLICAS)) : compiler.deletePod("ns3", `app2-${REPLICAS}`)),
  },
  {
    name: "policy edited (a port range moved)",
    apply: (compiler, on) => compiler.upsertPolicy(policiesOf(3, on ? 8100 : 8000)[3] as AnyPolicy),
  },
];

/** One agent commit: the change, the commit, and the reads the agent makes after every commit. */
function agentCommit(compiler: PolicyCompiler, change: Change, on: boolean): void {
  change.apply(compiler, on);
  compiler.commit();
  compiler.endpointOf("ns3/app2-0");
  compiler.stateCounts();
  compiler.pendingIdentityKeys();
}

interface Sample {
  ns: number;
  bytes: number;
}

const collect = (globalThis as { gc?: () => void }).gc;

function measure(compiler: PolicyCompiler, change: Change, runs: number): { samples: Sample[]; collected: number } {
  if (collect === undefined) throw new Error("Cannot measure allocation: run node with --expose-gc");
  const samples: Sample[] = [];
  let collected = 0;
  let on = true;
  for (let run = 0; samples.length < runs; run++) {
    collect();
    const profiler = new GCProfiler();
    profiler.start();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = process.hrtime.bigint();
    agentCommit(compiler, change, on);
    const ns = Number(process.hrtime.bigint() - started);
    const heapAfter = process.memoryUsage().heapUsed;
    const collections = profiler.stop().statistics.length;
    on = !on;
    if (run < WARMUP_RUNS) continue;
    if (collections > 0) {
      collected++;
      continue;
    }
    samples.push({ ns, bytes: heapAfter - heapBefore });
  }
  return { samples, collected };
}

function main(): void {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "200" } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`Cannot run the benchmark: --runs "${values.runs}" is not a positive integer`);
  const compiler = cluster();
  const state = compiler.state();
  process.stdout.write(
    `# Policy compiler: one agent commit\n\n` +
      `${NAMESPACES * APPS * REPLICAS} pods in ${NAMESPACES} namespaces, ${state.endpoints.size} local endpoints, ` +
      `${NAMESPACES * (APPS + 3)} policies: ${state.policy.size} policy entries, ${state.ipcache.size} ipcache entries, ` +
      `${state.identities.size} identities. Per change ${runs} runs after ${WARMUP_RUNS} warm-up runs; median (IQR).\n\n`,
  );
  const rows: string[][] = [];
  for (const change of CHANGES) {
    const { samples, collected } = measure(compiler, change, runs);
    const micros = samples.map((s) => s.ns / 1000);
    const kib = samples.map((s) => s.bytes / 1024);
    const spread = (values: number[], digits: number) =>
      `${median(values).toFixed(digits)} (${quantile(values, 0.25).toFixed(digits)}–${quantile(values, 0.75).toFixed(digits)})`;
    rows.push([change.name, spread(micros, 0), spread(kib, 0), String(collected)]);
  }
  process.stdout.write(`${formatTable(["change", "time µs", "allocated KiB", "runs with GC, redone"], rows)}\n`);
}

main();
