/**
 * The proxy's HTTP/2 (cleartext, prior knowledge) front end over real
 * loopback sockets, with Node's HTTP/2 client and `curl --http2-prior-knowledge`
 * (Debian package curl, built with nghttp2): each stream judged on its own,
 * a refused one answered 403 while the others on the connection go on.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import { promisify } from "node:util";
import type { ProxyHarness } from "../../test/lib/http-proxy-harness.ts";
import { RawConnection, startProxyHarness } from "../../test/lib/http-proxy-harness.ts";

const run = promisify(execFile);

interface StreamResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
}

/** Sends one request on a session and reads its whole response. */
async function exchange(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<StreamResult> {
  const stream = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  let trailers: IncomingHttpHeaders | undefined;
  stream.on("trailers", (received) => {
    trailers = received;
  });
  const [responseHeaders] = (await once(stream, "response")) as [IncomingHttpHeaders];
  stream.setEncoding("utf8");
  let text = "";
  for await (const chunk of stream) text += chunk;
  return { status: Number(responseHeaders[":status"]), headers: responseHeaders, body: text, trailers };
}

describe("HTTP/2 front end", () => {
  let harness: ProxyHarness;
  before(async () => {
    harness = await startProxyHarness({
      allow: [
        { method: "GET", path: { prefix: "/public/" } },
        { method: "POST", path: { regex: "/pkg\\.Service/(Get|List)[A-Za-z]*" }, headers: [{ name: "content-type", prefix: "application/grpc" }] },
      ],
      upstream: "http2",
    });
  });
  after(() => harness.close());

  test("allowed, refused, allowed streams on one connection; upstream sees the allowed ones over one session", async () => {
    const session = http2.connect(`http://127.0.0.1:${harness.proxyPort}`);
    const upstreamBefore = harness.upstreamRequests.length;
    const connectionsBefore = harness.upstreamConnections();
    try {
      const [allowed, refused] = await Promise.all([
        exchange(session, { ":path": "/public/a", ":authority": "api.shop" }),
        exchange(session, { ":path": "/admin", ":authority": "api.shop" }),
      ]);
      assert.equal(allowed.status, 200);
      assert.equal(allowed.body, "upstream GET /public/a body=");
      assert.equal(allowed.headers.via, "2 palisade");
      assert.equal(allowed.trailers?.["x-upstream-trailer"], "yes");
      assert.equal(refused.status, 403);
      assert.equal(refused.body, "Access denied");
      const later = await exchange(session, { ":path": "/public/%2e/b", ":authority": "api.shop" });
      assert.equal(later.body, "upstream GET /public/b body=");
    } finally {
      session.close();
    }
    assert.deepEqual(harness.upstreamRequests.slice(upstreamBefore).map((request) => request.path).sort(), ["/public/a", "/public/b"]);
    assert.equal(harness.upstreamConnections() - connectionsBefore, 1);
    const refusedLog = harness.flowLog.find((entry) => entry.path === "/admin");
    assert.deepEqual({ ...refusedLog, connection: undefined }, { verdict: "refused", protocol: "HTTP/2", connection: undefined, method: "GET", host: "api.shop", path: "/admin", status: 403, policy: "x/web", rule: "default" });
  });

  test("a gRPC-style call: path /pkg.Service/Method, body and trailers streamed through", async () => {
    const session = http2.connect(`http://127.0.0.1:${harness.proxyPort}`);
    try {
      const grpc = { ":method": "POST", ":path": "/pkg.Service/GetThing", ":authority": "grpc.shop:50051", "content-type": "application/grpc", te: "trailers" };
      const call = await exchange(session, grpc, "\u0000\u0000\u0000\u0000\u0002hi");
      assert.equal(call.status, 200);
      assert.equal(call.body, "upstream POST /pkg.Service/GetThing body=\u0000\u0000\u0000\u0000\u0002hi");
      assert.equal(call.trailers?.["grpc-status"], "0");
      const seen = harness.upstreamRequests.find((request) => request.path === "/pkg.Service/GetThing");
      assert.ok(seen?.rawHeaders.includes("te") && seen.rawHeaders.includes("trailers"), "te: trailers is forwarded over HTTP/2");
      const refused = await exchange(session, { ...grpc, ":path": "/pkg.Service/DeleteThing" }, "x");
      assert.equal(refused.status, 403);
      const wrongType = await exchange(session, { ...grpc, "content-type": "application/json" }, "x");
      assert.equal(wrongType.status, 403);
    } finally {
      session.close();
    }
    assert.ok(!harness.upstreamRequests.some((request) => request.path === "/pkg.Service/DeleteThing"));
  });

  test("a stream that cannot be normalized gets 400; the connection goes on", async () => {
    const session = http2.connect(`http://127.0.0.1:${harness.proxyPort}`);
    try {
      for (const path of ["/public%2F..%2Fadmin", "/public/%252e%252e/admin", "/public/..;/admin"]) {
        const answer = await exchange(session, { ":path": path, ":authority": "api.shop" });
        assert.equal(answer.status, 400, path);
      }
      const hostMismatch = await exchange(session, { ":path": "/public/a", ":authority": "api.shop", host: "evil.shop" });
      assert.equal(hostMismatch.status, 400);
      assert.equal((await exchange(session, { ":path": "/public/ok", ":authority": "api.shop" })).status, 200);
    } finally {
      session.close();
    }
    assert.ok(harness.flowLog.some((entry) => entry.protocol === "HTTP/2" && entry.verdict === "malformed" && /encoded slash/.test(entry.reason ?? "")));
  });

  test("the dot-segment bypass does not pass a prefix rule over HTTP/2 either", async () => {
    const session = http2.connect(`http://127.0.0.1:${harness.proxyPort}`);
    try {
      for (const path of ["/public/../admin", "/public/%2e%2e/admin"]) {
        assert.equal((await exchange(session, { ":path": path, ":authority": "api.shop" })).status, 403, path);
      }
    } finally {
      session.close();
    }
  });

  // One curl per request: Debian bookworm's curl 7.88.1 fails to reuse a prior-knowledge HTTP/2 connection
  // ("Error in the HTTP2 framing layer", curl/curl#10634, fixed in 8.0) whatever the server; Node's client
  // above shows allowed and refused streams sharing one connection.
  test("curl --http2-prior-knowledge: allowed gets the upstream's answer, refused gets 403, both over HTTP/2", async () => {
    const base = `http://127.0.0.1:${harness.proxyPort}`;
    const curl = async (path: string) => (await run("curl", ["-sS", "--path-as-is", "--http2-prior-knowledge", "-H", "Host: api.shop", "-w", " %{http_code} %{http_version}", `${base}${path}`])).stdout;
    assert.equal(await curl("/public/curl"), "upstream GET /public/curl body= 200 2");
    assert.equal(await curl("/admin"), "Access denied 403 2");
    assert.equal(await curl("/public/%2e%2e/admin"), "Access denied 403 2");
    assert.equal(await curl("/public/../admin"), "Access denied 403 2");
  });

  test("bytes after the preface that are not HTTP/2 frames: the connection is closed", async () => {
    const connection = await RawConnection.open(harness.proxyPort);
    connection.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await connection.closed();
    assert.ok(!connection.leftover.includes("HTTP/1.1"), "no HTTP/1.1 answer to an HTTP/2 connection");
  });
});

describe("HTTP/2 front end with an upstream that cannot be opened", () => {
  test("a connectUpstream that rejects: 502 for the stream, logged; the next stream of the session tries again", async () => {
    let attempts = 0;
    const harness = await startProxyHarness({
      allow: [{ path: { prefix: "/" } }],
      upstream: "http2",
      connectUpstream: async (connection) => {
        attempts++;
        if (attempts === 1) throw new Error("no transparent socket");
        return net.connect(connection.serverPort, connection.serverAddress);
      },
    });
    const session = http2.connect(`http://127.0.0.1:${harness.proxyPort}`);
    try {
      const first = await exchange(session, { ":path": "/a", ":authority": "api.shop" });
      assert.equal(first.status, 502);
      assert.equal(first.body, "Bad Gateway");
      assert.deepEqual(harness.flowLog.map((entry) => [entry.verdict, entry.reason]), [["upstream-failed", "no transparent socket"]]);
      const second = await exchange(session, { ":path": "/b", ":authority": "api.shop" });
      assert.equal(second.body, "upstream GET /b body=");
      assert.equal(attempts, 2);
    } finally {
      session.close();
      await harness.close();
    }
  });

  test("a session without a complete header block in time is closed and logged; an idle one gets GOAWAY", async () => {
    const slow = await startProxyHarness({ allow: [{ path: { prefix: "/" } }], upstream: "http2", front: { headersTimeoutMs: 200, keepAliveTimeoutMs: 300 } });
    try {
      // The preface and an empty SETTINGS frame, then nothing.
      const connection = await RawConnection.open(slow.proxyPort);
      connection.send(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      await connection.closed();
      assert.ok(slow.flowLog.some((entry) => entry.protocol === "HTTP/2" && /header timeout/.test(entry.reason ?? "")));
      const session = http2.connect(`http://127.0.0.1:${slow.proxyPort}`);
      assert.equal((await exchange(session, { ":path": "/a" })).status, 200);
      const [code] = (await once(session, "goaway")) as [number];
      assert.equal(code, http2.constants.NGHTTP2_NO_ERROR, "an idle session ends cleanly");
      session.close();
    } finally {
      await slow.close();
    }
  });
});
