import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatTable, growth, median, quantile, shortCount } from "./stats.ts";

describe("benchmark statistics", () => {
  test("median and quantiles interpolate between ranks", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
    assert.equal(quantile([10, 20], 0.75), 17.5);
    assert.throws(() => median([]), RangeError);
  });

  test("growth and counts read as the tables print them", () => {
    assert.equal(growth(110, 100), "+10.0%");
    assert.equal(growth(95, 100), "-5.0%");
    assert.deepEqual([1, 100, 1000, 10_000, 65_536, 1_000_000].map(shortCount), ["1", "100", "1k", "10k", "65k", "1M"]);
  });

  test("tables pad every column to one width", () => {
    const lines = formatTable(["name", "ns"], [["a", "1"], ["longer", "12345"]]).split("\n");
    assert.deepEqual(lines, ["| name   |    ns |", "|--------|------:|", "| a      |     1 |", "| longer | 12345 |"]);
  });
});
