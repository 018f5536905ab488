import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff, sleep } from "./backoff.ts";

describe("Backoff", () => {
  it("grows exponentially to the cap and starts over on reset", () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0 });
    assert.deepEqual(Array.from({ length: 6 }, () => backoff.next()), [100, 200, 400, 800, 1_000, 1_000]);
    assert.equal(backoff.attempt, 6);
    backoff.reset();
    assert.equal(backoff.next(), 100);
  });

  it("shortens each delay by at most the jitter fraction", () => {
    const low = new Backoff({ initialMs: 1_000, jitter: 0.5, random: () => 0.999 });
    const high = new Backoff({ initialMs: 1_000, jitter: 0.5, random: () => 0 });
    assert.equal(low.next(), 500);
    assert.equal(high.next(), 1_000);
  });

  it("sleep resolves false at once when aborted", async () => {
    const controller = new AbortController();
    const start = Date.now();
    const slept = sleep(10_000, controller.signal);
    controller.abort();
    assert.equal(await slept, false);
    assert.ok(Date.now() - start < 1_000);
    assert.equal(await sleep(1), true);
  });
});
