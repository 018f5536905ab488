/**
 * TLS termination through the real proxy against the reference evaluator:
 * random policies with HTTP, server-name and terminating TLS rules compiled
 * into the view the agent publishes; real TLS clients (openssl-made client
 * certificates of two CAs and another, expired, wrong names, none) with random
 * server names and one random request each, through the node proxy over
 * loopback. Each connection must come out as `evaluateConnection` says:
 * reset, passed on unchanged (the upstream then sees a ClientHello), or
 * terminated with the Secret it names; and the request inside a terminated
 * one as `evaluateRequest` says (200, 403, 400, or 421 for a host other than
 * the server names of the rules that terminated it: the requests' hosts and
 * the ClientHellos' names are drawn apart, and differ in case, port and label
 * count).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { RawConnection } from "../../test/lib/http-proxy-harness.ts";
import { startViewProxy } from "../../test/lib/view-proxy.ts";
import { CLIENT_CERTIFICATES, compileHttpWorld, connectionStartArb, httpFlowArb, httpRequestArb, terminationPoliciesArb } from "../../test/lib/http-world.ts";
import type { CompiledHttpWorld, HttpFlow } from "../../test/lib/http-world.ts";
import { issueCertificate, makeCa } from "../../test/lib/tls-certificate.ts";
import type { TestCertificate } from "../../test/lib/tls-certificate.ts";
import type { RawHttpRequest } from "../policy/http-request.ts";
import { evaluateConnection, evaluateRequest } from "../policy/reference-evaluator.ts";
import type { ConnectionInfo } from "./http-front-options.ts";
import type { NodeProxy } from "./node-proxy.ts";
import { TlsMaterialStore } from "./tls-material-store.ts";

/** What a passed-on connection's upstream answers to a ClientHello: plain bytes, which the client cannot read as TLS. */
const SPLICED = "spliced\n";

let current: { world: CompiledHttpWorld; flow: HttpFlow } | undefined;
let proxy: NodeProxy;
let upstream: net.Server;
let httpUpstream: http.Server;
/** The client certificates of CLIENT_CERTIFICATES, by name (none for "none"). */
const clients = new Map<string, TestCertificate>();

function asFlow(connection: ConnectionInfo): ConnectionInfo {
  const { flow } = current as NonNullable<typeof current>;
  return { ...connection, clientAddress: flow.client, clientPort: 40000, serverAddress: flow.server, serverPort: flow.port };
}

before(async () => {
  const ca1 = makeCa("ca-1");
  const ca2 = makeCa("ca-2");
  const other = makeCa("other");
  const servers = makeCa("servers");
  const issue = (ca: typeof ca1, names: string[], expired = false) => issueCertificate(ca, { names, ...(expired && { startDate: "20200101000000Z", endDate: "20200102000000Z" }) });
  clients.set("ca-1 spiffe a", issue(ca1, ["URI:spiffe://c/ns/x/sa/a"]));
  clients.set("ca-1 dns web.frontend.example", issue(ca1, ["DNS:web.frontend.example"]));
  clients.set("ca-1 expired spiffe a", issue(ca1, ["URI:spiffe://c/ns/x/sa/a"], true));
  clients.set("ca-2 spiffe c", issue(ca2, ["URI:spiffe://c/ns/x/sa/c"]));
  clients.set("ca-2 spiffe a", issue(ca2, ["URI:spiffe://c/ns/x/sa/a"]));
  clients.set("other ca spiffe a", issue(other, ["URI:spiffe://c/ns/x/sa/a"]));
  clients.set("ca-1 dns a.b.frontend.example", issue(ca1, ["DNS:a.b.frontend.example"]));
  assert.deepEqual([...clients.keys(), "none"].sort(), CLIENT_CERTIFICATES.map((c) => c.name).sort(), "a certificate for every case");
  const material = new TlsMaterialStore();
  const copy = (name: string, data: Record<string, Buffer>) => material.put({ metadata: { name, resourceVersion: "1" }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.toString("base64")])) });
  for (const secret of ["cert-a", "cert-b"]) {
    // Each Secret's certificate names it, so the client can tell which one it was served.
    const certificate = issue(servers, [`DNS:${secret}.test`]);
    copy(`secret.x.${secret}`, { "tls.crt": certificate.cert, "tls.key": certificate.key });
  }
  copy("configmap.x.ca-1", { "ca.crt": ca1.cert });
  copy("configmap.x.ca-2", { "ca.crt": ca2.cert });

  // The pod: a ClientHello (a passed-on connection) gets SPLICED, anything else is HTTP/1.1.
  httpUpstream = http.createServer((request, response) => {
    request.resume();
    request.on("end", () => response.end("ok"));
  });
  upstream = net.createServer((socket) => {
    socket.on("error", () => undefined);
    socket.once("data", (first: Buffer) => {
      if (first[0] === 0x16) {
        socket.on("data", () => undefined);
        socket.write(SPLICED);
        socket.on("end", () => socket.end());
        return;
      }
      // As the proxy's HTTP/1.1 front end does: the server's parser takes the bytes read before it as its first input.
      httpUpstream.emit("connection", socket);
      socket.emit("data", first);
    });
  });
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  proxy = await startViewProxy({
    world: () => (current as NonNullable<typeof current>).world,
    flow: asFlow,
    connectUpstream: async () => net.connect((upstream.address() as AddressInfo).port, "127.0.0.1"),
    material,
  });
});

