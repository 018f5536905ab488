import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { MAX_PORT, PortRangeError, portPrefixOf, portPrefixRange, portRangePrefixes } from "./port-ranges.ts";

test("portRangePrefixes: known decompositions", () => {
  assert.deepEqual(portRangePrefixes(80, 80), [{ port: 80, prefixLen: 16 }]);
  assert.deepEqual(portRangePrefixes(0, MAX_PORT), [{ port: 0, prefixLen: 0 }]);
  assert.deepEqual(portRangePrefixes(8000, 8003), [{ port: 8000, prefixLen: 14 }]);
  assert.deepEqual(portRangePrefixes(1, 6), [
    { port: 1, prefixLen: 16 },
    { port: 2, prefixLen: 15 },
    { port: 4, prefixLen: 15 },
    { port: 6, prefixLen: 16 },
  ]);
  assert.deepEqual(portRangePrefixes(32768, MAX_PORT), [{ port: 32768, prefixLen: 1 }]);
  assert.equal(portRangePrefixes(1, MAX_PORT - 1).length, 30);
});

test("portRangePrefixes: aligned blocks that tile the range exactly, each maximal (so the list is minimal)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_PORT }), fc.integer({ min: 0, max: MAX_PORT }), (a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const prefixes = portRangePrefixes(lo, hi);
      let next = lo;
      for (const prefix of prefixes) {
        const [first, last] = portPrefixRange(prefix);
        assert.equal(first, next, "contiguous, ascending");
        assert.deepEqual(portPrefixOf(first, prefix.prefixLen), prefix, "aligned");
        if (prefix.prefixLen > 0) {
          // The enclosing block must stick out of the range, or this one was not maximal.
          const [parentFirst, parentLast] = portPrefixRange(portPrefixOf(first, prefix.prefixLen - 1));
          assert.ok(parentFirst < lo || parentLast > hi, `${JSON.stringify(prefix)} could merge with its sibling`);
        }
        next = last + 1;
      }
      assert.equal(next, hi + 1, "covers up to hi");
    }),
    { numRuns: 2000 },
  );
});

test("portRangePrefixes: refuses what is not a range of ports", () => {
  assert.throws(() => portRangePrefixes(80, 70), { name: "PortRangeError", message: "Cannot decompose port range [80, 70]: expected 0 <= lo <= hi <= 65535" });
  assert.throws(() => portRangePrefixes(-1, 5), PortRangeError);
  assert.throws(() => portRangePrefixes(0, 65536), PortRangeError);
  assert.throws(() => portRangePrefixes(1.5, 2), PortRangeError);
});

test("portPrefixOf and portPrefixRange", () => {
  assert.deepEqual(portPrefixOf(8002, 14), { port: 8000, prefixLen: 14 });
  assert.deepEqual(portPrefixOf(8002, 0), { port: 0, prefixLen: 0 });
  assert.deepEqual(portPrefixOf(8002, 16), { port: 8002, prefixLen: 16 });
  assert.deepEqual(portPrefixRange({ port: 0, prefixLen: 0 }), [0, MAX_PORT]);
  assert.deepEqual(portPrefixRange({ port: 443, prefixLen: 16 }), [443, 443]);
});
