/**
 * A full garbage collection on demand, for the one moment a long-running
 * process knows it has just dropped most of what it allocated: the agent's
 * full sync, which compiles and writes every object at once, allocating
 * several times what it keeps.
 *
 * V8 collects the old generation only once it has grown to a multiple of
 * what survived the last full collection, so that garbage would stay
 * resident until later changes fill the heap that far: a caught-up agent
 * held 360-450 MB of which 80-110 MB was alive (scale world at factor
 * 0.25, `bench/scale.ts`), and kept it while idle. Collecting once after
 * the full sync costs one pause and leaves the heap's next limit set from
 * what the agent keeps. (The operator does the same after rebuilding its
 * identity table from every input.) V8's memory saver mode (`--memory-saver-mode`) kept
 * the heap even smaller, but made every commit 1.5-2× slower
 * (`bench/compiler-scale.ts`), so it is not used. Nor is V8's last-resort
 * collection (`gc({ flavor: "last-resort" })`): it hands the emptied pages
 * back at once rather than when V8's memory reducer runs, tens of seconds
 * later, but the commits after it were 30-60% slower at the median (pod and
 * namespace relabels in `bench/compiler-scale.ts` at factor 1).
 *
 * Node exposes `gc()` only to processes started with `--expose-gc`, which
 * `NODE_OPTIONS` does not accept: the flag is set on the running process
 * and the function taken from a new context, which V8 gives it from then on.
 *
 * @module
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Logger } from "./logger.ts";

let gc: ((options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void) | undefined;

/**
 * Runs a full, compacting garbage collection now, then
 * `releaseNative` (if given: a process with native allocations returns what they freed), and logs,
 * at info, that `what` was collected, with the pause and the RSS before and after. `lastResort`: V8's
 * last-resort collection, which also unmaps the heap pages the collection emptied (see above for its cost).
 *
 * @example
 * ```ts
 * await loop.ready; // the full sync is written
 * collectGarbage(log, "the full sync's garbage", releaseFreeMemory);
 * ```
 */
export function collectGarbage(log: Logger, what: string, releaseNative?: () => void, lastResort = false): void {
  if (gc === undefined) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  const rssBefore = process.memoryUsage.rss();
  const started = performance.now();
  if (lastResort) gc({ type: "major", execution: "sync", flavor: "last-resort" });
  else gc();
  releaseNative?.();
  const ms = Math.round(performance.now() - started);
  log.info({ ms, rssBeforeMb: Math.round(rssBefore / 1e6), rssAfterMb: Math.round(process.memoryUsage.rss() / 1e6) }, `Collected ${what}`);
}
