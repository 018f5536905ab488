import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { KeyIndex, sameBytes } from "./key-index.ts";

/** `count` distinct random keys of `size` bytes, back to back. */
function distinctKeys(count: number, size: number): Buffer {
  const seen = new Set<string>();
  const keys: Buffer[] = [];
  while (keys.length < count) {
    const key = randomBytes(size);
    if (!seen.has(key.toString("hex"))) keys.push(key);
    seen.add(key.toString("hex"));
  }
  return Buffer.concat(keys);
}

describe("KeyIndex", () => {
  it("finds every key at its position, in its own buffer and in another", () => {
    const keys = distinctKeys(5000, 12);
    const index = new KeyIndex(keys, 12, 5000);
    for (let i = 0; i < 5000; i++) {
      assert.equal(index.find(keys, i * 12), i);
      assert.equal(index.find(Buffer.from(keys.subarray(i * 12, (i + 1) * 12)), 0), i);
      assert.ok(index.holds(i));
    }
  });

  it("finds no key it does not hold, including ones that differ in their last byte only", () => {
    const keys = distinctKeys(1000, 8);
    const index = new KeyIndex(keys, 8, 1000);
    const known = new Set(Array.from({ length: 1000 }, (_, i) => keys.toString("hex", i * 8, (i + 1) * 8)));
    for (let i = 0; i < 1000; i++) {
      const other = Buffer.from(keys.subarray(i * 8, (i + 1) * 8));
      other[7] = other[7]! ^ 1;
      assert.equal(index.find(other, 0), known.has(other.toString("hex")) ? keys.indexOf(other) / 8 : -1);
    }
    assert.equal(new KeyIndex(Buffer.alloc(0), 0, 0).find(Buffer.alloc(4), 0), -1, "an empty read holds nothing");
  });

  it("finds a key present twice at its last position, and says the earlier one is not held", () => {
    const a = Buffer.from("00010203", "hex");
    const b = Buffer.from("04050607", "hex");
    const index = new KeyIndex(Buffer.concat([a, b, a]), 4, 3);
    assert.equal(index.find(a, 0), 2);
    assert.equal(index.find(b, 0), 1);
    assert.deepEqual([0, 1, 2].map((i) => index.holds(i)), [false, true, true]);
  });

  it("keys that share every byte but one (a policy slot's entries) all stay apart", () => {
    const keys = Buffer.alloc(70_000 * 16);
    for (let i = 0; i < 70_000; i++) keys.writeUInt32LE(i, i * 16 + 8);
    const index = new KeyIndex(keys, 16, 70_000);
    for (let i = 0; i < 70_000; i += 7) assert.equal(index.find(keys, i * 16), i);
  });
});

describe("sameBytes", () => {
  it("compares ranges of two buffers", () => {
    const a = Buffer.from("aabbccdd", "hex");
    assert.ok(sameBytes(a, 1, Buffer.from("00bbcc", "hex"), 1, 2));
    assert.ok(!sameBytes(a, 0, Buffer.from("aabbce", "hex"), 0, 3));
  });
});
