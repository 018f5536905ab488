import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { seededRandom } from "../../src/conformance/random-cases.ts";
import { formatTable, growth, median, medianInterval, quantile, shortCount, shuffle } from "./stats.ts";

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

  test("a median interval takes the order statistics the binomial distribution allows", () => {
    // n = 10: [x(2), x(9)] misses the median with 2 * 11/1024; [x(3), x(8)] with 2 * 56/1024, too often for 95%.
    const ten = medianInterval([5, 1, 4, 2, 3, 9, 7, 8, 6, 10]);
    assert.deepEqual([ten.low, ten.high], [2, 9]);
    assert.ok(Math.abs(ten.confidence - (1 - 22 / 1024)) < 1e-12);
    // n = 20: [x(6), x(15)] (2 * 0.0207 missed).
    const twenty = medianInterval(Array.from({ length: 20 }, (_, i) => 20 - i));
    assert.deepEqual([twenty.low, twenty.high], [6, 15]);
    assert.ok(twenty.confidence >= 0.95 && twenty.confidence < 0.96);
    // n = 4: no 95% interval exists; the range, with the confidence it has.
    const four = medianInterval([4, 3, 2, 1]);
    assert.deepEqual([four.low, four.high, four.confidence], [1, 4, 1 - 2 / 16]);
    assert.throws(() => medianInterval([]), RangeError);
  });

  test("a seeded shuffle is a permutation and repeats with its seed", () => {
    const once = shuffle([1, 2, 3, 4, 5, 6, 7, 8], seededRandom(7));
    assert.deepEqual([...once].sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(shuffle([1, 2, 3, 4, 5, 6, 7, 8], seededRandom(7)), once);
    const orders = new Set(Array.from({ length: 20 }, (_, seed) => shuffle([1, 2, 3, 4], seededRandom(seed)).join()));
    assert.ok(orders.size > 5, `only ${orders.size} orders from 20 seeds`);
  });
});
