/**
 * A fresh dev cluster for a benchmark: control plane, node runtimes,
 * operator and agents in a temporary folder on free ports, removed when the
 * benchmark ends or fails.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Node } from "@kubernetes/client-node";
import { DEV_AGENT_METRICS_PORT, DEV_UP_STEPS, devDown, devLayout, devUp, freePorts } from "../../src/devcluster/index.ts";
import type { DevLayout } from "../../src/devcluster/index.ts";
import { isAlreadyExists, KubeClient, resourcePath, Resources } from "../../src/k8s/index.ts";

/**
 * Runs `body` on a new `nodes`-node dev cluster with namespace `namespace`
 * created, then takes the cluster down and removes its folder.
 *
 * @example
 * ```ts
 * await onDevCluster("latency", 2, "latency", async ({ client }) => { ... });
 * ```
 */
export async function onDevCluster(name: string, nodes: number, namespace: string, body: (cluster: { layout: DevLayout; client: KubeClient }) => Promise<void>): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), `pl-${name}-`));
  const layout = devLayout(join(base, "dev"));
  // Interrupted, the cluster still goes: its processes and network would outlive the benchmark otherwise.
  const interrupted = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}: taking the dev cluster down\n`);
    void devDown(layout, () => {}).finally(() => {
      rmSync(base, { recursive: true, force: true });
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  };
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    process.stderr.write(`bench: bringing up a ${nodes}-node dev cluster in ${layout.dir}\n`);
    await devUp(layout, { nodes, ports: await freePorts() }, (line) => process.stderr.write(`dev: ${line}\n`), DEV_UP_STEPS);
    const client = KubeClient.fromFile(layout.adminKubeconfig);
    try {
      await client.request("POST", resourcePath(Resources.namespaces), { body: { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } } });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    await body({ layout, client });
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    await devDown(layout, () => {});
    rmSync(base, { recursive: true, force: true });
  }
}

/**
 * One scrape of a Prometheus endpoint: the value of each sample line, by its
 * name and labels as printed.
 *
 * @example
 * ```ts
 * (await scrapeMetrics("http://10.240.0.1:9962/metrics")).get("palisade_policy_entries"); // 20000
 * ```
 */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  for (const line of (await (await fetch(url)).text()).split("\n")) {
    const space = line.lastIndexOf(" ");
    if (line.startsWith("#") || space < 0) continue;
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/**
 * Reads every dev node's agent metrics: a function returning, by node name,
 * the value of each sample line of /metrics (by its name and labels as printed).
 *
 * @example
 * ```ts
 * const scrape = await agentMetrics(client);
 * (await scrape()).get("palisade-node-1")?.get("palisade_policy_entries"); // 20000
 * ```
 */
export async function agentMetrics(client: KubeClient): Promise<() => Promise<Map<string, Map<string, number>>>> {
  const nodes = (await client.request<{ items: V1Node[] }>("GET", resourcePath(Resources.nodes))).items;
  const urls = nodes.map((node) => [node.metadata?.name ?? "", `http://${node.status?.addresses?.find((a) => a.type === "InternalIP")?.address}:${DEV_AGENT_METRICS_PORT}/metrics`] as const);
  return async () => new Map(await Promise.all(urls.map(async ([name, url]) => [name, await scrapeMetrics(url)] as const)));
}
