import assert from "node:assert/strict";
import { test } from "node:test";
import { validatePolicy } from "../policy/index.ts";
import { CaseState } from "./case-state.ts";
import { MODEL_PODS, sampleAddresses } from "./model.ts";
import { randomCases } from "./random-cases.ts";
import { referenceVerdicts } from "./reference-matrix.ts";

test("random cases are valid policies, the same for a seed whatever the count, and different for another seed", () => {
  const cases = randomCases(7, 40);
  assert.deepEqual(randomCases(7, 10), cases.slice(0, 10));
  assert.notDeepEqual(randomCases(8, 10), cases.slice(0, 10));
  cases.forEach((testCase, i) => {
    const state = new CaseState(sampleAddresses(), ["ipv4", "ipv6"], "both", i);
    for (const action of testCase.steps.flatMap((step) => step.actions)) {
      const written = state.record(action);
      if (written !== undefined) assert.deepEqual(validatePolicy(written), [], `${testCase.title}: ${JSON.stringify(written)}`);
    }
  });
});

test("random cases exercise what the suite promises and both verdicts", () => {
  const cases = randomCases(1, 60);
  const text = JSON.stringify(cases);
  for (const feature of ['"matchExpressions"', '"except"', '"endPort"', '"serve-8', '"namespaceSelector"', '"Egress"', '"role"', '"team"', '"labelPod"', '"labelNamespace"']) assert.ok(text.includes(feature), feature);
  assert.ok(cases.some((c) => c.steps[1]?.actions.some((a) => "apply" in a)), "some second step rewrites a policy");
  let allowed = 0;
  let denied = 0;
  cases.forEach((testCase, i) => {
    const state = new CaseState(sampleAddresses(), ["ipv4"], "networkpolicy", i);
    for (const action of testCase.steps[0]?.actions ?? []) state.record(action);
    for (const verdict of referenceVerdicts(state.world(), MODEL_PODS, "ipv4", 80, "TCP").values()) {
      if (verdict) allowed++;
      else denied++;
    }
  });
  assert.ok(allowed > 0 && denied > 0, `allowed ${allowed}, denied ${denied}`);
});
