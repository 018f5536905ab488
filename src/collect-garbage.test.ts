import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectGarbage } from "./collect-garbage.ts";

describe("collectGarbage", () => {
  it("frees what is no longer referenced, at once and on every call", () => {
    for (let round = 0; round < 2; round++) {
      // Kept alive across allocations, so the young generation's collections promote it to the old one.
      let garbage: { index: number; text: string }[] | undefined = Array.from({ length: 400_000 }, (_, index) => ({ index, text: `item ${index}` }));
      assert.equal(garbage.length, 400_000);
      garbage = undefined;
      const before = process.memoryUsage().heapUsed;
      const ms = collectGarbage();
      const after = process.memoryUsage().heapUsed;
      assert.ok(before - after > 20e6, `round ${round}: heap used went from ${before} to ${after} bytes`);
      assert.ok(ms >= 0);
    }
  });
});
