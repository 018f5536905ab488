/**
 * `palisade conformance` end to end on its own dev cluster (two nodes, in a
 * temporary dev folder on free ports and a network slot of its own): the upstream
 * suite over IPv4 with the pods spread over both nodes, once with
 * NetworkPolicies and once with the equivalent EBPFNetworkPolicies, and a
 * small seeded random run over both families with both APIs mixed. Every
 * run must report 0 failed and, for the upstream suite, one result per
 * ported case. Needs root and the cached control plane binaries.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { UPSTREAM_CASES } from "../../src/conformance/upstream-cases.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { testFolder } from "../lib/test-folder.ts";

const cluster = new DevCli(testFolder("conf"));

interface Report {
  suite: string;
  api: string;
  family: string;
  seconds: number;
  summary: { cases: number; passed: number; failed: number; skipped: number };
  cases: { name: string; status: string; reason?: string; failures: unknown[] }[];
}

function conformance(...args: string[]): Report {
  const run = cluster.palisade("conformance", "--nodes", "2", "-o", "json", ...args);
  const report = JSON.parse(run.stdout) as Report;
  const failed = report.cases.filter((c) => c.status === "failed");
  assert.deepEqual(failed, [], `conformance ${args.join(" ")} failed:\n${JSON.stringify(failed, null, 2)}\n${run.stderr.slice(-4000)}`);
  assert.equal(run.status, 0, run.stderr.slice(-4000));
  process.stderr.write(`# conformance ${args.join(" ")}: ${JSON.stringify(report.summary)} in ${report.seconds.toFixed(1)} s\n`);
  return report;
}

before(() => cluster.up(2));

after(() => cluster.folder.remove());

for (const api of ["networkpolicy", "ebpfnp"]) {
  test(`the upstream suite passes over IPv4 with --api ${api} on two nodes`, () => {
    const report = conformance("--suite", "upstream", "--family", "ipv4", "--api", api);
    assert.equal(report.summary.cases, UPSTREAM_CASES.length);
    assert.deepEqual(report.summary, { cases: UPSTREAM_CASES.length, passed: UPSTREAM_CASES.length, failed: 0, skipped: 0 });
  });
}

test("a seeded random run passes on both families with both APIs mixed", () => {
  const report = conformance("--suite", "random", "--seed", "20261125", "--cases", "8", "--family", "dual", "--api", "both");
  assert.deepEqual(report.summary, { cases: 8, passed: 8, failed: 0, skipped: 0 });
});
