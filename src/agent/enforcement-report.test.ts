import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeApiError } from "../k8s/errors.ts";
import { jsonLogger, LOG_LEVELS } from "../k8s/logger.ts";
import type { NodeReport } from "../k8s/node-report.ts";
import { EnforcementReport } from "./enforcement-report.ts";

const QUIET = jsonLogger("error", {}, () => {});

const CAUGHT_UP = { podResourceVersion: "12", namespaceResourceVersion: "7", pods: 3, namespaces: 2 };
const SIGNAL = new AbortController().signal;
const P = { kind: "NetworkPolicy", namespace: "x", name: "p", uid: "u1", generation: 2 } as const;

function setup(): { written: NodeReport[]; report: EnforcementReport } {
  const written: NodeReport[] = [];
  const report = new EnforcementReport(
    "n1",
    async (r) => {
      written.push(r);
      return { overflow: false };
    },
    QUIET,
  );
  return { written, report };
}

describe("EnforcementReport", () => {
  it("lists fed policies and moves its resourceVersions only at a commit that leaves no identity pending", async () => {
    const { written, report } = setup();
    report.fed(P);
    report.committed({ endpoints: 1, pendingIdentities: 2, caughtUp: CAUGHT_UP });
    await report.write(SIGNAL);
    assert.deepEqual(written.map(({ appliedAt: _, ...r }) => r), [{ node: "n1", policies: [], endpoints: 1, podResourceVersion: "", namespaceResourceVersion: "", pods: 0, namespaces: 0 }]);
    report.committed({ endpoints: 1, pendingIdentities: 0, caughtUp: undefined });
    await report.write(SIGNAL);
    assert.deepEqual(written[1]?.policies, [P]);
    assert.equal(written[1]?.podResourceVersion, "", "changes were still queued behind the commit");
    report.committed({ endpoints: 1, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await report.write(SIGNAL);
    assert.deepEqual({ ...written[2], appliedAt: "" }, { node: "n1", appliedAt: "", policies: [P], endpoints: 1, ...CAUGHT_UP });
  });

  it("sorts policies by kind, namespace and name, and forgets deleted ones", async () => {
    const { written, report } = setup();
    const q = { ...P, kind: "EBPFNetworkPolicy", name: "q" } as const;
    const r = { ...P, namespace: "a", name: "r" } as const;
    for (const policy of [P, q, r]) report.fed(policy);
    report.fed({ ...P, generation: 3 });
    report.committed({ endpoints: 0, pendingIdentities: 0, caughtUp: undefined });
    await report.write(SIGNAL);
    assert.deepEqual(written[0]?.policies, [q, r, { ...P, generation: 3 }]);
    report.forget("EBPFNetworkPolicy", "x", "q");
    report.committed({ endpoints: 0, pendingIdentities: 0, caughtUp: undefined });
    await report.write(SIGNAL);
    assert.deepEqual(written[1]?.policies, [r, { ...P, generation: 3 }]);
  });

  it("writes only a changed report, and writes again after a failed write", async () => {
    const written: NodeReport[] = [];
    let fail = true;
    const report = new EnforcementReport(
      "n1",
      async (r) => {
        if (fail) throw new Error("API server unreachable");
        written.push(r);
        return { overflow: false };
      },
      QUIET,
    );
    report.committed({ endpoints: 1, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await assert.rejects(report.write(SIGNAL), /unreachable/);
    assert.deepEqual(report.failures, { rejected: 0, unavailable: 1 });
    fail = false;
    await report.write(SIGNAL);
    await report.write(SIGNAL);
    assert.equal(written.length, 1);
    report.committed({ endpoints: 2, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await report.write(SIGNAL);
    assert.deepEqual(written.map((r) => r.endpoints), [1, 2]);
  });

  it("logs a report the API server refuses once, counts it, and tries again only when the report changed; logs when its list is left out for size", async () => {
    const logs: Record<string, unknown>[] = [];
    const attempts: NodeReport[] = [];
    let answer: () => { overflow: boolean } = () => {
      throw new KubeApiError("PATCH /api/v1/namespaces/palisade-system/configmaps/palisade-node-n1", 422, { reason: "Invalid", message: "Too long: may not be more than 1048576 bytes" });
    };
    const report = new EnforcementReport(
      "n1",
      async (r) => {
        attempts.push(r);
        return answer();
      },
      jsonLogger("info", {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
    );
    report.committed({ endpoints: 1, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await report.write(SIGNAL);
    await report.write(SIGNAL);
    assert.equal(attempts.length, 1, "the same report is not sent again");
    assert.deepEqual(report.failures, { rejected: 1, unavailable: 0 });
    const errors = logs.filter((l) => l["level"] === LOG_LEVELS.error);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.["msg"]), /^Cannot write the report of node "n1": the API server refused it \(422\)/);

    answer = () => ({ overflow: true });
    report.committed({ endpoints: 2, pendingIdentities: 0, caughtUp: CAUGHT_UP });
    await report.write(SIGNAL);
    assert.equal(attempts.length, 2, "a changed report is tried again");
    assert.match(String(logs.at(-1)?.["msg"]), /^The report of node "n1" is too large to list its 0 policies/);
  });
});
