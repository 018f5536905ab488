/**
 * `palisade conformance`: the upstream NetworkPolicy e2e suite (or the
 * seeded random suite) with real packets on the dev cluster, on either
 * policy API or both, IPv4, IPv6 or both families, one or two nodes.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { devDirFromEnv, devLayout, devUp } from "../devcluster/index.ts";
import { sctpRawBinary } from "../devcluster/node-runtime/index.ts";
import { KubeClient } from "../k8s/client.ts";
import type { ConformanceCase, ProbeProtocol } from "../conformance/case.ts";
import { ClusterModel } from "../conformance/cluster-model.ts";
import { MODEL_PODS, type Family } from "../conformance/model.ts";
import { randomCases } from "../conformance/random-cases.ts";
import { printGrid } from "../conformance/truth-table.ts";
import { runCase, type CaseResult, type RunOptions } from "../conformance/runner.ts";
import type { ApiMode } from "../conformance/to-ebpfnp.ts";
import { caseName, UPSTREAM_CASES } from "../conformance/upstream-cases.ts";
import { ProberPool } from "../probe/index.ts";
import { UsageError } from "./usage-error.ts";

/** `palisade conformance` help text. */
export const CONFORMANCE_HELP = `  palisade conformance [--suite upstream|random] [--family ipv4|ipv6|dual] [--api networkpolicy|ebpfnp|both]
                       [--nodes 1|2] [--seed S] [--cases N] [--case SUBSTRING] [--timeout-ms 1000]
                       [-o table|json] [--kubeconfig PATH]
      Runs the upstream Kubernetes NetworkPolicy e2e cases (or N seeded random cases, expected by the
      reference evaluator) with real packets: namespaces x, y, z with pods a, b, c, every ordered pair
      probed after each step. --api ebpfnp writes every policy as the equivalent EBPFNetworkPolicy,
      both alternates the kinds; dual probes IPv4 and IPv6. Brings the dev cluster up with --nodes
      nodes unless --kubeconfig names a cluster. Prints a result per case, the differing pairs of a
      failure and "N passed, M failed, K skipped"; exit status 1 on any failure.`;

/** The parsed flags of `palisade conformance`. */
export interface ConformanceOptions {
  suite: "upstream" | "random";
  family: "ipv4" | "ipv6" | "dual";
  api: ApiMode;
  nodes: number;
  seed: number;
  cases: number;
  filter?: string;
  timeoutMs: number;
  output: "table" | "json";
  kubeconfig?: string;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`Cannot run conformance: ${flag} "${value}" is not one of ${allowed.join(", ")}`);
  return value as T;
}

function positive(flag: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UsageError(`Cannot run conformance: ${flag} "${value}" is not a whole number from 1 to ${max}`);
  return n;
}

/**
 * Parses the flags of `palisade conformance`.
 *
 * @example
 * ```ts
 * parseConformanceArgs(["--api", "both", "--family", "dual"]).api; // "both"
 * ```
 */
export function parseConformanceArgs(argv: string[]): ConformanceOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      suite: { type: "string", default: "upstream" },
      family: { type: "string", default: "ipv4" },
      api: { type: "string", default: "networkpolicy" },
      nodes: { type: "string", default: "1" },
      seed: { type: "string" },
      cases: { type: "string", default: "20" },
      case: { type: "string" },
      "timeout-ms": { type: "string", default: "1000" },
      output: { type: "string", short: "o", default: "table" },
      kubeconfig: { type: "string" },
    },
    allowPositionals: false,
  });
  return {
    suite: oneOf("--suite", values.suite, ["upstream", "random"] as const),
    family: oneOf("--family", values.family, ["ipv4", "ipv6", "dual"] as const),
    api: oneOf("--api", values.api, ["networkpolicy", "ebpfnp", "both"] as const),
    nodes: positive("--nodes", values.nodes, 2),
    // A fresh seed unless one is given; it is printed so that a failure replays.
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positive("--seed", values.seed, 2 ** 32 - 1),
    cases: positive("--cases", values.cases),
    timeoutMs: positive("--timeout-ms", values["timeout-ms"], 60_000),
    output: oneOf("-o", values.output, ["table", "json"] as const),
    ...(values.case !== undefined && { filter: values.case }),
    ...(values.kubeconfig !== undefined && { kubeconfig: values.kubeconfig }),
  };
}

function casesOf(options: ConformanceOptions): { testCase: ConformanceCase; name: string }[] {
  const all = options.suite === "upstream" ? UPSTREAM_CASES : randomCases(options.seed, options.cases);
  return all.map((testCase) => ({ testCase, name: caseName(testCase) })).filter(({ name }) => options.filter === undefined || name.includes(options.filter));
}

