/**
 * HTTP/1.1 Upgrade through the proxy's front end, over real loopback sockets:
 * Node's own WebSocket client (undici) and a raw client on one side, a real
 * RFC 6455 server on the other (test/lib/websocket-echo.ts). An allowed
 * upgrade is switched and its bytes spliced both ways; a refused one gets 403
 * and never reaches the server; any other answer of the server is passed on
 * and the connection goes on as HTTP/1.1; what could be read two ways (a body,
 * bytes before the answer, a 101 nobody asked for or to another protocol) is
 * refused and closes the connection.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { promisify } from "node:util";
import type { ProxyHarness, RawResponse } from "../../test/lib/http-proxy-harness.ts";
import { RawConnection, startProxyHarness } from "../../test/lib/http-proxy-harness.ts";
import { acceptKey, encodeFrame, FrameReader, startWebSocketEchoServer } from "../../test/lib/websocket-echo.ts";
import type { UpgradeAnswer, WebSocketEchoServer } from "../../test/lib/websocket-echo.ts";
import { A, B, compileHttpWorld, ebpf } from "../../test/lib/http-world.ts";
import { startViewProxy } from "../../test/lib/view-proxy.ts";
import type { ConnectionInfo } from "./http-front-options.ts";
import type { NodeProxy } from "./node-proxy.ts";

const run = promisify(execFile);

function response(value: RawResponse | "closed"): RawResponse {
  assert.notEqual(value, "closed", "the connection closed before a response");
  return value as RawResponse;
}

/** The names of a raw header list, lower case. */
function names(rawHeaders: readonly string[]): string[] {
  return rawHeaders.filter((_, index) => index % 2 === 0).map((name) => name.toLowerCase());
}

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** An upgrade request to WebSocket as RFC 6455 §4.1 has a client send it; `extra`: more field lines. */
function upgradeRequest(path: string, extra = "", version = "1.1"): string {
  return `GET ${path} HTTP/${version}\r\nHost: api.shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** Opens a WebSocket with Node's client; resolves once open, or rejects with the client's error. */
async function openWebSocket(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error(`WebSocket to ${url} failed`)), { once: true });
  });
  return socket;
}

/** Sends one message and waits for the next one the server sends. */
async function roundTrip(socket: WebSocket, message: string | Uint8Array): Promise<string | Buffer> {
  const received = new Promise<string | Buffer>((resolve) => {
    socket.addEventListener("message", (event) => resolve(typeof event.data === "string" ? event.data : Buffer.from(event.data as ArrayBuffer)), { once: true });
  });
  socket.send(message);
  return received;
}

describe("HTTP/1.1 Upgrade through the front end", () => {
  let echo: WebSocketEchoServer;
  let harness: ProxyHarness;
  const upgrades: ConnectionInfo[] = [];
  /** Upgrade requests to /ws/gated wait for this. */
  let release: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (release = resolve));

  before(async () => {
    echo = await startWebSocketEchoServer({
      answer: (path): UpgradeAnswer => {
        if (path === "/ws/426") return { kind: "status", status: 426 };
        if (path === "/ws/400") return { kind: "status", status: 400 };
        if (path === "/ws/h2c-switch") return { kind: "switch-to", protocol: "h2c" };
        if (path === "/ws/gated") return { kind: "gated", released: gate };
        return { kind: "accept" };
      },
    });
    harness = await startProxyHarness({
      allow: [{ path: { prefix: "/ws/" } }],
      audit: [{ path: { prefix: "/audited/" } }],
      upstream: "http1",
      connectUpstream: async () => net.connect(echo.port, "127.0.0.1"),
      front: { upgraded: (connection) => upgrades.push(connection) },
    });
  });
  after(async () => {
    await harness.close();
    await echo.close();
  });

  const url = (path: string) => `ws://127.0.0.1:${harness.proxyPort}${path}`;

  test("an allowed upgrade: 101, messages echo both ways, the close handshake completes", async () => {
    const before = echo.upgradeRequests.length;
    const socket = await openWebSocket(url("/ws/echo?room=1"));
    assert.equal(await roundTrip(socket, "hello"), "hello");
    assert.equal(await roundTrip(socket, "second message"), "second message");
    const binary = randomBytes(70_000);
    assert.deepEqual(await roundTrip(socket, binary), binary, "a message with a 64-bit length, over several segments");
    for (let index = 0; index < 20; index++) assert.equal(await roundTrip(socket, `n${index}`), `n${index}`);
    const closed = new Promise<CloseEvent>((resolve) => socket.addEventListener("close", (event) => resolve(event), { once: true }));
    socket.close(1000, "done");
    const event = await closed;
    assert.equal(event.wasClean, true);
    assert.equal(event.code, 1000);
    const seen = echo.upgradeRequests[before];
    assert.equal(seen?.path, "/ws/echo?room=1");
    const seenNames = names(seen?.rawHeaders ?? []);
    for (const name of ["upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "via"]) assert.ok(seenNames.includes(name), `${name} not forwarded`);
    assert.equal(upgrades.length > 0, true);
  });

  test("the switch is counted once per connection, and is not a flow-log line", async () => {
    const counted = upgrades.length;
    const logged = harness.flowLog.length;
    const socket = await openWebSocket(url("/ws/count"));
    assert.equal(await roundTrip(socket, "x"), "x");
    socket.close();
    assert.equal(upgrades.length, counted + 1);
    assert.equal(harness.flowLog.length, logged);
  });

  test("a raw client: the 101 carries the server's accept key, and the server's first bytes after it arrive", async () => {
    const connection = net.connect(harness.proxyPort, "127.0.0.1");
    await once(connection, "connect");
    connection.write(upgradeRequest("/ws/raw"));
    let received = Buffer.alloc(0);
    while (!received.includes("\r\n\r\n")) received = Buffer.concat([received, (await once(connection, "data"))[0] as Buffer]);
    const head = received.subarray(0, received.indexOf("\r\n\r\n") + 2).toString("latin1");
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(head, new RegExp(`\r\nSec-WebSocket-Accept: ${acceptKey(KEY).replace(/[+/]/g, "\\$&")}\r\n`));
    assert.match(head, /\r\nUpgrade: websocket\r\n/);
    assert.match(head, /\r\nConnection: Upgrade\r\n/);
    assert.match(head, /\r\nVia: 1\.1 palisade\r\n/);
    const reader = new FrameReader();
    reader.push(received.subarray(received.indexOf("\r\n\r\n") + 4));
    // Bytes that look like HTTP are WebSocket payload now: spliced unchanged, never parsed.
    const payload = Buffer.from("GET /private HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    connection.write(encodeFrame({ fin: true, opcode: 0x2, payload }, randomBytes(4)));
    let frames = reader.push(Buffer.alloc(0));
    while (frames.length === 0) frames = reader.push((await once(connection, "data"))[0] as Buffer);
    assert.deepEqual(frames[0]?.payload, payload);
    connection.destroy();
  });

  test("a half-close passes both ways: the client's FIN reaches the server, whose FIN reaches the client", async () => {
    const connection = net.connect({ port: harness.proxyPort, host: "127.0.0.1", allowHalfOpen: true });
    await once(connection, "connect");
    connection.write(upgradeRequest("/ws/half-close"));
    await once(connection, "data");
    const serverSawEnd = once(echo.events, "ws-end");
    const ended = once(connection, "end");
    connection.end();
    await serverSawEnd;
    await ended;
    connection.destroy();
  });

  test("a reset passes: the client's RST resets the server's socket", async () => {
    const connection = net.connect(harness.proxyPort, "127.0.0.1");
    await once(connection, "connect");
    connection.write(upgradeRequest("/ws/reset"));
    await once(connection, "data");
    const serverError = once(echo.events, "ws-error");
    connection.resetAndDestroy();
    const [error] = (await serverError) as [NodeJS.ErrnoException];
    assert.equal(error.code, "ECONNRESET");
  });

  test("refused by the rules: 403, nothing upstream, the connection usable for the next request", async () => {
    const before = echo.connections();
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send(upgradeRequest("/private"));
    const refused = response(await connection.next());
    assert.equal(refused.status, 403);
    assert.equal(refused.body, "Access denied");
    assert.equal(echo.connections(), before, "a refused upgrade opened an upstream connection");
    connection.send("GET /ws/after-403 HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).body, "upstream GET /ws/after-403 upgrade=-");
    connection.destroy();
    const entry = harness.flowLog.find((logged) => logged.path === "/private");
    assert.equal(entry?.verdict, "refused");
    assert.equal(entry?.status, 403);
    await assert.rejects(openWebSocket(url("/private")));
  });

  test("the server answers 426 or 400: passed on, and the connection goes on as HTTP/1.1", async () => {
    for (const status of [426, 400]) {
      const connection = await RawConnection.open(harness.proxyPort);
      connection.send(upgradeRequest(`/ws/${status}`));
      const answer = response(await connection.next());
      assert.equal(answer.status, status);
      assert.equal(answer.body, `upstream GET /ws/${status} upgrade=websocket`);
      connection.send(`GET /ws/after-${status} HTTP/1.1\r\nHost: api.shop\r\n\r\n`);
      assert.equal(response(await connection.next()).body, `upstream GET /ws/after-${status} upgrade=-`);
      connection.send("GET /private HTTP/1.1\r\nHost: api.shop\r\n\r\n");
      assert.equal(response(await connection.next()).status, 403, "requests after it are judged");
      assert.equal(connection.isClosed, false);
      connection.destroy();
    }
    await assert.rejects(openWebSocket(url("/ws/426")));
  });

  test("many upgrade requests answered 426 on one connection: each goes back to the parser, no listener left behind", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const connection = await RawConnection.open(harness.proxyPort);
      for (let index = 0; index < 15; index++) {
        connection.send(upgradeRequest("/ws/426"));
        assert.equal(response(await connection.next()).status, 426);
      }
      connection.send("GET /ws/last HTTP/1.1\r\nHost: api.shop\r\n\r\n");
      assert.equal(response(await connection.next()).status, 200);
      connection.destroy();
    } finally {
      process.off("warning", onWarning);
    }
    assert.deepEqual(warnings.map((warning) => warning.name), []);
  });

  test("h2c is not honored: forwarded as a plain request without its upgrade fields; the connection goes on", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /ws/h2c HTTP/1.1\r\nHost: api.shop\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n");
    assert.equal(response(await connection.next()).body, "upstream GET /ws/h2c upgrade=-");
    const seen = echo.plainRequests.find((request) => request.path === "/ws/h2c");
    for (const name of ["upgrade", "http2-settings", "connection"]) assert.ok(!names(seen?.rawHeaders ?? []).includes(name), `${name} forwarded`);
    connection.send("GET /ws/after-h2c HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).status, 200);
    connection.destroy();
  });

  test("curl --http2 on http:// (an h2c upgrade): answered in HTTP/1.1", async () => {
    const { stdout } = await run("curl", ["-sS", "--http2", "-w", " %{http_version}", `http://127.0.0.1:${harness.proxyPort}/ws/curl-h2c`]);
    assert.equal(stdout, "upstream GET /ws/curl-h2c upgrade=- 1.1");
  });

  test("HTTP/1.0 with Upgrade: the upgrade is ignored (RFC 9110 §7.8), the request forwarded plain", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send(upgradeRequest("/ws/http10", "", "1.0"));
    const answer = response(await connection.next());
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "upstream GET /ws/http10 upgrade=-");
    await connection.closed();
  });

  test("audit mode: an upgrade that would be refused is switched, and logged audited with status 101", async () => {
    const socket = await openWebSocket(url("/audited/ws"));
    assert.equal(await roundTrip(socket, "audited"), "audited");
    socket.close();
    const entry = harness.flowLog.find((logged) => logged.path === "/audited/ws");
    assert.equal(entry?.verdict, "audited");
    assert.equal(entry?.status, 101);
  });

  /** Sends bytes on a new connection; expects 400, the connection closed, and no upgrade request upstream. */
  async function expectRefused(bytes: string, reason: RegExp): Promise<void> {
    const upgradesBefore = echo.upgradeRequests.length;
    const plainBefore = echo.plainRequests.length;
    const logged = harness.flowLog.length;
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send(bytes);
    assert.equal(response(await connection.next()).status, 400);
    await connection.closed();
    assert.equal(echo.upgradeRequests.length, upgradesBefore, "the upgrade request reached upstream");
    assert.equal(echo.plainRequests.length, plainBefore, "a request reached upstream");
    const entry = harness.flowLog.slice(logged).find((logged) => logged.verdict === "malformed");
    assert.match(entry?.reason ?? "", reason);
  }

  const REFUSED: [string, string, RegExp][] = [
    ["a Content-Length body (a request smuggled in it)", upgradeRequest("/ws/body", "Content-Length: 40\r\n") + "GET /private HTTP/1.1\r\nHost: api.shop\r\n\r\n", /body/],
    ["a chunked body", upgradeRequest("/ws/chunked", "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", /body/],
    ["a request pipelined after it", upgradeRequest("/ws/pipelined") + "GET /private HTTP/1.1\r\nHost: api.shop\r\n\r\n", /before its answer/],
    ["websocket among other protocols", upgradeRequest("/ws/two").replace("Upgrade: websocket", "Upgrade: websocket, h2c"), /among other protocols/],
    ["websocket with a version", upgradeRequest("/ws/version").replace("Upgrade: websocket", "Upgrade: websocket/13"), /version/],
    ["two Upgrade lines", upgradeRequest("/ws/lines", "Upgrade: websocket\r\n"), /more than one Upgrade/],
    ["an Upgrade that is not a protocol list", upgradeRequest("/ws/odd").replace("Upgrade: websocket", "Upgrade: web socket"), /not a list of protocols/],
    ["an empty Upgrade list", upgradeRequest("/ws/empty").replace("Upgrade: websocket", "Upgrade: ,"), /not a list of protocols/],
  ];
  for (const [name, bytes, reason] of REFUSED) {
    test(`400 and close: an upgrade request with ${name}`, () => expectRefused(bytes, reason));
  }

  test("400 and close: an upgrade request behind a request not yet answered; the earlier one is answered first", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send(`GET /ws/first HTTP/1.1\r\nHost: api.shop\r\n\r\n${upgradeRequest("/ws/behind")}`);
    assert.equal(response(await connection.next()).body, "upstream GET /ws/first upgrade=-");
    assert.equal(response(await connection.next()).status, 400);
    await connection.closed();
    assert.ok(!echo.upgradeRequests.some((request) => request.path === "/ws/behind"));
  });

  test("bytes sent before the server's answer: 400, close, the upstream connection closed and its 101 never passed on", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    const arrived = once(echo.events, "upgrade-request");
    connection.send(upgradeRequest("/ws/gated"));
    await arrived;
    connection.send(encodeFrame({ fin: true, opcode: 0x1, payload: Buffer.from("too early") }, randomBytes(4)));
    const answer = response(await connection.next());
    assert.equal(answer.status, 400);
    await connection.closed();
    release();
    gate = Promise.resolve();
    assert.doesNotMatch(connection.leftover, /101/);
    assert.match(harness.flowLog.at(-1)?.reason ?? "", /before its answer/);
  });

  test("a 101 to another protocol than asked: 502 and close, nothing of the new protocol passed on", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send(upgradeRequest("/ws/h2c-switch"));
    const answer = response(await connection.next());
    assert.equal(answer.status, 502);
    await connection.closed();
    assert.equal(connection.leftover, "");
    const entry = harness.flowLog.at(-1);
    assert.equal(entry?.verdict, "upstream-failed");
    assert.match(entry?.reason ?? "", /101 Switching Protocols to "h2c", not to the websocket asked for/);
  });
});

