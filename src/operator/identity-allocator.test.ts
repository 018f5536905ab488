import assert from "node:assert/strict";
import { test } from "node:test";
import { FIRST_NODE_LOCAL_IDENTITY } from "../policy/desired-state.ts";
import { OperatorIdentityAllocator } from "./identity-allocator.ts";

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test("keeps the numbers of existing objects and gives new keys the lowest free number", () => {
  const table = new OperatorIdentityAllocator([{ id: 256, key: "a" }, { id: 258, key: "c" }]);
  assert.equal(table.allocate("c"), 258);
  assert.equal(table.allocate("a"), 256);
  assert.equal(table.allocate("b"), 257, "the gap");
  assert.equal(table.allocate("d"), 259);
  assert.equal(table.allocate("b"), 257, "a second reference");
  assert.deepEqual(table.missing(({ id }) => id !== 257 && id !== 259), [{ id: 257, key: "b" }, { id: 259, key: "d" }]);
});

test("collects a number only after the grace period without references, and never reuses it before its object is gone", () => {
  const { now, advance } = clock();
  const table = new OperatorIdentityAllocator([], now);
  assert.equal(table.allocate("a"), 256);
  table.release("a");
  advance(29_000);
  assert.deepEqual(table.collectible(30_000), []);
  assert.equal(table.allocate("b"), 257, "256 is still a's");
  advance(1_000);
  assert.deepEqual(table.collectible(30_000), [{ id: 256, key: "a" }]);
  assert.equal(table.allocate("c"), 258, "still not free: the object exists until seen deleted");
  table.forget(256);
  assert.equal(table.allocate("d"), 256);
});

test("a key used again within the grace period keeps its number", () => {
  const { now, advance } = clock();
  const table = new OperatorIdentityAllocator([{ id: 300, key: "a" }], now);
  assert.deepEqual(table.collectible(1_000), [], "unused from now on");
  advance(500);
  assert.equal(table.allocate("a"), 300);
  advance(5_000);
  assert.deepEqual(table.collectible(1_000), []);
  table.release("a");
  advance(999);
  assert.deepEqual(table.collectible(1_000), []);
  advance(1);
  assert.deepEqual(table.collectible(1_000), [{ id: 300, key: "a" }]);
});

test("an in-use number whose object was deleted stays, to be created again", () => {
  const table = new OperatorIdentityAllocator([{ id: 256, key: "a" }]);
  table.allocate("a");
  table.forget(256);
  assert.equal(table.keyOf(256), "a");
  assert.deepEqual(table.missing(() => false), [{ id: 256, key: "a" }]);
});

test("duplicates: the lowest number wins, the other is collectible, a conflicting number is reported", () => {
  const { now, advance } = clock();
  const table = new OperatorIdentityAllocator([{ id: 260, key: "a" }], now);
  assert.equal(table.allocate("a"), 260);
  assert.deepEqual(table.observe(257, "a"), ["a"], "a lower duplicate renumbers a");
  assert.equal(table.numberOf("a"), 257);
  assert.deepEqual(table.observe(257, "a"), []);
  table.collectible(10);
  advance(10);
  assert.deepEqual(table.collectible(10), [{ id: 260, key: "a" }]);
  assert.equal(table.observe(257, "b"), "conflict");
  assert.equal(table.size, 2);
  assert.equal(table.inUse, 1);
});

test("address-derived keys are each node's: never an object, and an existing object of one is collected after the grace period", () => {
  const { now, advance } = clock();
  const cidr = '["cidr","10.0.0.0/8"]';
  const table = new OperatorIdentityAllocator([{ id: 256, key: cidr }], now);
  const id = table.allocate(cidr);
  assert.ok(id >= FIRST_NODE_LOCAL_IDENTITY, "a number of the operator's own, not the object's");
  assert.equal(table.allocate('["host",null]'), id + 1);
  assert.equal(table.allocate("a"), 257);
  assert.deepEqual(table.missing(() => false), [{ id: 257, key: "a" }], "only the label-derived key is to be created");
  assert.equal(table.inUse, 1);
  table.release(cidr);
  assert.throws(() => table.release(cidr), { name: "IdentityReleaseError" });
  assert.deepEqual(table.collectible(30_000), []);
  advance(30_000);
  assert.deepEqual(table.collectible(30_000), [{ id: 256, key: cidr }], "the object an older operator made goes");
});
