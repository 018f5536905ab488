import assert from "node:assert/strict";
import { test } from "node:test";
import { FIRST_ALLOCATED_IDENTITY } from "./desired-state.ts";
import { IdentityReleaseError, LocalIdentityAllocator } from "./identity.ts";

test("LocalIdentityAllocator: one identity per key from 256, shared while referenced", () => {
  const ids = new LocalIdentityAllocator();
  const a = ids.allocate("a");
  assert.equal(a, FIRST_ALLOCATED_IDENTITY);
  assert.equal(ids.allocate("b"), a + 1);
  assert.equal(ids.allocate("a"), a);
  assert.equal(ids.size, 2);
  ids.release("a");
  assert.equal(ids.allocate("a"), a, "still referenced once, so the same identity");
});

test("LocalIdentityAllocator: a freed key gets a fresh number, never a reused one", () => {
  const ids = new LocalIdentityAllocator();
  const a = ids.allocate("a");
  ids.release("a");
  assert.equal(ids.size, 0);
  const again = ids.allocate("a");
  const b = ids.allocate("b");
  assert.deepEqual([again, b], [a + 1, a + 2]);
});

test("LocalIdentityAllocator: numbers from the first it is given", () => {
  const ids = new LocalIdentityAllocator(0xf000_0000);
  assert.deepEqual([ids.allocate("a"), ids.allocate("b"), ids.allocate("a")], [0xf000_0000, 0xf000_0001, 0xf000_0000]);
});

test("LocalIdentityAllocator: releasing an unreferenced key is an error", () => {
  const ids = new LocalIdentityAllocator();
  assert.throws(() => ids.release("x"), { name: "IdentityReleaseError", message: 'Cannot release identity key "x": it holds no reference' });
  ids.allocate("y");
  ids.release("y");
  assert.throws(() => ids.release("y"), IdentityReleaseError);
});
