import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { FIRST_NODE_LOCAL_IDENTITY, identityInMemory, kernelIdentity } from "./desired-state.ts";
import { IdentitySet } from "./identity-set.ts";

/** How many typed arrays of the set's kind `run` makes: a copy to grow is not otherwise observable. */
function uint32ArraysMade(run: () => void): number {
  const original = globalThis.Uint32Array;
  let made = 0;
  globalThis.Uint32Array = class extends original {
    constructor(...args: [number]) {
      super(...args);
      made++;
    }
  } as unknown as Uint32ArrayConstructor;
  try {
    run();
  } finally {
    globalThis.Uint32Array = original;
  }
  return made;
}

type Op = { op: "add" | "delete" | "has"; id: number } | { op: "addAll"; ids: number[] };

// In-memory numbers: small ones, the operator's largest, and node-local ones (negative offsets).
const id = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(FIRST_NODE_LOCAL_IDENTITY - 1, identityInMemory(FIRST_NODE_LOCAL_IDENTITY), identityInMemory(0xffff_ffff)));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom("add" as const, "delete" as const, "has" as const), id }),
  fc.record({ op: fc.constant("addAll" as const), ids: fc.array(id, { maxLength: 12 }) }),
);

describe("IdentitySet", () => {
  test("answers as a Set of the same operations does, iterating in the ascending order of the kernel's numbers", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const set = new IdentitySet();
        const reference = new Set<number>();
        for (const step of ops) {
          if (step.op === "addAll") {
            set.addAll(step.ids);
            for (const id of step.ids) reference.add(id);
          } else if (step.op === "add") {
            assert.equal(set.add(step.id), !reference.has(step.id));
            reference.add(step.id);
          } else if (step.op === "delete") {
            assert.equal(set.delete(step.id), reference.delete(step.id));
          } else {
            assert.equal(set.has(step.id), reference.has(step.id));
          }
          assert.equal(set.size, reference.size);
          assert.deepEqual([...set], [...reference].sort((a, b) => kernelIdentity(a) - kernelIdentity(b)));
        }
      }),
    );
  });

  test("an empty set holds nothing, and addAll of nothing keeps it so", () => {
    const set = new IdentitySet();
    set.addAll([]);
    assert.equal(set.size, 0);
    assert.equal(set.has(0), false);
    assert.equal(set.delete(0), false);
    assert.deepEqual([...set], []);
  });

  test("a set filled by addAll takes a few members more without copying itself: the first change after a full sync does not copy every set it touches", () => {
    const set = new IdentitySet();
    set.addAll(Array.from({ length: 1000 }, (_, i) => 256 + 2 * i));
    assert.equal(
      uint32ArraysMade(() => {
        for (const id of [257, 259, 5000, 5001]) assert.ok(set.add(id));
      }),
      0,
    );
    assert.equal(uint32ArraysMade(() => assert.ok(set.add(5002))), 1, "the next one copies it, with room to grow");
    assert.equal(set.size, 1005);
    assert.deepEqual([...set].slice(0, 4), [256, 257, 258, 259]);
  });
});
