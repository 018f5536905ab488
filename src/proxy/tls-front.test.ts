/**
 * The TLS front end with real TLS over loopback: Node's TLS client through the
 * proxy's front end (createHttpFront with a TLS front end, as the node proxy
 * runs it) to a Node TLS server; raw ClientHellos written in pieces to a TCP
 * server that records what it gets; refusals seen by the client as resets.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { makeCertificate } from "../../test/lib/tls-certificate.ts";
import { clientHello, extension, records, sniExtension } from "../../test/lib/tls-hello.ts";
import { matchServerName } from "../policy/tls-server-name.ts";
import type { ConnectionInfo, HttpFlowLogEntry } from "./http-front-options.ts";
import { createHttpFront } from "./http-front.ts";
import type { HttpFront } from "./http-front.ts";
import { createTlsFront } from "./tls-front.ts";
import type { ConnectionJudge, TlsFlowLogEntry } from "./tls-front.ts";
import type { PassedBytes } from "./splice.ts";

const ALLOWED = ["api.shop.example", "*.github.com"];

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** How a client connection ended: an RST (ECONNRESET on read), a FIN, or a TLS error. */
function ending(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.syscall === "read" && error.code === "ECONNRESET" ? "reset" : `error ${error.code ?? error.message}`));
    socket.once("end", () => resolve("fin"));
  });
}

