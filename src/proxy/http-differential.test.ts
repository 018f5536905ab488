/**
 * The proxy against the reference evaluator: random policies with HTTP rules
 * compiled, their HTTP view published as JSON and read back, and over 2000
 * random requests per run sent as bytes through the proxy's HTTP front end
 * (parser, normalizer, judge, forwarding) to a real upstream server; each
 * answer (forwarded 200, refused 403, malformed 400) must be the one
 * `evaluateRequest` gives, straight from the spec.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { A, compileHttpWorld, httpFlowArb, httpPoliciesArb, httpRequestArb } from "../../test/lib/http-world.ts";
import type { CompiledHttpWorld, HttpFlow } from "../../test/lib/http-world.ts";
import { RawConnection, startProxyHarness } from "../../test/lib/http-proxy-harness.ts";
import type { ProxyHarness } from "../../test/lib/http-proxy-harness.ts";
import type { RawHttpRequest } from "../policy/http-request.ts";
import { evaluateRequest } from "../policy/reference-evaluator.ts";

/** What the proxy judges the next connection by: set before each request (one connection at a time). */
let current: { index: CompiledHttpWorld["index"]; identityOf: (ip: string) => number; flow: HttpFlow } | undefined;
let harness: ProxyHarness;

before(async () => {
  harness = await startProxyHarness({
    allow: [],
    upstream: "http1",
    judge: (request) => {
      const { index, identityOf, flow } = current as NonNullable<typeof current>;
      return index.judge(request, { clientAddress: flow.client, clientPort: 40000, serverAddress: flow.server, serverPort: flow.port }, identityOf);
    },
  });
});

after(() => harness.close());

function wire(request: RawHttpRequest): string {
  return `${request.method} ${request.target} HTTP/1.1\r\n${request.fields.map(([name, value]) => `${name}: ${value}\r\n`).join("")}Content-Length: 0\r\n\r\n`;
}

describe("the proxy against the reference evaluator", () => {
  test("over 2000 random requests on steered flows get the reference's answer through the real front end", async () => {
    let sent = 0;
    const outcomes = new Map<number, number>();
    const scenario = fc.tuple(httpPoliciesArb, fc.array(fc.tuple(httpFlowArb, httpRequestArb), { minLength: 30, maxLength: 30 }));
    await fc.assert(
      fc.asyncProperty(scenario, async ([policies, requests]) => {
        const { world, index, identityOf, steered } = compileHttpWorld(policies);
        for (const [flow, request] of requests) {
          // Only steered flows reach the proxy.
          const packet = steered(flow);
          if (!packet) continue;
          const expected = evaluateRequest(world, packet, request);
          current = { index, identityOf, flow };
          const connection = await RawConnection.open(harness.proxyPort);
          connection.send(wire(request));
          const response = await connection.next();
          connection.destroy();
          const status = response === "closed" ? 0 : response.status;
          const want = { allowed: 200, refused: 403, malformed: 400 }[expected.outcome];
          assert.equal(status, want, `${JSON.stringify(request)} on ${JSON.stringify(flow)} (client ${flow.client === A ? "a" : flow.client})`);
          outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
          sent++;
        }
      }),
      { numRuns: 1000 },
    );
    assert.ok(sent >= 2000, `only ${sent} requests were sent`);
    console.log(`proxy differential: ${sent} requests agreed with the reference (by status: ${JSON.stringify(Object.fromEntries(outcomes))})`);
    for (const status of [200, 403, 400]) assert.ok((outcomes.get(status) ?? 0) > 50, `few answers ${status}: ${JSON.stringify([...outcomes])}`);
  });
});