after(async () => {
  await proxy.stop();
  httpUpstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

function wire(request: RawHttpRequest): string {
  return `${request.method} ${request.target} HTTP/1.1\r\n${request.fields.map(([name, value]) => `${name}: ${value}\r\n`).join("")}Content-Length: 0\r\n\r\n`;
}

/** What a TLS connection through the proxy came to: reset, passed on, or terminated with a certificate and a status for the request. */
async function connect(serverName: string | undefined, client: TestCertificate | undefined, request: RawHttpRequest): Promise<string> {
  const port = proxy.addresses()[0]?.port ?? 0;
  const socket = tls.connect({ port, host: "127.0.0.1", ...(serverName !== undefined && { servername: serverName }), rejectUnauthorized: false, ALPNProtocols: ["http/1.1"], ...(client && { cert: client.cert, key: client.key }) });
  // Refused: a reset, or the proxy's TLS alert (a missing client certificate), which a TLS 1.3 client reads after its handshake.
  const refusal = (error: NodeJS.ErrnoException) => error.code === "ECONNRESET" || /^ERR_SSL_.*ALERT/.test(error.code ?? "");
  let refused = false;
  socket.on("error", (error: NodeJS.ErrnoException) => (refused ||= refusal(error)));
  try {
    await once(socket, "secureConnect");
  } catch (error) {
    socket.destroy();
    // SPLICED is no TLS record: the client's handshake fails on it, which a refusal never does.
    return refusal(error as NodeJS.ErrnoException) ? "refused" : "passed on";
  }
  const certificate = socket.getPeerX509Certificate()?.subjectAltName ?? "";
  const raw = RawConnection.over(socket);
  raw.send(wire(request));
  const response = await raw.next();
  raw.destroy();
  if (response === "closed") return refused ? "refused" : "closed";
  return `terminated ${certificate} ${response.status}`;
}

describe("TLS termination through the proxy against the reference evaluator", () => {
  test("random worlds, server names, client certificates and requests: reset, passed on, or terminated as the reference says", async () => {
    const outcomes = new Map<string, number>();
    let sent = 0;
    const starts = connectionStartArb.filter((start): start is string | undefined => start !== "not-tls");
    const scenario = fc.tuple(terminationPoliciesArb, fc.array(fc.tuple(httpFlowArb, starts, fc.constantFrom(...CLIENT_CERTIFICATES), httpRequestArb), { minLength: 20, maxLength: 20 }));
    await fc.assert(
      fc.asyncProperty(scenario, async ([policies, cases]) => {
        const world = compileHttpWorld(policies);
        for (const [flow, serverName, { name, certificate }, request] of cases) {
          const packet = world.steered(flow);
          if (!packet) continue;
          current = { world, flow };
          const expected = evaluateConnection(world.world, packet, serverName, certificate);
          let want: string;
          if (expected.outcome === "refused") want = "refused";
          else if (!expected.terminated) want = "passed on";
          else {
            const inside = evaluateRequest(world.world, packet, request, expected.terminated);
            want = `terminated DNS:${expected.terminated.certificate.split("/")[1]}.test ${{ allowed: 200, refused: 403, misdirected: 421, malformed: 400 }[inside.outcome]}`;
          }
          // A connection nobody answers must fail the comparison, not hang the suite.
          const got = await Promise.race([connect(serverName, clients.get(name), request), new Promise<string>((resolve) => setTimeout(resolve, 5000, "no answer").unref())]);
          assert.equal(got, want, `${String(serverName)} with ${name}, ${JSON.stringify(request)} on ${JSON.stringify(flow)} under ${JSON.stringify(policies)}`);
          const key = want.replace(/ DNS:\S+/, "");
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          sent++;
        }
      }),
      { numRuns: Number(process.env["TLS_DIFF_RUNS"] ?? 600) },
    );
    assert.ok(sent >= 1000, `only ${sent} connections were sent`);
    for (const key of ["refused", "passed on", "terminated 200", "terminated 403", "terminated 421"]) assert.ok((outcomes.get(key) ?? 0) > 5, `few ${key}: ${JSON.stringify([...outcomes])}`);
    console.log(`TLS differential: ${sent} connections agreed with the reference (${[...outcomes].map(([k, n]) => `${k}: ${n}`).join(", ")})`);
  });
});
