import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectGarbage } from "./collect-garbage.ts";
import type { LogFields } from "./logger.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("collectGarbage", () => {
  it("frees what is no longer referenced, at once and on every call, and says so", () => {
    for (let round = 0; round < 2; round++) {
      // Kept alive across allocations, so the young generation's collections promote it to the old one.
      let garbage: { index: number; text: string }[] | undefined = Array.from({ length: 400_000 }, (_, index) => ({ index, text: `item ${index}` }));
      assert.equal(garbage.length, 400_000);
      garbage = undefined;
      const before = process.memoryUsage().heapUsed;
      const logged: { fields: LogFields; message: string }[] = [];
      collectGarbage({ ...quiet, info: (fields, message) => logged.push({ fields, message }) }, "the test's garbage");
      const after = process.memoryUsage().heapUsed;
      assert.ok(before - after > 20e6, `round ${round}: heap used went from ${before} to ${after} bytes`);
      assert.equal(logged.length, 1);
      assert.equal(logged[0]?.message, "Collected the test's garbage");
      assert.deepEqual(Object.keys(logged[0]?.fields ?? {}), ["ms", "rssBeforeMb", "rssAfterMb"]);
    }
  });
});
