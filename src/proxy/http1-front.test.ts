/**
 * The proxy's HTTP/1.1 front end over real loopback sockets: exact bytes in,
 * what the client gets back and what the upstream server saw. Hostile
 * requests must get 400 and a closed connection and never reach upstream;
 * refused ones 403 on a connection that stays usable. `curl` (Debian package
 * curl) is the real client of the keep-alive case.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { promisify } from "node:util";
import type { RawResponse } from "../../test/lib/http-proxy-harness.ts";
import type { ProxyHarness } from "../../test/lib/http-proxy-harness.ts";
import { RawConnection, startProxyHarness, unusedPort } from "../../test/lib/http-proxy-harness.ts";

const run = promisify(execFile);

const ALLOW = [
  { method: "GET", path: { prefix: "/public/" } },
  { method: "POST", path: { exact: "/upload" } },
  { method: "OPTIONS" },
];

function response(value: RawResponse | "closed"): RawResponse {
  assert.notEqual(value, "closed", "the connection closed before a response");
  return value as RawResponse;
}

function field(value: RawResponse, name: string): string | undefined {
  return value.headers.find(([key]) => key === name)?.[1];
}

/** Sends bytes on a new connection; expects 400 then the connection closed, and nothing upstream. */
async function expectBadRequest(harness: ProxyHarness, bytes: string, reason?: RegExp): Promise<void> {
  const before = harness.upstreamRequests.length;
  const logged = harness.flowLog.length;
  const connection = await RawConnection.open(harness.proxyPort);
  connection.send(bytes);
  const answer = response(await connection.next());
  assert.equal(answer.status, 400);
  await connection.closed();
  assert.equal(harness.upstreamRequests.length, before, "a malformed request reached upstream");
  const entry = harness.flowLog[logged];
  assert.equal(entry?.verdict, "malformed");
  assert.equal(entry?.status, 400);
  if (reason) assert.match(entry?.reason ?? "", reason);
}

