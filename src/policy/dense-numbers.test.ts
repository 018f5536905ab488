import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DenseNumbers } from "./dense-numbers.ts";

test("a freed number is the next handed out, and a held key keeps its number", () => {
  const numbers = new DenseNumbers<string>();
  assert.deepEqual(["a", "b", "c"].map((key) => numbers.number(key)), [0, 1, 2]);
  assert.equal(numbers.number("b"), 1, "numbering a held key again gives its number");
  numbers.delete("b");
  numbers.delete("b");
  numbers.delete("z");
  assert.equal(numbers.get("b"), undefined);
  assert.equal(numbers.number("d"), 1);
  assert.equal(numbers.number("b"), 3, "a key back after its deletion is numbered anew");
  assert.equal(numbers.capacity, 4);
  assert.deepEqual([...numbers.entries()], [["a", 0], ["c", 2], ["d", 1], ["b", 3]]);
});

test("any sequence of numberings and deletions holds what a Map holds, numbers distinct and below the most keys held at once", () => {
  const op = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 11 }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const numbers = new DenseNumbers<number>();
      const model = new Map<number, number>();
      let most = 0;
      for (const [add, key] of ops) {
        if (add) {
          const number = numbers.number(key);
          const held = model.get(key);
          if (held !== undefined) assert.equal(number, held, "a held key keeps its number");
          model.set(key, number);
        } else {
          numbers.delete(key);
          model.delete(key);
        }
        most = Math.max(most, model.size);
        assert.deepEqual(new Map(numbers.entries()), model);
        assert.equal(numbers.size, model.size);
        for (let key = 0; key <= 11; key++) assert.equal(numbers.get(key), model.get(key));
        assert.equal(new Set(model.values()).size, model.size, "numbers held are distinct");
        assert.ok(numbers.capacity <= most, `capacity ${numbers.capacity} above the ${most} keys held at most: freed numbers were not reused`);
        for (const number of model.values()) assert.ok(number < numbers.capacity);
      }
    }),
    { numRuns: 300 },
  );
});