describe("the TLS front end", () => {
  const certificate = makeCertificate(["api.shop.example", "*.github.com", "other.example"]);
  /** What the upstream the next connection goes to is: the TLS server, or a raw TCP recorder. */
  let upstreamPort = 0;
  let tlsPort = 0;
  let rawPort = 0;
  let plainRefused = true;
  const tlsLog: TlsFlowLogEntry[] = [];
  const httpLog: HttpFlowLogEntry[] = [];
  const judged: [Parameters<ConnectionJudge>[0], ConnectionInfo][] = [];
  let tlsServer: tls.Server;
  let rawServer: net.Server;
  /** Bytes each raw upstream connection received, and how it ended. */
  const rawReceived: { bytes: Buffer; ended: Promise<void> }[] = [];
  let rawBehaviour: (socket: net.Socket) => void = () => undefined;
  let proxy: net.Server;
  let proxyPort = 0;
  let front: HttpFront;
  /** What the front end counted of each connection it passed on, and the TLS server's TCP byte counts of each of its connections. */
  const passed: [PassedBytes, string, string][] = [];
  const atServer: Promise<PassedBytes>[] = [];

  before(async () => {
    tlsServer = tls.createServer({ key: certificate.key, cert: certificate.cert }, (socket) => {
      socket.on("data", (chunk: Buffer) => socket.write(`pong:${socket.servername || "-"}:${chunk.toString()}`));
      socket.on("error", () => undefined);
      socket.on("end", () => socket.end());
    });
    tlsServer.on("connection", (raw: net.Socket) => atServer.push(once(raw, "close").then(() => ({ toUpstream: raw.bytesRead, toClient: raw.bytesWritten }))));
    tlsPort = await listen(tlsServer);
    rawServer = net.createServer({ allowHalfOpen: true }, (socket) => {
      const record = { bytes: Buffer.alloc(0), ended: once(socket, "end").then(() => undefined) };
      rawReceived.push(record);
      socket.on("data", (chunk: Buffer) => (record.bytes = Buffer.concat([record.bytes, chunk])));
      socket.on("error", () => undefined);
      rawBehaviour(socket);
    });
    rawPort = await listen(rawServer);
    const judgeConnection: ConnectionJudge = (start, connection) => {
      judged.push([start, connection]);
      if (!start.tls) return plainRefused ? { allow: false, policy: "EBPFNetworkPolicy x/sni", rule: "egress[0]: the connection is not TLS" } : { allow: true };
      if (start.serverName === "boom.github.com") throw new Error("no view");
      if (start.serverName === "audit.example") return { allow: true, audit: true, policy: "EBPFNetworkPolicy x/audit", rule: "egress[1].tls" };
      return matchServerName(ALLOWED, start.serverName) >= 0 ? { allow: true, policy: "EBPFNetworkPolicy x/sni", rule: "egress[0].tls" } : { allow: false, policy: "EBPFNetworkPolicy x/sni", rule: "egress[0]: no tls serverNames entry matched" };
    };
    const connectUpstream = async () => net.connect(upstreamPort, "127.0.0.1");
    const tlsFront = createTlsFront({ judgeConnection, connectUpstream, flowLog: (entry) => tlsLog.push(entry), helloTimeoutMs: 500, countPassedBytes: (policy, rule) => ({ joined: () => undefined, ended: (bytes) => passed.push([bytes, policy, rule]) }) });
    front = createHttpFront({ judge: () => ({ allow: false, policy: "x/web", rule: "http" }), connectUpstream, flowLog: (entry) => httpLog.push(entry) }, tlsFront);
    proxy = net.createServer((socket) => front.handleConnection(socket));
    proxyPort = await listen(proxy);
  });

  after(async () => {
    front.close();
    await Promise.all([proxy, tlsServer, rawServer].map((server) => new Promise((resolve) => server.close(resolve))));
  });

  function tlsClient(servername: string | undefined): tls.TLSSocket {
    upstreamPort = tlsPort;
    return tls.connect({ host: "127.0.0.1", port: proxyPort, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
  }

  test("an allowed name: the handshake completes with the real server and data flows both ways; the bytes each way are counted under its rule", async () => {
    passed.length = 0;
    atServer.length = 0;
    for (const name of ["api.shop.example", "API.GitHub.com"]) {
      const client = tlsClient(name);
      await once(client, "secureConnect");
      assert.equal(client.getPeerCertificate().subject?.CN, "api.shop.example", "the server's own certificate: TLS passed through, not terminated");
      client.write("ping");
      const [reply] = (await once(client, "data")) as [Buffer];
      assert.equal(reply.toString(), `pong:${name}:ping`, "the server reads the name as the client sent it: the bytes pass unchanged");
      client.end();
      assert.equal(await ending(client), "fin");
    }
    assert.deepEqual(tlsLog, [], "allowed connections are not logged");
    // Counted at each connection's end: every byte the server read (the ClientHello first) and wrote, exactly.
    while (passed.length < 2) await sleep(10);
    assert.deepEqual(passed, await Promise.all(atServer).then((counts) => counts.map((bytes) => [bytes, "EBPFNetworkPolicy x/sni", "egress[0].tls"])));
    assert.ok(passed.every(([bytes]) => bytes.toUpstream > 200 && bytes.toClient > 500), "a handshake each way, and more");
  });

  test("another name, and no name at all, are reset; the flow log names the policy, the rule and the name seen", async () => {
    const other = tlsClient("other.example");
    assert.equal(await ending(other), "reset");
    const unnamed = tlsClient(undefined);
    assert.equal(await ending(unnamed), "reset");
    const [refusedOther, refusedUnnamed] = tlsLog.splice(0);
    assert.equal(refusedOther?.verdict, "refused");
    assert.deepEqual([refusedOther?.serverName, refusedOther?.policy, refusedOther?.rule, refusedOther?.tls], ["other.example", "EBPFNetworkPolicy x/sni", "egress[0]: no tls serverNames entry matched", true]);
    assert.deepEqual([refusedUnnamed?.verdict, "serverName" in (refusedUnnamed ?? {})], ["refused", false]);
  });

  test("a judge that throws resets the connection (fail closed) and logs why; an audited one passes and is logged", async () => {
    assert.equal(await ending(tlsClient("boom.github.com")), "reset");
    assert.match(tlsLog.splice(0)[0]?.reason ?? "", /judge failed: no view/);
    const audited = tlsClient("audit.example");
    await once(audited, "secureConnect");
    audited.end();
    await ending(audited);
    assert.deepEqual(tlsLog.splice(0).map((entry) => [entry.verdict, entry.rule]), [["audited", "egress[1].tls"]]);
  });

  test("a ClientHello split into records and segments is read whole, passed on byte for byte, and half-closes pass both ways", async () => {
    upstreamPort = rawPort;
    rawBehaviour = (socket) => socket.once("end", () => socket.end("after your FIN"));
    const hello = records(clientHello([sniExtension([[0, "api.shop.example"]])]), 37);
    const client = net.connect(proxyPort, "127.0.0.1");
    await once(client, "connect");
    client.setNoDelay(true);
    for (let at = 0; at < hello.length; at += 50) {
      client.write(hello.subarray(at, at + 50));
      await sleep(5);
    }
    client.end("and then application data");
    const chunks: Buffer[] = [];
    client.on("data", (chunk: Buffer) => chunks.push(chunk));
    assert.equal(await ending(client), "fin");
    assert.equal(Buffer.concat(chunks).toString(), "after your FIN");
    const record = rawReceived.at(-1);
    await record?.ended;
    assert.deepEqual(record?.bytes, Buffer.concat([hello, Buffer.from("and then application data")]));
    assert.deepEqual(judged.at(-1)?.[0], { tls: true, serverName: "api.shop.example" });
  });

  test("an RST from the upstream reaches the client as an RST", async () => {
    upstreamPort = rawPort;
    rawBehaviour = (socket) => socket.once("data", () => socket.resetAndDestroy());
    const client = net.connect(proxyPort, "127.0.0.1");
    client.write(records(clientHello([sniExtension([[0, "x.github.com"]])])));
    assert.equal(await ending(client), "reset");
  });

  test("malformed, oversized and slow ClientHellos are reset and logged as malformed", async () => {
    upstreamPort = rawPort;
    const before = rawReceived.length;
    const twoNames = records(clientHello([sniExtension([[0, "api.shop.example"], [0, "x.github.com"]])]));
    const slow = records(clientHello([sniExtension([[0, "api.shop.example"]])])).subarray(0, 20);
    // A 30 KB ClientHello in records of one byte each: six bytes per byte of it.
    const tinyRecords = records(clientHello([sniExtension([[0, "api.shop.example"]]), extension(21, Buffer.alloc(30_000))]), 1);
    for (const bytes of [twoNames, Buffer.from([0x16, 2, 0, 0, 5, 1, 2, 3, 4, 5]), tinyRecords, slow]) {
      const client = net.connect(proxyPort, "127.0.0.1");
      client.write(bytes);
      assert.equal(await ending(client), "reset");
    }
    const entries = tlsLog.splice(0);
    assert.deepEqual(entries.map((entry) => entry.verdict), ["malformed", "malformed", "malformed", "malformed"]);
    assert.match(entries[0]?.reason ?? "", /two host_name entries/);
    assert.match(entries[2]?.reason ?? "", /no whole ClientHello in the first 131072 bytes/);
    assert.match(entries[3]?.reason ?? "", /no whole ClientHello within 500 ms/);
    assert.equal(rawReceived.length, before, "no upstream connection was opened");
  });

  test("bytes that are not TLS: reset where only tls rules admit the flow, else on to the HTTP front end", async () => {
    plainRefused = true;
    const refused = net.connect(proxyPort, "127.0.0.1");
    refused.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.equal(await ending(refused), "reset");
    assert.deepEqual(tlsLog.splice(0).map((entry) => [entry.verdict, entry.tls, entry.rule]), [["refused", false, "egress[0]: the connection is not TLS"]]);
    plainRefused = false;
    const http = net.connect(proxyPort, "127.0.0.1");
    http.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const [reply] = (await once(http, "data")) as [Buffer];
    assert.match(reply.toString(), /^HTTP\/1\.1 403 /);
    http.destroy();
    assert.equal(httpLog.at(-1)?.verdict, "refused");
  });
});
