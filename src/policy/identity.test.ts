import assert from "node:assert/strict";
import { test } from "node:test";
import { FIRST_ALLOCATED_IDENTITY } from "./desired-state.ts";
import { IdentityReleaseError, LocalIdentityAllocator } from "./identity.ts";
import { parseCidr } from "./ip.ts";

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

test("LocalIdentityAllocator: a key is forgotten at its last reference, however many it had", () => {
  const ids = new LocalIdentityAllocator();
  const a = ids.allocate("a");
  ids.allocate("a");
  ids.allocate("a");
  ids.release("a");
  ids.release("a");
  assert.equal(ids.size, 1, "one reference left");
  ids.release("a");
  assert.equal(ids.size, 0);
  assert.throws(() => ids.release("a"), IdentityReleaseError);
  assert.equal(ids.allocate("a"), a + 1, "a fresh number once forgotten");
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
  const ids = new LocalIdentityAllocator({ first: 0xf000_0000 });
  assert.deepEqual([ids.allocate("a"), ids.allocate("b"), ids.allocate("a")], [0xf000_0000, 0xf000_0001, 0xf000_0000]);
});

test("LocalIdentityAllocator: releasing an unreferenced key is an error", () => {
  const ids = new LocalIdentityAllocator();
  assert.throws(() => ids.release("x"), { name: "IdentityReleaseError", message: 'Cannot release identity key "x": it holds no reference' });
  ids.allocate("y");
  ids.release("y");
  assert.throws(() => ids.release("y"), IdentityReleaseError);
});

test("LocalIdentityAllocator: numbers still in use elsewhere go back to their keys and to nobody else", () => {
  const ids = new LocalIdentityAllocator({ first: 1000, inUse: [{ id: 1003, key: "c" }, { id: 1001 }, { id: 5 }] });
  assert.equal(ids.allocate("a"), 1004, "numbering resumes above every number in use");
  assert.equal(ids.allocate("c"), 1003, "a key gets back the number it had");
  ids.release("c");
  assert.equal(ids.allocate("c"), 1005, "only once");
});

test("LocalIdentityAllocator: past the last number it wraps, skipping the numbers in use it was given, for a key or none", () => {
  const ids = new LocalIdentityAllocator({ first: 10, last: 14, inUse: [{ id: 11, key: "k" }, { id: 12 }] });
  assert.deepEqual([ids.allocate("a"), ids.allocate("b")], [13, 14]);
  ids.release("a");
  assert.deepEqual([ids.allocate("c"), ids.allocate("d")], [10, 13], "11 is kept for k and 12 for nobody");
  assert.throws(() => ids.allocate("e"), { name: "IdentitySpaceExhaustedError" });
  assert.equal(ids.allocate("k"), 11);
  ids.release("d");
  assert.equal(ids.allocate("f"), 13, "a number released after the wrap is free again");
});

test("LocalIdentityAllocator: past the last number it wraps, skipping numbers held, and says when none is left", () => {
  const ids = new LocalIdentityAllocator({ first: 10, last: 12 });
  assert.deepEqual([ids.allocate("a"), ids.allocate("b"), ids.allocate("c")], [10, 11, 12]);
  ids.release("b");
  assert.equal(ids.allocate("d"), 11);
  assert.throws(() => ids.allocate("e"), { name: "IdentitySpaceExhaustedError", message: 'Cannot allocate an identity for key "e": all 3 numbers from 10 are held' });
  ids.release("a");
  assert.equal(ids.allocate("e"), 10);
});

test("LocalIdentityAllocator: a prefix's own key is numbered by the prefix as by its text, one reference count for both", () => {
  const ids = new LocalIdentityAllocator();
  const prefix = parseCidr("10.1.0.0/16");
  const id = ids.allocatePrefix(prefix);
  assert.equal(ids.allocate('["cidr","10.1.0.0/16"]'), id, "the key's text names the same identity");
  assert.equal(ids.allocatePrefix(parseCidr("10.1.0.0/16")), id, "another object for the same prefix too");
  assert.equal(ids.size, 1);
  ids.release('["cidr","10.1.0.0/16"]');
  ids.releasePrefix(prefix);
  assert.equal(ids.size, 1, "one reference left");
  ids.releasePrefix(prefix);
  assert.equal(ids.size, 0);
  assert.throws(() => ids.releasePrefix(prefix), { name: "IdentityReleaseError", message: 'Cannot release identity key ["cidr","10.1.0.0/16"]: it holds no reference' });
  assert.equal(ids.allocatePrefix(prefix), id + 1, "a fresh number once forgotten");
});

test("LocalIdentityAllocator: a key that is not a canonical prefix's is numbered by its text", () => {
  const ids = new LocalIdentityAllocator();
  const canonical = ids.allocatePrefix(parseCidr("10.0.0.0/8"));
  // Hostile look-alikes: host bits set, a leading zero, a broken key, a family mismatch in the text.
  const others = ['["cidr","10.0.0.1/8"]', '["cidr","010.0.0.0/8"]', '["cidr","10.0.0.0/8"', '["cidr","10.0.0.0/8",1]', '["cidr","::ffff:10.0.0.0/104"]'].map((key) => ids.allocate(key));
  assert.equal(new Set([canonical, ...others]).size, 6, "six keys, six numbers");
  assert.equal(ids.allocatePrefix(parseCidr("fd00::/64")), canonical + 6);
  assert.equal(ids.allocate('["cidr","fd00::/64"]'), canonical + 6);
});

test("LocalIdentityAllocator: a prefix gets back the number kept for its key, and past the last number its number is skipped", () => {
  const ids = new LocalIdentityAllocator({ first: 10, last: 13, inUse: [{ id: 12, key: '["cidr","10.0.0.0/8"]' }, { id: 11, key: '["pod","x"]' }] });
  assert.equal(ids.allocatePrefix(parseCidr("10.0.0.0/8")), 12, "the kept number");
  assert.equal(ids.allocatePrefix(parseCidr("10.1.0.0/16")), 13);
  assert.equal(ids.allocatePrefix(parseCidr("10.2.0.0/16")), 10, "wrapped: 11 is kept, 12 and 13 held");
  assert.throws(() => ids.allocatePrefix(parseCidr("10.3.0.0/16")), { name: "IdentitySpaceExhaustedError", message: 'Cannot allocate an identity for key "[\\"cidr\\",\\"10.3.0.0/16\\"]": all 4 numbers from 10 are held' });
  ids.releasePrefix(parseCidr("10.1.0.0/16"));
  assert.equal(ids.allocatePrefix(parseCidr("10.3.0.0/16")), 13, "a prefix's number released after the wrap is free again");
});
