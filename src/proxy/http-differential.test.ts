/**
 * The proxy against the reference evaluator: random policies with HTTP and
 * TLS rules compiled, their HTTP view published as JSON and read back, and
 * over 2000 random requests per run sent as bytes through the proxy's front
 * ends (sniffing, parser, normalizer, judge, forwarding) to a real upstream
 * server; each answer (forwarded 200, refused 403, malformed 400, or a reset
 * where only tls rules admit the flow) must be the one `evaluateRequest` and
 * `evaluateConnection` give, straight from the spec. Then over 1000 random
 * ClientHellos (server names, none, wildcards, case): passed on to the
 * upstream or reset as `evaluateConnection` says.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { compileHttpWorld, connectionStartArb, httpFlowArb, httpPoliciesArb, httpRequestArb } from "../../test/lib/http-world.ts";
import { clientHello, records, sniExtension } from "../../test/lib/tls-hello.ts";
import type { CompiledHttpWorld, HttpFlow } from "../../test/lib/http-world.ts";
import { RawConnection, startProxyHarness } from "../../test/lib/http-proxy-harness.ts";
import type { ProxyHarness, RawResponse } from "../../test/lib/http-proxy-harness.ts";
import type { RawHttpRequest } from "../policy/http-request.ts";
import type { Packet, World } from "../policy/world.ts";
import { evaluateConnection, evaluateRequest } from "../policy/reference-evaluator.ts";

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
    judgeConnection: (start) => {
      const { index, identityOf, flow } = current as NonNullable<typeof current>;
      return index.judgeConnection(start, { clientAddress: flow.client, clientPort: 40000, serverAddress: flow.server, serverPort: flow.port }, identityOf);
    },
  });
});

after(() => harness.close());

/**
 * Sends `send(item)` through the proxy for every steered flow of random worlds of HTTP and TLS rules
 * (`runs` worlds, `perWorld` items each) and hands `check` the reference's world, the flow's first packet,
 * the item and the proxy's answer; returns how many were sent.
 */
async function throughProxy<T>(items: fc.Arbitrary<T>, runs: number, perWorld: number, send: (item: T) => string | Buffer, check: (world: World, packet: Packet, item: T, response: RawResponse | "closed") => void): Promise<number> {
  let sent = 0;
  const scenario = fc.tuple(httpPoliciesArb, fc.array(fc.tuple(httpFlowArb, items), { minLength: perWorld, maxLength: perWorld }));
  await fc.assert(
    fc.asyncProperty(scenario, async ([policies, pairs]) => {
      const { world, index, identityOf, steered } = compileHttpWorld(policies);
      for (const [flow, item] of pairs) {
        // Only steered flows reach the proxy.
        const packet = steered(flow);
        if (!packet) continue;
        current = { index, identityOf, flow };
        const connection = await RawConnection.open(harness.proxyPort);
        connection.send(send(item));
        const response = await connection.next();
        connection.destroy();
        check(world, packet, item, response);
        sent++;
      }
    }),
    { numRuns: runs },
  );
  return sent;
}

function wire(request: RawHttpRequest): string {
  return `${request.method} ${request.target} HTTP/1.1\r\n${request.fields.map(([name, value]) => `${name}: ${value}\r\n`).join("")}Content-Length: 0\r\n\r\n`;
}

describe("the proxy against the reference evaluator", () => {
  test("over 2000 random requests on steered flows get the reference's answer through the real front end", async () => {
    const outcomes = new Map<number, number>();
    const sent = await throughProxy(httpRequestArb, 1400, 30, wire, (world, packet, request, response) => {
      const status = response === "closed" ? 0 : response.status;
      // Where only tls rules admit the flow, bytes that are not TLS are reset before any request.
      const reset = evaluateConnection(world, packet, "not-tls").outcome === "refused";
      const want = reset ? 0 : { allowed: 200, refused: 403, misdirected: 421, malformed: 400 }[evaluateRequest(world, packet, request).outcome];
      assert.equal(status, want, `${JSON.stringify(request)} on ${JSON.stringify(packet)}`);
      outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
    });
    const answered = sent - (outcomes.get(0) ?? 0);
    assert.ok(answered >= 2000, `only ${answered} requests were answered by the HTTP front end`);
    console.log(`proxy differential: ${sent} requests agreed with the reference (by status: ${JSON.stringify(Object.fromEntries(outcomes))})`);
    for (const status of [200, 403, 400]) assert.ok((outcomes.get(status) ?? 0) > 50, `few answers ${status}: ${JSON.stringify([...outcomes])}`);
  });

  test("over 1000 random ClientHellos on steered flows are passed on or reset as the reference says", async () => {
    const outcomes = new Map<string, number>();
    const names = connectionStartArb.filter((start): start is string | undefined => start !== "not-tls");
    const hello = (serverName: string | undefined) => records(clientHello(serverName === undefined ? [] : [sniExtension([[0, serverName]])]));
    const sent = await throughProxy(names, 750, 20, hello, (world, packet, serverName, response) => {
      // Passed on, the ClientHello reaches the upstream HTTP server, which answers 400.
      const outcome = response === "closed" ? "refused" : "allowed";
      assert.equal(outcome, evaluateConnection(world, packet, serverName).outcome, `${String(serverName)} on ${JSON.stringify(packet)}`);
      if (response !== "closed") assert.equal(response.status, 400);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    });
    assert.ok(sent >= 1000, `only ${sent} connections were sent`);
    console.log(`proxy differential: ${sent} ClientHellos agreed with the reference (${JSON.stringify(Object.fromEntries(outcomes))})`);
  });
});
