import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { keysOf, withKey, withoutKey } from "./key-set.ts";
import type { KeySet } from "./key-set.ts";

test("a key set is nothing when empty, the key itself when one, a set from two on", () => {
  let keys: KeySet = withKey(undefined, "x/a");
  assert.equal(keys, "x/a");
  assert.equal(withKey(keys, "x/a"), "x/a", "a key added twice is there once");
  keys = withKey(keys, "x/b");
  assert.deepEqual(keys, new Set(["x/a", "x/b"]));
  assert.equal(withoutKey(keys, "x/c"), keys, "removing a key not there changes nothing");
  keys = withoutKey(keys, "x/a");
  assert.equal(keys, "x/b", "the last key left is held on its own again");
  assert.equal(withoutKey(keys, "x/a"), "x/b");
  assert.equal(withoutKey(keys, "x/b"), undefined);
  assert.deepEqual([...keysOf(undefined)], []);
});

test("any sequence of adds and removes holds what a Set holds, in its shape", () => {
  const op = fc.tuple(fc.boolean(), fc.constantFrom("a", "b", "c", "d"));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      let keys: KeySet;
      const model = new Set<string>();
      for (const [add, key] of ops) {
        keys = add ? withKey(keys, key) : withoutKey(keys, key);
        if (add) model.add(key);
        else model.delete(key);
        assert.deepEqual(new Set(keysOf(keys)), model);
        assert.equal(typeof keys, model.size === 0 ? "undefined" : model.size === 1 ? "string" : "object");
      }
    }),
  );
});
