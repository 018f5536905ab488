/**
 * `palisade status`: the cluster's nodes with their agents' reports, and
 * the policies of both kinds with their conditions.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { KubernetesObject, V1Node } from "@kubernetes/client-node";
import { NodeReportError, readNodeReport, reportProblem } from "../k8s/node-report.ts";
import { KubeClient } from "../k8s/client.ts";
import type { Condition } from "../k8s/conditions.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";

/** `palisade status` help text. */
export const STATUS_HELP = `  palisade status [--kubeconfig PATH]
      Nodes (Ready, age of the agent's report, endpoints it enforces, what it cannot program) and policies of both kinds
      with their conditions (EBPFNetworkPolicy: Accepted, Programmed and programmed nodes k/n).`;

interface Policy extends KubernetesObject {
  status?: { conditions?: Condition[]; programmed?: string };
}

function columns(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n");
}

function condition(policy: Policy, type: string): string {
  const found = policy.status?.conditions?.find((c) => c.type === type);
  return found === undefined ? "-" : found.status;
}

/**
 * What `palisade status` prints, read from the API server now.
 *
 * @example
 * ```ts
 * process.stdout.write(await clusterStatus(KubeClient.fromDefault()));
 * ```
 */
export async function clusterStatus(client: KubeClient, now = Date.now()): Promise<string> {
  const [nodes, ebpf, netpols] = await Promise.all([
    client.request<{ items: V1Node[] }>("GET", resourcePath(Resources.nodes)),
    client.request<{ items: Policy[] }>("GET", resourcePath(Resources.ebpfNetworkPolicies)),
    client.request<{ items: KubernetesObject[] }>("GET", resourcePath(Resources.networkPolicies)),
  ]);
  const nodeRows = [["NODE", "READY", "REPORT AGE", "ENDPOINTS", "POLICIES", "PROBLEM"]];
  for (const node of nodes.items) {
    const name = node.metadata?.name ?? "";
    const report = await readNodeReport(client, name).catch((error: unknown) => {
      if (error instanceof NodeReportError) return error;
      throw error;
    });
    const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";
    if (report === undefined || report instanceof NodeReportError) {
      nodeRows.push([name, ready, report === undefined ? "no report" : "unreadable report", "-", "-"]);
      continue;
    }
    const age = `${Math.max(0, Math.round((now - Date.parse(report.appliedAt)) / 1000))}s`;
    const policies = report.overflow === undefined ? String(report.policies.length) : `${report.overflow.policies} (unlisted)`;
    nodeRows.push([name, ready, age, String(report.endpoints), policies, reportProblem(report) ?? ""]);
  }
  const policyRows = [["KIND", "NAMESPACE", "NAME", "GENERATION", "ACCEPTED", "PROGRAMMED", "NODES"]];
  for (const policy of ebpf.items) {
    policyRows.push([
      "EBPFNetworkPolicy",
      policy.metadata?.namespace ?? "",
      policy.metadata?.name ?? "",
      String(policy.metadata?.generation ?? "-"),
      condition(policy, "Accepted"),
      condition(policy, "Programmed"),
      policy.status?.programmed ?? "-",
    ]);
  }
  for (const policy of netpols.items) {
    policyRows.push(["NetworkPolicy", policy.metadata?.namespace ?? "", policy.metadata?.name ?? "", String(policy.metadata?.generation ?? "-"), "-", "-", "-"]);
  }
  return `${columns(nodeRows)}\n\n${policyRows.length === 1 ? "No policies." : columns(policyRows)}`;
}

/** Runs `palisade status` and returns what to print. */
export async function runStatus(argv: string[]): Promise<string> {
  const { values } = parseArgs({ args: argv, options: { kubeconfig: { type: "string" } } });
  return clusterStatus(values.kubeconfig === undefined ? KubeClient.fromDefault() : KubeClient.fromFile(values.kubeconfig));
}
