/**
 * The node report against a real API server (a test control plane of its
 * own, no lock needed): a report of 10k policies is accepted and read back
 * whole; one too large even when compressed is written without its list,
 * saying how many it left out; and a report the API server refuses (the old
 * uncompressed form of 10k policies, over its 1 MiB limit) is logged once and
 * not sent again, so nothing loops.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EnforcementReport } from "../../src/agent/enforcement-report.ts";
import { PatchType, resourcePath, Resources } from "../../src/k8s/index.ts";
import { jsonLogger, LOG_LEVELS } from "../../src/k8s/logger.ts";
import { findApplied, readNodeReport, REPORT_NAMESPACE, reportConfigMapName, writeNodeReport, type NodeReport } from "../../src/k8s/node-report.ts";
import { startTestControlPlane, type TestControlPlane } from "../lib/control-plane.ts";
import { incompressiblePolicies, realisticPolicies } from "../lib/report-policies.ts";

const CAUGHT_UP = { podResourceVersion: "100", namespaceResourceVersion: "10", pods: 10_000, namespaces: 1000 };

describe("node report on a real API server", () => {
  let cp: TestControlPlane | undefined;

  before(async () => {
    cp = await startTestControlPlane("report");
    await cp.client.request("POST", resourcePath(Resources.namespaces), { body: { apiVersion: "v1", kind: "Namespace", metadata: { name: REPORT_NAMESPACE } } });
  });

  after(async () => {
    await cp?.stop();
  });

  it("accepts a report of 10k policies and reads it back whole", async () => {
    const client = (cp as TestControlPlane).client;
    const policies = realisticPolicies(10_000);
    const report: NodeReport = { node: "big", appliedAt: new Date().toISOString(), policies, endpoints: 100, ...CAUGHT_UP };
    assert.deepEqual(await writeNodeReport(client, report), { overflow: false });
    const read = await readNodeReport(client, "big");
    assert.equal(read?.policies.length, 10_000);
    assert.equal(read?.overflow, undefined);
    for (const p of policies) assert.equal(findApplied(read as NodeReport, p)?.generation, p.generation, `${p.namespace}/${p.name}`);
  });

  it("writes a report too large even compressed without its list, saying how many policies it has, once", async () => {
    const client = (cp as TestControlPlane).client;
    const logs: Record<string, unknown>[] = [];
    let writes = 0;
    const report = new EnforcementReport(
      "huge",
      (r, signal) => {
        writes++;
        return writeNodeReport(client, r, signal);
      },
      jsonLogger("info", {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
    );
    for (const p of incompressiblePolicies(30_000)) report.fed(p);
    report.committed({ endpoints: 1, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await report.write(new AbortController().signal);
    await report.write(new AbortController().signal);
    assert.equal(writes, 1);
    const read = await readNodeReport(client, "huge");
    assert.deepEqual({ policies: read?.policies, overflow: read?.overflow, pods: read?.pods }, { policies: [], overflow: { policies: 30_000 }, pods: CAUGHT_UP.pods });
    assert.deepEqual(report.failures, { rejected: 0, unavailable: 0 });
    assert.equal(logs.filter((l) => String(l["msg"]).startsWith('The report of node "huge" is too large to list its 30000 policies')).length, 1);
  });

  it("logs a report the API server refuses once, and does not send it again until it changes", async () => {
    const client = (cp as TestControlPlane).client;
    const logs: Record<string, unknown>[] = [];
    let writes = 0;
    // The report as it was written before it was compressed: 10k policies are over the API's 1 MiB.
    const uncompressed = async (r: NodeReport, signal: AbortSignal): Promise<{ overflow: boolean }> => {
      writes++;
      const name = reportConfigMapName(r.node);
      await client.request("PATCH", resourcePath(Resources.configMaps, { namespace: REPORT_NAMESPACE, name }), {
        body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: REPORT_NAMESPACE }, data: { "report.json": JSON.stringify(r) } },
        contentType: PatchType.apply,
        query: { fieldManager: "palisade-agent", force: true },
        signal,
      });
      return { overflow: false };
    };
    const report = new EnforcementReport("old", uncompressed, jsonLogger("info", {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>)));
    for (const p of realisticPolicies(10_000)) report.fed(p);
    report.committed({ endpoints: 1, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await report.write(new AbortController().signal);
    await report.write(new AbortController().signal);
    assert.equal(writes, 1, "not sent again");
    assert.deepEqual(report.failures, { rejected: 1, unavailable: 0 });
    const errors = logs.filter((l) => l["level"] === LOG_LEVELS.error);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.["msg"]), /^Cannot write the report of node "old": the API server refused it \((413|422)\)/);
  });
});