function verdictWord(allowed: boolean): string {
  return allowed ? "allowed" : "denied";
}

function sideBySide(left: string, right: string): string {
  const a = left.split("\n");
  const b = right.split("\n");
  const width = Math.max(...a.map((line) => line.length));
  return a.map((line, i) => `${line.padEnd(width)}    ${b[i] ?? ""}`.trimEnd()).join("\n");
}

/** The text block of one case result. */
export function formatCaseResult(result: CaseResult): string {
  const head = { passed: "PASS", failed: "FAIL", skipped: "SKIP" }[result.status];
  const lines = [`${head}  ${result.name}${result.status === "skipped" ? `: ${result.reason}` : ` (${result.seconds.toFixed(1)} s)`}`];
  if (result.status === "failed" && result.reason !== undefined) lines.push(`      error: ${result.reason}`);
  for (const failure of result.failures) {
    lines.push(`      step ${failure.step} (${failure.description}), ${failure.family} ${failure.protocol}/${failure.port}: ${failure.differences.length} pair(s) differ`);
    for (const d of failure.differences) lines.push(`        ${d.from} -> ${d.to}: expected ${verdictWord(d.expected)}, observed ${verdictWord(d.observed)} (${d.reason})`);
    const grids = sideBySide(`expected\n${printGrid(failure.expected, MODEL_PODS)}`, `observed\n${printGrid(failure.observed, MODEL_PODS)}`);
    lines.push(...grids.split("\n").map((line) => `        ${line}`));
  }
  return lines.join("\n");
}

/** Runs `palisade conformance`; returns the exit status. */
export async function runConformance(argv: string[]): Promise<number> {
  const options = parseConformanceArgs(argv);
  const progress = (line: string): void => {
    process.stderr.write(`conformance: ${line}\n`);
  };
  const started = Date.now();
  const cases = casesOf(options);
  if (cases.length === 0) throw new UsageError(`Cannot run conformance: no case of suite "${options.suite}" matches --case "${options.filter ?? ""}"`);
  if (options.suite === "random") progress(`random suite, seed ${options.seed}, ${options.cases} case(s) (replay with --seed ${options.seed})`);
  let kubeconfig = options.kubeconfig;
  if (kubeconfig === undefined) {
    const up = await devUp(devLayout(devDirFromEnv()), { nodes: options.nodes }, (line) => progress(`dev: ${line}`));
    kubeconfig = up.adminKubeconfig;
  }
  const client = KubeClient.fromFile(kubeconfig);
  const families: Family[] = options.family === "dual" ? ["ipv4", "ipv6"] : [options.family];
  const model = await ClusterModel.create(client, options.nodes, families, progress);
  // SCTP probes need the raw-socket prober; a build without it skips the SCTP cases, saying so.
  const sctpBinary = sctpRawBinary();
  const pool = new ProberPool(existsSync(sctpBinary) ? { sctpBinary } : {});
  const protocols = new Set<ProbeProtocol>(existsSync(sctpBinary) ? ["TCP", "UDP", "SCTP"] : ["TCP", "UDP"]);
  const runOptions: RunOptions = { api: options.api, families, timeoutMs: options.timeoutMs, protocols, programmedTimeoutMs: 60_000 };
  const results: CaseResult[] = [];
  try {
    for (const [index, { testCase, name }] of cases.entries()) {
      const result = await runCase({ client, model, pool }, testCase, index, name, runOptions);
      results.push(result);
      if (options.output === "table") process.stdout.write(`${formatCaseResult(result)}\n`);
      else progress(`${result.status} ${name}`);
    }
  } finally {
    pool.close();
    await model.destroy();
  }
  const count = (status: CaseResult["status"]): number => results.filter((r) => r.status === status).length;
  const summary = { cases: results.length, passed: count("passed"), failed: count("failed"), skipped: count("skipped") };
  const seconds = (Date.now() - started) / 1000;
  const run = { suite: options.suite, api: options.api, family: options.family, nodes: options.nodes, timeoutMs: options.timeoutMs, ...(options.suite === "random" && { seed: options.seed }) };
  if (options.output === "json") {
    const report = {
      ...run,
      seconds,
      summary,
      cases: results.map((r) => ({
        ...r,
        failures: r.failures.map((f) => ({ ...f, expected: printGrid(f.expected, MODEL_PODS), observed: printGrid(f.observed, MODEL_PODS) })),
      })),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const where = `suite ${options.suite}${options.suite === "random" ? ` seed ${options.seed}` : ""}, api ${options.api}, family ${options.family}, ${options.nodes} node(s)`;
    process.stdout.write(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped in ${seconds.toFixed(1)} s (${where})\n`);
  }
  return summary.failed > 0 ? 1 : 0;
}
