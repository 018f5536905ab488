import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findCondition, formatTime, setCondition, setConditions } from "./conditions.ts";

const t1 = new Date("2025-01-01T10:00:00.250Z");
const t2 = new Date("2025-01-01T11:00:00Z");

describe("conditions", () => {
  it("formats times as metav1.Time does, in whole seconds", () => {
    assert.equal(formatTime(t1), "2025-01-01T10:00:00Z");
  });

  it("appends a new condition with the transition time and observed generation", () => {
    const out = setCondition(undefined, { type: "Accepted", status: "True", reason: "Valid", message: "ok" }, 3, t1);
    assert.deepEqual(out, [{ type: "Accepted", status: "True", observedGeneration: 3, lastTransitionTime: "2025-01-01T10:00:00Z", reason: "Valid", message: "ok" }]);
  });

  it("keeps lastTransitionTime while the status holds and moves it when the status changes", () => {
    const first = setCondition(undefined, { type: "Programmed", status: "False", reason: "Pending", message: "0/2 nodes" }, 1, t1);
    const same = setCondition(first, { type: "Programmed", status: "False", reason: "Pending", message: "1/2 nodes" }, 2, t2);
    assert.equal(findCondition(same, "Programmed")?.lastTransitionTime, "2025-01-01T10:00:00Z");
    assert.equal(findCondition(same, "Programmed")?.observedGeneration, 2);
    assert.equal(findCondition(same, "Programmed")?.message, "1/2 nodes");
    const flipped = setCondition(same, { type: "Programmed", status: "True", reason: "Programmed", message: "2/2 nodes" }, 2, t2);
    assert.equal(findCondition(flipped, "Programmed")?.lastTransitionTime, "2025-01-01T11:00:00Z");
    assert.equal(first[0]?.message, "0/2 nodes", "the input list is not modified");
  });

  it("sets several conditions, keeping order and unrelated ones", () => {
    const start = setConditions(undefined, [
      { type: "Accepted", status: "True", reason: "Valid", message: "" },
      { type: "Other", status: "Unknown", reason: "NotChecked", message: "" },
    ], 1, t1);
    const out = setConditions(start, [{ type: "Accepted", status: "False", reason: "InvalidPort", message: "bad" }, { type: "Programmed", status: "True", reason: "Programmed", message: "" }], 2, t2);
    assert.deepEqual(out.map((c) => [c.type, c.status, c.observedGeneration]), [["Accepted", "False", 2], ["Other", "Unknown", 1], ["Programmed", "True", 2]]);
  });
});