describe("a 101 nobody asked for", () => {
  test("to a plain request, or to an h2c request forwarded plain: 502 and close", async () => {
    // A server that switches whatever it is asked.
    const server = net.createServer((socket) => {
      socket.once("data", () => socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    const harness = await startProxyHarness({ allow: [{ path: { prefix: "/" } }], upstream: "http1", connectUpstream: async () => net.connect(port, "127.0.0.1") });
    try {
      for (const bytes of ["GET /plain HTTP/1.1\r\nHost: a\r\n\r\n", "GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"]) {
        const connection = await RawConnection.open(harness.proxyPort);
        connection.send(bytes);
        assert.equal(response(await connection.next()).status, 502);
        await connection.closed();
        assert.equal(connection.leftover, "");
        assert.match(harness.flowLog.at(-1)?.reason ?? "", /asked for no upgrade/);
      }
    } finally {
      await harness.close();
      server.close();
    }
  });
});

describe("Upgrade judged by a compiled policy (an Allow and a Deny rule with http)", () => {
  let echo: WebSocketEchoServer;
  let proxy: NodeProxy;
  const logLines: Record<string, unknown>[] = [];
  const port = 8080;
  const world = compileHttpWorld([
    ebpf("chat", {
      ingress: [
        { from: [{ podSelector: { matchLabels: { pod: "a" } } }], ports: [{ protocol: "TCP", port }], http: [{ path: { prefix: "/ws/" }, headers: [{ name: "Upgrade", exact: "websocket" }] }] },
        { action: "Deny", ports: [{ protocol: "TCP", port }], http: [{ path: { prefix: "/ws/admin" } }] },
      ],
    }),
  ]);

  before(async () => {
    echo = await startWebSocketEchoServer({ answer: () => ({ kind: "accept" }) });
    proxy = await startViewProxy({
      world: () => world,
      flow: (connection) => ({ ...connection, clientAddress: A, clientPort: 40000, serverAddress: B, serverPort: port }),
      connectUpstream: async () => net.connect(echo.port, "127.0.0.1"),
      log: (line) => logLines.push(JSON.parse(line) as Record<string, unknown>),
    });
  });
  after(async () => {
    await proxy.stop();
    await echo.close();
  });

  const url = (path: string) => `ws://127.0.0.1:${proxy.addresses()[0]?.port}${path}`;

  test("the Allow rule (which asks for Upgrade: websocket) switches; the Deny rule refuses with 403; a plain GET is refused", async () => {
    const socket = await openWebSocket(url("/ws/chat"));
    assert.equal(await roundTrip(socket, "through a compiled rule"), "through a compiled rule");
    socket.close();
    await assert.rejects(openWebSocket(url("/ws/admin/console")));
    assert.ok(!echo.upgradeRequests.some((request) => request.path.startsWith("/ws/admin")), "a denied upgrade reached the server");
    const denied = logLines.find((line) => line["path"] === "/ws/admin/console");
    assert.equal(denied?.["verdict"], "refused");
    assert.equal(denied?.["policy"], "EBPFNetworkPolicy x/chat");
    assert.equal(denied?.["rule"], "ingress[1].http[0]");
    const connection = await RawConnection.open(proxy.addresses()[0]!.port);
    connection.send("GET /ws/chat HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).status, 403, "without Upgrade the header rule does not hold");
    connection.destroy();
  });

  test("/metrics: the judged upgrade requests by verdict, and the connections switched", async () => {
    const text = proxy.renderMetrics();
    assert.match(text, /^palisade_proxy_upgrades_total 1$/m);
    assert.match(text, /^palisade_proxy_requests_total\{verdict="allowed",policy="EBPFNetworkPolicy x\/chat",rule="ingress\[0\]\.http\[0\]"\} 1$/m);
    assert.match(text, /^palisade_proxy_requests_total\{verdict="refused",policy="EBPFNetworkPolicy x\/chat",rule="ingress\[1\]\.http\[0\]"\} 1$/m);
    assert.match(text, /^palisade_proxy_requests_total\{verdict="refused",policy="EBPFNetworkPolicy x\/chat",rule="ingress\[0\]: no http entry of the rules allowing the flow matched"\} 1$/m);
  });
});
