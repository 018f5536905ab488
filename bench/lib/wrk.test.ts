import assert from "node:assert/strict";
import { test } from "node:test";
import { parseWrkDuration, parseWrkOutput, WrkOutputError, wrkArgs } from "./wrk.ts";

const KEEP_ALIVE = `Running 5s test @ http://10.251.0.3:8080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   245.12us   80.11us   3.21ms   90.12%
    Req/Sec    60.12k     2.01k   65.00k    80.00%
  Latency Distribution
     50%  231.00us
     75%  262.00us
     90%    1.30ms
     99%    2.05s
  299123 requests in 5.00s, 70.12MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:  59812.34
Transfer/sec:     14.02MB
`;

test("parseWrkOutput reads requests per second, the percentiles in every unit, the count, the errors and the bytes per second", () => {
  const report = parseWrkOutput(KEEP_ALIVE);
  assert.equal(report.requestsPerSecond, 59812.34);
  assert.deepEqual([...report.latencyMs], [[50, 0.231], [75, 0.262], [90, 1.3], [99, 2050]]);
  assert.equal(report.requests, 299123);
  assert.equal(report.errors, 10);
  assert.equal(report.bytesPerSecond, 14.02 * 1024 * 1024);
  assert.equal(parseWrkOutput(KEEP_ALIVE.replace(/^Transfer.*$/m, "")).bytesPerSecond, 0);
});

test("parseWrkOutput: no error lines is no errors; a report without Requests/sec or percentiles is refused", () => {
  const clean = KEEP_ALIVE.replace(/^ {2}(Socket errors|Non-2xx).*\n/gm, "");
  assert.equal(parseWrkOutput(clean).errors, 0);
  assert.throws(() => parseWrkOutput(KEEP_ALIVE.replace(/^Requests\/sec.*$/m, "")), WrkOutputError);
  assert.throws(() => parseWrkOutput(KEEP_ALIVE.replace(/Latency Distribution[\s\S]*?(?= {2}\d+ requests)/, "")), /run wrk with --latency/);
  assert.throws(() => parseWrkOutput(KEEP_ALIVE.replace("     99%    2.05s\n", "")), /lacks 50% or 99%/);
});

test("parseWrkDuration: us, ms, s, m; anything else is refused", () => {
  assert.equal(parseWrkDuration("12.50us"), 0.0125);
  assert.equal(parseWrkDuration("3ms"), 3);
  assert.equal(parseWrkDuration("1.50m"), 90_000);
  assert.throws(() => parseWrkDuration("12ns"), /expected a number with us, ms, s, m or h/);
});

test("wrkArgs: keep-alive by default, Connection: close for a new connection per request", () => {
  const load = { url: "http://10.0.0.3:8080/", threads: 1, connections: 16, durationS: 5, closeEach: false };
  assert.deepEqual(wrkArgs(load), ["-t1", "-c16", "-d5s", "--latency", "http://10.0.0.3:8080/"]);
  assert.deepEqual(wrkArgs({ ...load, closeEach: true }).slice(4, 6), ["-H", "Connection: close"]);
});