describe("HTTP/1.1 front end", () => {
  let harness: ProxyHarness;
  before(async () => {
    harness = await startProxyHarness({
      allow: ALLOW,
      audit: [{ path: { prefix: "/audited/" } }],
      upstream: "http1",
      front: { maxHeaderSize: 2048, headersTimeoutMs: 300, timeoutCheckIntervalMs: 50 },
    });
  });
  after(() => harness.close());

  test("keep-alive: allowed, refused, allowed on one connection; upstream sees exactly the allowed ones", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    const upstreamBefore = harness.upstreamRequests.length;
    const connectionsBefore = harness.upstreamConnections();
    connection.send("GET /public/a HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    const first = response(await connection.next());
    assert.equal(first.status, 200);
    assert.equal(first.body, "upstream GET /public/a body=");
    connection.send("GET /admin HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    const second = response(await connection.next());
    assert.equal(second.status, 403);
    assert.equal(second.body, "Access denied");
    connection.send("GET /public/b?x=1 HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    const third = response(await connection.next());
    assert.equal(third.status, 200);
    assert.equal(third.body, "upstream GET /public/b?x=1 body=");
    assert.equal(connection.isClosed, false);
    connection.destroy();
    assert.deepEqual(harness.upstreamRequests.slice(upstreamBefore).map((request) => request.path), ["/public/a", "/public/b?x=1"]);
    assert.equal(harness.upstreamConnections() - connectionsBefore, 1, "one upstream connection per client connection");
    const refused = harness.flowLog.filter((entry) => entry.verdict === "refused" && entry.path === "/admin");
    assert.equal(refused.length, 1);
    assert.deepEqual({ ...refused[0], connection: undefined }, { verdict: "refused", protocol: "HTTP/1.1", connection: undefined, method: "GET", host: "api.shop", path: "/admin", status: 403, policy: "x/web", rule: "default" });
  });

  test("pipelined requests are answered in order, the refused one in its place", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /public/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /private HTTP/1.1\r\nHost: a\r\n\r\nGET /public/3 HTTP/1.1\r\nHost: a\r\n\r\n");
    const statuses = [];
    for (let index = 0; index < 3; index++) {
      const answer = response(await connection.next());
      statuses.push(`${answer.status} ${answer.body}`);
    }
    assert.deepEqual(statuses, ["200 upstream GET /public/1 body=", "403 Access denied", "200 upstream GET /public/3 body="]);
    connection.destroy();
  });

  test("the path is matched and forwarded normalized: /public/../admin and its encodings are /admin", async () => {
    for (const target of ["/public/../admin", "/public/%2e%2e/admin", "/public/.%2E/admin", "/public//../../admin"]) {
      const connection = await RawConnection.open(harness.proxyPort);
      connection.send(`GET ${target} HTTP/1.1\r\nHost: api.shop\r\n\r\n`);
      assert.equal(response(await connection.next()).status, 403, target);
      connection.destroy();
    }
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /public/x/../%7euser/./a HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).body, "upstream GET /public/~user/a body=");
    connection.destroy();
  });

  test("hop-by-hop fields are not forwarded; Via is added both ways", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /public/hop HTTP/1.1\r\nHost: api.shop\r\nConnection: keep-alive, X-Trace\r\nX-Trace: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\nX-Tenant: blue\r\n\r\n");
    const answer = response(await connection.next());
    connection.destroy();
    assert.equal(field(answer, "via"), "1.1 palisade");
    assert.equal(field(answer, "x-upstream"), "1");
    const seen = harness.upstreamRequests.find((request) => request.path === "/public/hop");
    const names = [];
    for (let index = 0; index < (seen?.rawHeaders.length ?? 0); index += 2) names.push(seen?.rawHeaders[index]?.toLowerCase());
    for (const name of ["x-trace", "keep-alive", "te", "upgrade", "proxy-connection"]) assert.ok(!names.includes(name), `${name} was forwarded`);
    assert.ok(names.includes("x-tenant") && names.includes("via") && names.includes("host"));
  });

  test("a chunked upload is streamed: upstream sees the first chunk before the client sends the rest", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    const firstChunk = once(harness.upstreamEvents, "body");
    connection.send("POST /upload HTTP/1.1\r\nHost: api.shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    // Were the body buffered until its end, this would never come: the rest is sent only after it.
    const [record] = (await firstChunk) as [{ body: string; rawHeaders: string[] }];
    assert.equal(record.body, "hello");
    connection.send("6\r\n world\r\n0\r\n\r\n");
    const answer = response(await connection.next());
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "upstream POST /upload body=hello world");
    assert.ok(record.rawHeaders.some((value) => value.toLowerCase() === "chunked"));
    connection.destroy();
  });

  test("Content-Length bodies are forwarded with their length", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("POST /upload HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 7\r\n\r\npayload");
    assert.equal(response(await connection.next()).body, "upstream POST /upload body=payload");
    connection.destroy();
  });

  test("a refused request with a body leaves the connection usable for the next", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("POST /admin HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 5\r\n\r\nxxxxxGET /public/after HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).status, 403);
    assert.equal(response(await connection.next()).body, "upstream GET /public/after body=");
    connection.destroy();
  });

  test("Expect: 100-continue is judged first: refused gets 403 and the connection closes, allowed gets 100 then the answer", async () => {
    const refused = await RawConnection.open(harness.proxyPort);
    refused.send("POST /admin HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert.equal(response(await refused.next()).status, 403);
    await refused.closed();
    const allowed = await RawConnection.open(harness.proxyPort);
    allowed.send("POST /upload HTTP/1.1\r\nHost: api.shop\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert.equal(response(await allowed.next()).status, 100);
    allowed.send("abc");
    assert.equal(response(await allowed.next()).body, "upstream POST /upload body=abc");
    allowed.destroy();
  });

  test("absolute form: to the Host's host it is forwarded in origin form; to another host it is refused with 400", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET http://API.shop/public/abs HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).body, "upstream GET /public/abs body=");
    connection.destroy();
    await expectBadRequest(harness, "GET http://evil.shop/public/abs HTTP/1.1\r\nHost: api.shop\r\n\r\n", /another host/);
  });

  test("audit mode: the request is forwarded and logged with the upstream's status", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /audited/x HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).status, 200);
    connection.destroy();
    const entry = harness.flowLog.find((logged) => logged.path === "/audited/x");
    assert.equal(entry?.verdict, "audited");
    assert.equal(entry?.status, 200);
    assert.equal(entry?.policy, "x/audit");
  });

  test("OPTIONS * is judged with path *; * with another method is refused", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("OPTIONS * HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(response(await connection.next()).body, "upstream OPTIONS * body=");
    connection.destroy();
    await expectBadRequest(harness, "GET * HTTP/1.1\r\nHost: api.shop\r\n\r\n", /asterisk/);
  });

  // Each: bytes of one request that a server could read in two ways, or that break HTTP/1.1; 400 and close.
  const HOSTILE: [string, string, RegExp?][] = [
    ["Content-Length with Transfer-Encoding", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ["Transfer-Encoding with Content-Length after it", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"],
    ["two equal Content-Length lines", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"],
    ["two different Content-Length lines", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"],
    ["Content-Length list", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx"],
    ["Content-Length with a sign", "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx"],
    ["chunked not the last coding", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"],
    ["an unknown transfer coding", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"],
    ["Transfer-Encoding twice", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ["whitespace before the colon", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"],
    ["Transfer-Encoding in HTTP/1.0", "POST /upload HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", /HTTP\/1\.0/],
    ["a chunk size that overflows", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nx\r\n0\r\n\r\n", /chunk size too large/],
    ["a bare LF after a chunk size", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n"],
    ["Content-Length in the trailers", "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n"],
    ["obs-fold", "GET /public/a HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"],
    ["NUL in a field value", "GET /public/a HTTP/1.1\r\nHost: a\r\nX-A: a\u0000b\r\n\r\n"],
    ["NUL in the target", "GET /public/a\u0000b HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["a raw non-ASCII byte in the target", "GET /public/caf\u00c3\u00a9 HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["bare LF line ends", "GET /public/a HTTP/1.1\nHost: a\n\n"],
    ["a bare CR", "GET /public/a HTTP/1.1\r\nHost: a\rX: y\r\n\r\n"],
    ["a space in a field name", "GET /public/a HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n"],
    ["no Host", "GET /public/a HTTP/1.1\r\n\r\n"],
    ["two Host lines", "GET /public/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /Host/],
    ["two equal Host lines", "GET /public/a HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", /Host/],
    ["a Host that is a list", "GET /public/a HTTP/1.1\r\nHost: a, b\r\n\r\n", /host/],
    ["HTTP/2.0 in an HTTP/1 request line", "GET /public/a HTTP/2.0\r\nHost: a\r\n\r\n", /version/],
    ["an unknown HTTP version", "GET /public/a HTTP/1.2\r\nHost: a\r\n\r\n"],
    ["an encoded slash", "GET /public%2F..%2Fadmin HTTP/1.1\r\nHost: a\r\n\r\n", /encoded slash/],
    ["an encoded backslash", "GET /public/..%5Cadmin HTTP/1.1\r\nHost: a\r\n\r\n", /encoded backslash/],
    ["a double encoding", "GET /public/%252e%252e/admin HTTP/1.1\r\nHost: a\r\n\r\n", /double/],
    ["an overlong UTF-8 dot", "GET /public/%C0%AE%C0%AE/admin HTTP/1.1\r\nHost: a\r\n\r\n", /UTF-8/],
    ["a dot segment with parameters", "GET /public/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n", /parameters/],
    ["a malformed escape", "GET /public/%zz HTTP/1.1\r\nHost: a\r\n\r\n", /malformed/],
    ["a Connection option naming Content-Length", "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\nx", /Connection names/],
    ["CONNECT", "CONNECT api.shop:443 HTTP/1.1\r\nHost: api.shop:443\r\n\r\n", /CONNECT/],
    ["an oversized header block", `GET /public/a HTTP/1.1\r\nHost: a\r\nX-Big: ${"b".repeat(4096)}\r\n\r\n`, /header block too large/],
  ];
  for (const [name, bytes, reason] of HOSTILE) {
    test(`400 and close: ${name}`, () => expectBadRequest(harness, bytes, reason));
  }

  test("a malformed request after a good one on the same connection: 400 and close, the good one served", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /public/ok HTTP/1.1\r\nHost: a\r\n\r\nPOST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert.equal(response(await connection.next()).status, 200);
    assert.equal(response(await connection.next()).status, 400);
    await connection.closed();
  });

  test("a header block that does not complete in time: 400 and close", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /public/slow HTTP/1.1\r\nHost: api.shop\r\nX-Slow: ");
    assert.equal(response(await connection.next()).status, 400);
    await connection.closed();
    assert.ok(!harness.upstreamRequests.some((request) => request.path === "/public/slow"));
    assert.match(harness.flowLog.at(-1)?.reason ?? "", /headers timeout/);
  });

  test("bytes that are not HTTP: closed without an answer", async () => {
    for (const bytes of ["\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000", "hello world\r\n\r\n", "SSH-2.0-OpenSSH_9.2\r\n"]) {
      const connection = await RawConnection.open(harness.proxyPort);
      connection.send(bytes);
      assert.equal(await connection.next(), "closed");
      assert.equal(connection.leftover, "", JSON.stringify(bytes));
    }
    assert.match(harness.flowLog.at(-1)?.reason ?? "", /not HTTP/);
  });

  test("a client that stops inside what could be the HTTP/2 preface is disconnected", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("PRI * HTTP/2.0\r\n");
    assert.equal(await connection.next(), "closed");
    assert.equal(connection.leftover, "");
  });

  test("curl: keep-alive with an allowed, a refused and an allowed request on one connection", async () => {
    const base = `http://127.0.0.1:${harness.proxyPort}`;
    const before = harness.upstreamConnections();
    const { stdout, stderr } = await run("curl", ["-sS", "-v", "-w", "%{http_code}\\n", "-H", "Host: api.shop", `${base}/public/c1`, `${base}/admin`, `${base}/public/c2`]);
    assert.equal(stdout, "upstream GET /public/c1 body=200\nAccess denied403\nupstream GET /public/c2 body=200\n");
    assert.match(stderr, /Re-using existing connection/);
    assert.equal(harness.upstreamConnections() - before, 1);
  });
});

describe("HTTP/1.1 front end with the upstream down", () => {
  test("502 Bad Gateway, logged as upstream-failed", async () => {
    // A port that was free a moment ago: nobody listens on it.
    const deadPort = await unusedPort();
    const harness = await startProxyHarness({ allow: ALLOW, upstream: "http1", connectUpstream: async () => net.connect(deadPort, "127.0.0.1") });
    try {
      const connection = await RawConnection.open(harness.proxyPort);
      connection.send("GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n");
      const answer = response(await connection.next());
      assert.equal(answer.status, 502);
      assert.equal(answer.body, "Bad Gateway");
      assert.equal(harness.flowLog.at(-1)?.verdict, "upstream-failed");
      assert.match(harness.flowLog.at(-1)?.reason ?? "", /ECONNREFUSED/);
    } finally {
      await harness.close();
    }
  });
});

describe("HTTP/1.1 front end failing closed", () => {
  test("a judge that throws: 403, the reason logged, the connection usable", async () => {
    const harness = await startProxyHarness({
      allow: [],
      upstream: "http1",
      judge: (request) => {
        if (request.path === "/boom") throw new Error("rule table missing");
        return { allow: true };
      },
    });
    try {
      const connection = await RawConnection.open(harness.proxyPort);
      connection.send("GET /boom HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.equal(response(await connection.next()).status, 403);
      connection.send("GET /fine HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.equal(response(await connection.next()).body, "upstream GET /fine body=");
      connection.destroy();
      assert.deepEqual(harness.upstreamRequests.map((request) => request.path), ["/fine"]);
      assert.equal(harness.flowLog[0]?.reason, "judge failed: rule table missing");
    } finally {
      await harness.close();
    }
  });

  test("a connectUpstream that throws: 502", async () => {
    const harness = await startProxyHarness({
      allow: ALLOW,
      upstream: "http1",
      connectUpstream: async () => {
        throw new Error("no transparent socket");
      },
    });
    try {
      const connection = await RawConnection.open(harness.proxyPort);
      connection.send("GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.equal(response(await connection.next()).status, 502);
      assert.equal(harness.flowLog.at(-1)?.reason, "no transparent socket");
    } finally {
      await harness.close();
    }
  });
});

/** An upstream server that answers every request head it reads with `answer` (exact bytes), in order; an answer with `Connection: close` ends the connection. */
async function rawUpstream(answer: (head: string) => string): Promise<{ port: number; heads: string[]; close(): void }> {
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    let received = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      received += chunk;
      for (let end = received.indexOf("\r\n\r\n"); end >= 0; end = received.indexOf("\r\n\r\n")) {
        const head = received.slice(0, end);
        received = received.slice(end + 4);
        heads.push(head);
        const text = answer(head);
        socket.write(text, "latin1");
        if (/\r\nConnection: close\r\n/i.test(text)) socket.end();
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: (server.address() as net.AddressInfo).port, heads, close: () => server.close() };
}

/** Reads everything the proxy sends until it closes the connection. */
async function untilClosed(connection: RawConnection): Promise<string> {
  await connection.closed();
  return connection.leftover;
}

describe("HTTP/1.1 front end: persistence, framing of answers, deadlines", () => {
  const CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 9\r\n\r\n";
  let upstream: Awaited<ReturnType<typeof rawUpstream>>;
  let harness: ProxyHarness;
  before(async () => {
    upstream = await rawUpstream((head) => (head.startsWith("GET /chunked") ? CHUNKED : head.startsWith("GET /eof") ? "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end" : "HTTP/1.1 204 No Content\r\n\r\n"));
    harness = await startProxyHarness({
      allow: [{ path: { prefix: "/" } }],
      upstream: "http1",
      connectUpstream: async () => net.connect(upstream.port, "127.0.0.1"),
      front: { keepAliveTimeoutMs: 300, requestTimeoutMs: 400, headersTimeoutMs: 5000, timeoutCheckIntervalMs: 50 },
    });
  });
  after(async () => {
    await harness.close();
    upstream.close();
  });

  test("HTTP/1.0 without keep-alive: one answer, Connection: close, then the connection closes and what follows is not read", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    const forwarded = upstream.heads.length;
    connection.send("GET /a HTTP/1.0\r\nHost: a\r\n\r\nGET /b HTTP/1.0\r\nHost: a\r\n\r\n");
    const answer = response(await connection.next());
    assert.equal(answer.status, 204);
    assert.equal(field(answer, "connection"), "close");
    await connection.closed();
    assert.equal(upstream.heads.length - forwarded, 1);
  });

  test("HTTP/1.0 with keep-alive: Connection: keep-alive answered, the connection carries the next request", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    for (const path of ["/a", "/b"]) {
      connection.send(`GET ${path} HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n`);
      const answer = response(await connection.next());
      assert.equal(answer.status, 204);
      assert.equal(field(answer, "connection"), "keep-alive");
    }
    assert.equal(connection.isClosed, false);
    connection.destroy();
  });

  test("HTTP/1.1 with Connection: close: answered with Connection: close, a request pipelined after it is not forwarded", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    const forwarded = upstream.heads.length;
    connection.send("GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.equal(field(response(await connection.next()), "connection"), "close");
    await connection.closed();
    assert.equal(upstream.heads.length - forwarded, 1);
  });

  test("a chunked answer: re-chunked for HTTP/1.1 (extensions dropped, trailers kept), unchunked and closed for HTTP/1.0", async () => {
    const http11 = await RawConnection.open(harness.proxyPort);
    http11.send("GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n");
    const answer = response(await http11.next());
    assert.equal(answer.body, "hello");
    assert.equal(field(answer, "transfer-encoding"), "chunked");
    assert.equal(field(answer, "x-up"), "1");
    http11.destroy();
    const raw11 = await RawConnection.open(harness.proxyPort);
    raw11.send("GET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    const bytes = await untilClosed(raw11);
    assert.match(bytes, /\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 9\r\n\r\n$/);
    const http10 = await RawConnection.open(harness.proxyPort);
    http10.send("GET /chunked HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
    const plain = await untilClosed(http10);
    assert.match(plain, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(plain, /transfer-encoding/i);
    assert.match(plain, /\r\nConnection: close\r\n/);
    assert.match(plain, /\r\n\r\nhello$/);
  });

  test("an answer delimited by the server's close is passed on delimited by the proxy's close", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /eof HTTP/1.1\r\nHost: a\r\n\r\n");
    const bytes = await untilClosed(connection);
    assert.match(bytes, /\r\nConnection: close\r\n/);
    assert.match(bytes, /\r\n\r\nuntil the end$/);
  });

  test("an answer without Date gets one (RFC 9110 §6.6.1); Via is added", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    const answer = response(await connection.next());
    assert.ok(!Number.isNaN(Date.parse(field(answer, "date") ?? "")));
    assert.equal(field(answer, "via"), "1.1 palisade");
    connection.destroy();
  });

  test("a client that half-closes after its request still gets the answer, then the connection ends", async () => {
    const socket = net.connect(harness.proxyPort, "127.0.0.1");
    await once(socket, "connect");
    socket.end("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    await once(socket, "close");
    assert.match(received, /^HTTP\/1\.1 204 No Content\r\n/);
  });

  test("a half-close inside a request: 400, the cut request never forwarded", async () => {
    const socket = net.connect(harness.proxyPort, "127.0.0.1");
    await once(socket, "connect");
    const forwarded = upstream.heads.length;
    socket.end("GET /a HTTP/1.1\r\nHost: a\r\n");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    await once(socket, "close");
    assert.match(received, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(upstream.heads.length, forwarded);
  });

  test("an idle kept-alive connection is closed after the keep-alive timeout", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.equal(response(await connection.next()).status, 204);
    const started = Date.now();
    await connection.closed();
    assert.ok(Date.now() - started >= 250, "closed before the keep-alive timeout");
  });

  test("a body that does not complete within the request timeout: 400 and close (after the server's early answer)", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    const logged = harness.flowLog.length;
    connection.send("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    assert.equal(response(await connection.next()).status, 204);
    assert.equal(response(await connection.next()).status, 400);
    await connection.closed();
    assert.match(harness.flowLog.slice(logged).map((entry) => entry.reason).join(), /request timeout/);
  });
});

describe("HTTP/1.1 front end: request body backpressure", () => {
  test("a body is read from the client no faster than the upstream takes it, and arrives whole", async () => {
    const total = 96 * 1024 * 1024;
    let upstreamSocket: net.Socket | undefined;
    let received = 0;
    const server = net.createServer((socket) => {
      upstreamSocket = socket;
      // The server reads nothing until told to.
      socket.pause();
      socket.on("data", (chunk: Buffer) => (received += chunk.length));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    const harness = await startProxyHarness({ allow: [{ path: { prefix: "/" } }], upstream: "http1", connectUpstream: async () => net.connect(port, "127.0.0.1") });
    const client = net.connect(harness.proxyPort, "127.0.0.1");
    try {
      await once(client, "connect");
      const head = `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`;
      client.write(head);
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      /** Writes the body until the client's writes stay blocked for a second (true), or all is sent (false). */
      const writeUntilStalled = async (): Promise<boolean> => {
        while (sent < total) {
          sent += chunk.length;
          if (client.write(chunk)) continue;
          const drained = await Promise.race([once(client, "drain").then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1000))]);
          if (!drained) return true;
        }
        return false;
      };
      assert.equal(await writeUntilStalled(), true, "the whole body went in while the upstream read nothing: it was buffered");
      assert.ok(sent < total / 2, `${sent} bytes taken while the upstream read nothing`);
      upstreamSocket!.resume();
      while (await writeUntilStalled());
      while (received < head.length + total) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.ok(received >= total);
    } finally {
      client.destroy();
      await harness.close();
      server.close();
      upstreamSocket?.destroy();
    }
  });
});

describe("HTTP/1.1 front end: a client that does not close", () => {
  test("after the proxy's 400 and FIN, a client that keeps its side open is disconnected after the header timeout", async () => {
    const harness = await startProxyHarness({ allow: [], upstream: "http1", front: { headersTimeoutMs: 300, timeoutCheckIntervalMs: 50 } });
    try {
      const socket = net.connect({ port: harness.proxyPort, host: "127.0.0.1", allowHalfOpen: true });
      await once(socket, "connect");
      let received = "";
      socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
      socket.write("GET /a HTTP/1.7\r\nHost: a\r\n\r\n");
      await once(socket, "end");
      assert.match(received, /^HTTP\/1\.1 400 Bad Request\r\n/);
      // The client never ends its side: the proxy closes its socket, so that what the client sends later is
      // answered with a reset, which the client learns at its next write (it no longer reads after the FIN).
      await new Promise((resolve) => setTimeout(resolve, 600));
      let failure = "";
      socket.on("error", (error: NodeJS.ErrnoException) => (failure = error.code ?? ""));
      const closed = new Promise((resolve) => socket.once("close", () => resolve("closed")));
      socket.write("late");
      await new Promise((resolve) => setTimeout(resolve, 200));
      socket.write("later");
      assert.equal(await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve("still open"), 2000))]), "closed");
      assert.match(failure, /^(EPIPE|ECONNRESET)$/);
      assert.ok(harness.flowLog.length > 0);
    } finally {
      await harness.close();
    }
  });
});
