import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { SharedValues } from "./shared-values.ts";

setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

describe("SharedValues", () => {
  it("gives one frozen value per key while it is held", () => {
    const values = new SharedValues<{ n: number }>();
    const a = values.shared("a", () => ({ n: 1 }));
    assert.equal(values.shared("a", () => ({ n: 2 })), a);
    assert.equal(a.n, 1);
    assert.ok(Object.isFrozen(a));
    assert.notEqual(values.shared("b", () => ({ n: 1 })), a);
    assert.equal(values.size, 2);
  });

  it("lets a value go once nothing holds it, and its key with it", async () => {
    const values = new SharedValues<{ n: number }>();
    (() => void values.shared("gone", () => ({ n: 1 })))();
    const kept = values.shared("kept", () => ({ n: 2 }));
    // The registry's callbacks run in tasks after a collection: a few rounds, each a collection and a turn.
    for (let round = 0; round < 20 && values.size > 1; round++) {
      collect();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(values.size, 1);
    assert.equal(values.shared("kept", () => ({ n: 3 })), kept);
    assert.equal(values.shared("gone", () => ({ n: 4 })).n, 4);
  });
});
