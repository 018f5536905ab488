/**
 * One frozen copy of equal values held by many objects (the pods of one
 * workload have the same labels and named ports, thousands of policy rules
 * the same ports), kept only as long as something holds it: an entry goes
 * once its value is collected, so values nothing holds any more are not kept.
 *
 * @module
 */

/**
 * Equal values by a key that says when they are equal, each held weakly.
 *
 * @example
 * ```ts
 * const labels = new SharedValues<Record<string, string>>();
 * const a = labels.shared(JSON.stringify([["app", "web"]]), () => ({ app: "web" }));
 * labels.shared(JSON.stringify([["app", "web"]]), () => ({ app: "web" })) === a; // true while `a` is held
 * ```
 */
export class SharedValues<T extends object> {
  readonly #byKey = new Map<string, WeakRef<T>>();
  readonly #collected = new FinalizationRegistry<string>((key) => {
    // The key may name a newer value by now.
    if (this.#byKey.get(key)?.deref() === undefined) this.#byKey.delete(key);
  });

  /** The value held under `key`, or `make()`'s, frozen (shallowly: freeze what it holds in `make`), held from now on. */
  shared(key: string, make: () => T): T {
    const held = this.#byKey.get(key)?.deref();
    if (held !== undefined) return held;
    const value = Object.freeze(make());
    this.#byKey.set(key, new WeakRef(value));
    this.#collected.register(value, key);
    return value;
  }

  /** How many keys are held (for tests). */
  get size(): number {
    return this.#byKey.size;
  }
}
