import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Logger } from "./logger.ts";
import { WorkQueue } from "./workqueue.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe("WorkQueue", () => {
  it("processes a key added twice before a worker takes it once", async () => {
    const queue = new WorkQueue<string>({ logger: quiet });
    queue.add("a");
    queue.add("b");
    queue.add("a");
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), "a");
    assert.equal(await queue.get(), "b");
    assert.equal(queue.length, 0);
  });

  it("processes a key re-added while processing again, after done, never concurrently", async () => {
    const queue = new WorkQueue<string>({ logger: quiet });
    queue.add("a");
    const key = await queue.get();
    assert.equal(key, "a");
    queue.add("a");
    queue.add("a");
    assert.equal(queue.length, 0, "a key being processed is not handed out again before done");
    queue.done("a");
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), "a");
    queue.done("a");
    assert.equal(queue.length, 0);
  });

  it("hands a key to a waiting worker at once", async () => {
    const queue = new WorkQueue<number>({ logger: quiet });
    const pending = queue.get();
    queue.add(7);
    assert.equal(await pending, 7);
    queue.add(7);
    assert.equal(queue.length, 0, "re-added while processing: held back until done");
    queue.done(7);
    assert.equal(await queue.get(), 7);
  });

  it("doubles the retry delay per failure up to the cap, and forget resets it", () => {
    const queue = new WorkQueue<string>({ baseDelayMs: 5, maxDelayMs: 100, logger: quiet });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      delays.push(queue.retryDelay("k"));
      queue.addRateLimited("k");
    }
    queue.shutdown();
    assert.deepEqual(delays, [5, 10, 20, 40, 80, 100, 100]);
    assert.equal(queue.numRequeues("k"), 7);
    assert.equal(queue.retryDelay("other"), 5, "backoff is per key");
    queue.forget("k");
    assert.equal(queue.numRequeues("k"), 0);
    assert.equal(queue.retryDelay("k"), 5);
  });

  it("re-queues a rate-limited key only after its delay", async () => {
    const queue = new WorkQueue<string>({ baseDelayMs: 60, logger: quiet });
    const start = Date.now();
    queue.addRateLimited("k");
    assert.equal(queue.length, 0);
    assert.equal(await queue.get(), "k");
    assert.ok(Date.now() - start >= 55, `came back after ${Date.now() - start} ms`);
    queue.shutdown();
  });

  it("keeps the sooner of two delayed adds of one key", async () => {
    const queue = new WorkQueue<string>({ logger: quiet });
    const start = Date.now();
    queue.addAfter("k", 5_000);
    queue.addAfter("k", 20);
    assert.equal(await queue.get(), "k");
    assert.ok(Date.now() - start < 2_000);
    queue.done("k");
    queue.shutdown();
  });

  it("hands out a key in backoff at once when it is added again (an object corrected after failures)", async () => {
    const queue = new WorkQueue<string>({ baseDelayMs: 60_000, logger: quiet });
    for (let i = 0; i < 5; i++) queue.addRateLimited("policy");
    assert.equal(queue.length, 0, "in backoff for minutes");
    queue.add("policy");
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), "policy");
    queue.done("policy");
    queue.shutdown();
  });

  it("retries a failing handler with growing delays until it succeeds, then forgets", async () => {
    const queue = new WorkQueue<string>({ baseDelayMs: 10, logger: quiet });
    const calls: number[] = [];
    const workers = queue.runWorkers(2, async (key) => {
      assert.equal(key, "flaky");
      calls.push(Date.now());
      if (calls.length < 4) throw new Error("not yet");
      queue.shutdown();
    });
    queue.add("flaky");
    await workers;
    assert.equal(calls.length, 4);
    const gaps = calls.slice(1).map((t, i) => t - (calls[i] as number));
    // Delays 10, 20, 40 ms; timers may fire a little late, never early.
    assert.ok((gaps[0] as number) >= 9 && (gaps[1] as number) >= 19 && (gaps[2] as number) >= 39, `gaps ${gaps.join(", ")}`);
    assert.equal(queue.numRequeues("flaky"), 0);
  });

  it("never runs one key in two workers at once", async () => {
    const queue = new WorkQueue<string>({ logger: quiet });
    const active = new Set<string>();
    let overlaps = 0;
    let runs = 0;
    const workers = queue.runWorkers(4, async (key) => {
      if (active.has(key)) overlaps++;
      active.add(key);
      runs++;
      await new Promise((r) => setTimeout(r, 2));
      if (runs === 1) queue.add(key);
      active.delete(key);
    });
    for (let i = 0; i < 20; i++) queue.add("k");
    // The workers were already waiting, so "k" is in processing now; idle() covers the re-run too.
    await queue.idle();
    queue.shutdown();
    await workers;
    assert.equal(overlaps, 0);
    assert.equal(runs, 2, "20 adds before processing give one run; the add during it gives one more");
  });

  it("lets workers drain queued keys on shutdown and then stop; ignores later adds", async () => {
    const queue = new WorkQueue<string>({ logger: quiet });
    queue.add("a");
    queue.add("b");
    queue.addAfter("c", 10_000);
    queue.shutdown();
    queue.add("d");
    const seen: string[] = [];
    await queue.runWorkers(1, async (key) => {
      seen.push(key);
    });
    assert.deepEqual(seen, ["a", "b"]);
    assert.equal(await queue.get(), undefined);
  });

  it("wakes waiting workers with undefined on shutdown", async () => {
    const queue = new WorkQueue<string>({ logger: quiet });
    const waiting = [queue.get(), queue.get()];
    queue.shutdown();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
  });
});
