/**
 * Polling for a condition in tests that wait on real components: the value
 * once `check` yields one, or an error after `timeoutMs` naming what was
 * awaited, the last error `check` threw, and whatever `context` adds (recent
 * log lines, say). A wait, never a timed assertion: the timeout only bounds
 * a hang.
 *
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Diagnostics appended to the timeout error. */
  context?: () => string;
}

/** Polls `check` until it returns something other than undefined or false. */
export async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, options: EventuallyOptions = {}): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 100, context } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const extra = context ? `\n${context()}` : "";
      throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}${last ? ` (last error: ${String(last)})` : ""}${extra}`);
    }
    await sleep(intervalMs);
  }
}
