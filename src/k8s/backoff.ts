/**
 * Jittered exponential backoff and an abortable sleep, for loops that must
 * retry forever without hammering the API server.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";

/** Options of {@linkcode Backoff}. */
export interface BackoffOptions {
  /** First delay; 500 ms by default. */
  initialMs?: number;
  /** Largest delay; 30 s by default. */
  maxMs?: number;
  /** Growth per attempt; 2 by default. */
  factor?: number;
  /** Fraction of each delay drawn at random, 0 to 1; 0.5 by default (a delay of d becomes d·(1 − 0.5·r) for r in [0, 1)). */
  jitter?: number;
  /** Source of randomness in [0, 1); `Math.random` by default. */
  random?: () => number;
}

/**
 * Delays that grow exponentially up to a cap, each shortened by a random
 * fraction so that many clients failing together do not retry together.
 *
 * @example
 * ```ts
 * const backoff = new Backoff({ initialMs: 100, maxMs: 30_000 });
 * for (;;) {
 *   try { await work(); backoff.reset(); }
 *   catch { await sleep(backoff.next(), signal); }
 * }
 * ```
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  /** A backoff at its first attempt. */
  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 500;
    this.#maxMs = options.maxMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.5;
    this.#random = options.random ?? Math.random;
  }

  /** How many delays were handed out since the last {@linkcode reset}. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The next delay in milliseconds; each call moves one attempt further. */
  next(): number {
    const base = Math.min(this.#maxMs, this.#initialMs * this.#factor ** this.#attempt);
    this.#attempt++;
    return Math.round(base * (1 - this.#jitter * this.#random()));
  }

  /** Starts over from the first delay, after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * Waits `ms` milliseconds. Resolves `true` after the full wait and `false`
 * as soon as `signal` fires (never rejects), so loops can just check the
 * result.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  try {
    await delay(ms, undefined, signal ? { signal } : {});
    return true;
  } catch {
    return false;
  }
}
