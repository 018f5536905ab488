import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bounded } from "./bounded.ts";

/** Work that records when each item starts and how many are in flight, each finishing after `delayMs(item)`. */
function recorder(delayMs: (item: number) => number = () => 1) {
  const started: number[] = [];
  let inFlight = 0;
  let most = 0;
  const work = async (item: number): Promise<void> => {
    started.push(item);
    most = Math.max(most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, delayMs(item)));
    inFlight--;
  };
  return { work, started, most: () => most, inFlight: () => inFlight };
}

describe("bounded", () => {
  it("runs every item once, in order of start, with at most the limit in flight, and reaches it", async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const r = recorder((item) => 1 + (item % 3));
    await bounded(items, 8, r.work);
    assert.deepEqual(r.started, items);
    assert.equal(r.most(), 8);
    assert.equal(r.inFlight(), 0);
  });

  it("starts every item at once when they are fewer than the limit", async () => {
    const r = recorder();
    await bounded([1, 2, 3], 16, r.work);
    assert.deepEqual(r.started, [1, 2, 3]);
    assert.equal(r.most(), 3);
    await bounded([], 16, r.work);
  });

  it("after a failure starts no further item, waits for those in flight and rejects with the first error", async () => {
    const r = recorder((item) => (item === 1 ? 20 : 1));
    const failing = async (item: number): Promise<void> => {
      await r.work(item);
      if (item === 2 || item === 3) throw new Error(`item ${item} failed`);
    };
    await assert.rejects(bounded([0, 1, 2, 3, 4, 5, 6], 3, failing), /item 2 failed/);
    assert.equal(r.inFlight(), 0, "the slow item in flight finished before the rejection");
    assert.ok(!r.started.includes(5) && !r.started.includes(6), `started ${r.started.join(", ")}`);
  });
});
