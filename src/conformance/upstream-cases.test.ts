import assert from "node:assert/strict";
import { test } from "node:test";
import { validatePolicy } from "../policy/index.ts";
import { CaseState } from "./case-state.ts";
import { MODEL_PODS, sampleAddresses, type Family } from "./model.ts";
import { referenceVerdicts } from "./reference-matrix.ts";
import { expectedVerdicts } from "./reachability.ts";
import { printGrid } from "./truth-table.ts";
import { caseName, UPSTREAM_CASES } from "./upstream-cases.ts";
import type { ApiMode } from "./to-ebpfnp.ts";

test("the suite ports all 48 upstream cases, 42 TCP, 3 UDP and 3 SCTP, with distinct names", () => {
  assert.equal(UPSTREAM_CASES.length, 48);
  const contexts = UPSTREAM_CASES.map((c) => c.context);
  assert.deepEqual([contexts.filter((c) => c === "TCP").length, contexts.filter((c) => c === "UDP").length, contexts.filter((c) => c === "SCTP").length], [42, 3, 3]);
  assert.equal(new Set(UPSTREAM_CASES.map(caseName)).size, 48);
});

const runs: { api: ApiMode; families: Family[] }[] = [
  { api: "networkpolicy", families: ["ipv4"] },
  { api: "ebpfnp", families: ["ipv6"] },
  { api: "both", families: ["ipv4", "ipv6"] },
];

for (const { api, families } of runs) {
  test(`every ported truth table is what the reference evaluator says (--api ${api}, ${families.join("+")})`, () => {
    const addresses = sampleAddresses();
    UPSTREAM_CASES.forEach((testCase, caseIndex) => {
      const state = new CaseState(addresses, families, api, caseIndex);
      testCase.steps.forEach((step, stepIndex) => {
        for (const action of step.actions) {
          const written = state.record(action);
          if (written !== undefined) assert.deepEqual(validatePolicy(written), [], `${caseName(testCase)}: ${written.metadata.name} is valid`);
        }
        for (const family of families) {
          for (const probe of step.probes) {
            if (probe.expect === "reference-evaluator") assert.fail(`${caseName(testCase)} has no ported truth table`);
            const want = expectedVerdicts(probe.expect, MODEL_PODS);
            const got = referenceVerdicts(state.world(), MODEL_PODS, family, probe.port, probe.protocol);
            const where = `${caseName(testCase)}, step ${stepIndex + 1} (${step.description}), ${probe.protocol}/${probe.port} ${family}`;
            assert.deepEqual(got, want, `${where}\nexpected:\n${printGrid(want, MODEL_PODS)}\nreference evaluator:\n${printGrid(got, MODEL_PODS)}`);
          }
        }
      });
    });
  });
}

test("with --api both, multi-policy cases mix both kinds and single-policy cases alternate", () => {
  const kinds = UPSTREAM_CASES.map((testCase, caseIndex) => {
    const state = new CaseState(sampleAddresses(), ["ipv4"], "both", caseIndex);
    return testCase.steps.flatMap((step) => step.actions.flatMap((action) => state.record(action)?.kind ?? []));
  });
  assert.ok(kinds.some((k) => k.includes("NetworkPolicy") && k.includes("EBPFNetworkPolicy")));
  const singles = kinds.filter((k) => k.length === 1).map((k) => k[0]);
  assert.ok(singles.includes("NetworkPolicy") && singles.includes("EBPFNetworkPolicy"));
});
