/**
 * Policy write to enforcement: a 2-node dev cluster (control plane, node
 * runtimes, operator, agents) in a temporary folder on free ports, then N
 * spec changes of one EBPFNetworkPolicy, each timed from just before the API
 * write until every node's agent reports that generation applied to its
 * maps (the per-node report ConfigMaps, watched, not polled). Prints the
 * distribution. Run as root after a build: `node dist/bench/policy-latency.js [N]`.
 */
import { Informer, PatchType, REPORT_NAME_PREFIX, Resources, parseNodeReport, resourcePath } from "../src/k8s/index.ts";
import type { KubeClient } from "../src/k8s/index.ts";
import { onDevCluster } from "./lib/dev-cluster.ts";
import { median, quantile } from "./lib/stats.ts";
import type { V1ConfigMap } from "@kubernetes/client-node";

const CHANGES = Number(process.argv[2] ?? 100);
const NODES = 2;
const NAMESPACE = "latency";
const POLICY = "moving-port";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function policy(port: number) {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: POLICY, namespace: NAMESPACE },
    spec: { selector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ protocol: "TCP", port }] }] },
  };
}

async function main({ client }: { client: KubeClient }): Promise<void> {
  const policies = resourcePath(Resources.ebpfNetworkPolicies, { namespace: NAMESPACE });
  const created = (await client.request("POST", policies, { body: policy(1000) })) as { metadata: { generation: number } };

  // generation -> nodes that reported it applied; the waiter of the current change.
  const applied = new Map<number, Set<string>>();
  let waiter: { generation: number; resolve: () => void } | undefined;
  const onReport = (cm: V1ConfigMap) => {
    if (!cm.metadata?.name?.startsWith(REPORT_NAME_PREFIX)) return;
    const report = parseNodeReport(cm);
    const entry = report.policies.find((p) => p.kind === "EBPFNetworkPolicy" && p.namespace === NAMESPACE && p.name === POLICY);
    if (!entry) return;
    const nodes = applied.get(entry.generation) ?? new Set<string>();
    nodes.add(report.node);
    applied.set(entry.generation, nodes);
    if (waiter && (applied.get(waiter.generation)?.size ?? 0) >= NODES) waiter.resolve();
  };
  const reports = new Informer<V1ConfigMap>({ client, resource: Resources.configMaps, namespace: "palisade-system", logger: quiet });
  reports.addHandlers({ onAdd: onReport, onUpdate: (_, cm) => onReport(cm) });
  reports.start();
  await reports.waitForSync();
  const enforced = (generation: number) =>
    new Promise<void>((resolve) => {
      waiter = { generation, resolve };
      if ((applied.get(generation)?.size ?? 0) >= NODES) resolve();
    });
  await enforced(created.metadata.generation);

  const samples: number[] = [];
  for (let i = 1; i <= CHANGES; i++) {
    const started = performance.now();
    const patched = (await client.request("PATCH", `${policies}/${POLICY}`, {
      body: { spec: { ingress: [{ ports: [{ protocol: "TCP", port: 1000 + i }] }] } },
      contentType: PatchType.merge,
    })) as { metadata: { generation: number } };
    await enforced(patched.metadata.generation);
    samples.push(performance.now() - started);
  }
  await reports.stop();

  const ms = (v: number) => v.toFixed(1);
  process.stdout.write(
    [
      `## Policy write to enforcement on every node (${CHANGES} changes, ${NODES} nodes)`,
      "",
      "| p50 ms | p90 ms | p99 ms | max ms |",
      "|-------:|-------:|-------:|-------:|",
      `| ${ms(median(samples))} | ${ms(quantile(samples, 0.9))} | ${ms(quantile(samples, 0.99))} | ${ms(Math.max(...samples))} |`,
      "",
    ].join("\n"),
  );
}

await onDevCluster("latency", NODES, NAMESPACE, main);
