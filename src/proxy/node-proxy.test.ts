/**
 * The per-node proxy over plain loopback sockets (the transparent listener
 * and connect stand in as ordinary ones) with a fake judge: keep-alive
 * connections carrying several requests, a 403 then a 200 on one
 * connection, flow-log lines as JSON without field values, and the counts
 * /metrics serves.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { jsonLogger } from "../k8s/logger.ts";
import { exchangeBytes, receiveBytes } from "../../test/lib/exchange-bytes.ts";
import { RawConnection, unusedPort } from "../../test/lib/http-proxy-harness.ts";
import { clientHello, records, sniExtension } from "../../test/lib/tls-hello.ts";
import type { ConnectionInfo, HttpVerdict } from "./http-front-options.ts";
import { NodeProxy } from "./node-proxy.ts";

const SECRET = "Bearer s3cr3t-token";

/** The metric lines of `name` (with labels), each with its value. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(" ");
    found.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return found;
}

function statusOf(response: Awaited<ReturnType<RawConnection["next"]>>): number {
  assert.notEqual(response, "closed");
  return (response as { status: number }).status;
}

/** An IPv4-only proxy on loopback that allows every request and forwards it to `upstreamPort`. */
function allowingProxy(upstreamPort: number, log: (line: string) => void, idleCollectAfterMs?: number): Promise<NodeProxy> {
  return NodeProxy.start({
    families: [4],
    listen: async (server) => {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
    },
    connectUpstream: async () => net.connect(upstreamPort, "127.0.0.1"),
    judge: () => ({ allow: true }),
    judgeConnection: () => ({ allow: true }),
    view: () => ({ generation: 1, loaded: true, errors: 0 }),
    logger: jsonLogger("info", {}, log),
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    ...(idleCollectAfterMs !== undefined && { idleCollectAfterMs }),
  });
}

describe("the node proxy on loopback sockets", () => {
  let upstream: http.Server;
  let upstreamPort: number;
  let upstreamConnections = 0;
  let proxy: NodeProxy;
  const logLines: Record<string, unknown>[] = [];
  const judged: ConnectionInfo[] = [];
  let viewGeneration = 3;

  before(async () => {
    upstream = http.createServer((request, response) => {
      request.resume();
      request.on("end", () => response.end(`upstream ${request.method} ${request.url} from ${request.socket.remoteAddress}`));
    });
    upstream.on("connection", () => upstreamConnections++);
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    upstreamPort = (upstream.address() as AddressInfo).port;
    proxy = await NodeProxy.start({
      listen: async (server, family) => {
        server.listen({ port: 0, host: family === 4 ? "127.0.0.1" : "::1", ipv6Only: true });
        await once(server, "listening");
      },
      connectUpstream: async () => net.connect(upstreamPort, "127.0.0.1"),
      judge: (request, connection): HttpVerdict => {
        judged.push(connection);
        if (request.path === "/boom") throw new Error("no HTTP view");
        if (request.path.startsWith("/audit")) return { allow: true, audit: true, policy: "shop/api", rule: "ingress[1]" };
        return request.path.startsWith("/public/") ? { allow: true, policy: "shop/api", rule: "ingress[0]" } : { allow: false, policy: "shop/api", rule: "ingress[0]" };
      },
      judgeConnection: (start) => (start.tls && start.serverName === "refused.example" ? { allow: false, policy: "shop/egress", rule: "egress[0]" } : { allow: true }),
      view: () => ({ generation: viewGeneration, loaded: true, errors: 1 }),
      logger: jsonLogger("info", { component: "proxy" }, (line) => logLines.push(JSON.parse(line) as Record<string, unknown>)),
      metricsPort: 0,
      metricsHost: "127.0.0.1",
    });
  });

  after(async () => {
    await proxy?.stop();
    upstream.closeAllConnections();
    upstream.close();
  });

  test("listens on both families and says so in its start line", async () => {
    assert.deepEqual(proxy.addresses().map((address) => address.family).sort(), ["IPv4", "IPv6"]);
    assert.ok(logLines.some((line) => line["msg"] === "Proxy started" && Array.isArray(line["listeners"])));
    assert.equal((await fetch(`http://127.0.0.1:${proxy.metricsPort}/readyz`)).status, 200);
  });

  test("a keep-alive connection carries several requests: 200, 403, 200, all forwarded over one upstream connection", async () => {
    const port = proxy.addresses().find((address) => address.family === "IPv4")?.port as number;
    const connection = await RawConnection.open(port);
    const upstreamBefore = upstreamConnections;
    try {
      connection.send("GET /public/a HTTP/1.1\r\nHost: api.shop\r\n\r\n");
      const first = await connection.next();
      assert.equal(statusOf(first), 200);
      assert.equal((first as { body: string }).body, "upstream GET /public/a from 127.0.0.1");
      connection.send(`GET /admin?token=1 HTTP/1.1\r\nHost: api.shop\r\nAuthorization: ${SECRET}\r\n\r\n`);
      const refused = await connection.next();
      assert.equal(statusOf(refused), 403);
      assert.equal((refused as { body: string }).body, "Access denied");
      connection.send("GET /public/b HTTP/1.1\r\nHost: api.shop\r\n\r\n");
      assert.equal(statusOf(await connection.next()), 200);
      assert.equal(upstreamConnections - upstreamBefore, 1, "one upstream connection for the client connection");
      // The listener's own address stands for the original destination (a transparent socket's local address).
      assert.deepEqual(judged.at(-1), { clientAddress: "127.0.0.1", clientPort: judged.at(-1)?.clientPort, serverAddress: "127.0.0.1", serverPort: port });
    } finally {
      connection.destroy();
    }
  });

  test("flow-log lines: one JSON line per refused, malformed, audited and unjudgeable request, with no field value", async () => {
    const port = proxy.addresses().find((address) => address.family === "IPv6")?.port as number;
    const before = logLines.length;
    const session = http2.connect(`http://[::1]:${port}`);
    try {
      const refused = session.request({ ":path": "/private", ":authority": "api.shop", authorization: SECRET });
      refused.resume();
      const [headers] = (await once(refused, "response")) as [http2.IncomingHttpHeaders];
      assert.equal(headers[":status"], 403);
      const boom = session.request({ ":path": "/boom", ":authority": "api.shop" });
      boom.resume();
      assert.equal(((await once(boom, "response")) as [http2.IncomingHttpHeaders])[0][":status"], 403);
    } finally {
      session.close();
    }
    const raw = await RawConnection.open(proxy.addresses().find((address) => address.family === "IPv4")?.port as number);
    raw.send("GET /audit/x HTTP/1.1\r\nHost: api.shop\r\n\r\n");
    assert.equal(statusOf(await raw.next()), 200);
    raw.send(`GET /public/%2F HTTP/1.1\r\nHost: api.shop\r\nCookie: ${SECRET}\r\n\r\n`);
    assert.equal(statusOf(await raw.next()), 400);
    raw.destroy();
    const flows = logLines.slice(before).filter((line) => line["flow"] === "http");
    assert.deepEqual(flows.map((line) => [line["verdict"], line["protocol"], line["path"], line["status"], line["msg"]]), [
      ["refused", "HTTP/2", "/private", 403, "HTTP request refused"],
      ["refused", "HTTP/2", "/boom", 403, "HTTP request refused"],
      ["audited", "HTTP/1.1", "/audit/x", 200, "HTTP request audited (would be refused)"],
      ["malformed", "HTTP/1.1", "/public/%2F", 400, "HTTP request malformed"],
    ]);
    assert.equal(flows[0]?.["policy"], "shop/api");
    assert.equal(flows[0]?.["clientAddress"], "::1");
    assert.equal(flows[0]?.["serverPort"], port);
    assert.equal(flows[1]?.["reason"], "judge failed: no HTTP view");
    for (const line of logLines) assert.doesNotMatch(JSON.stringify(line), /s3cr3t|token=/, "no field value and no query in the log");
  });

  test("/metrics counts requests by verdict, policy and rule, connections, and the view", async () => {
    const text = await (await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).text();
    const requests = samples(text, "palisade_proxy_requests_total");
    assert.equal(requests.get('palisade_proxy_requests_total{verdict="allowed",policy="shop/api",rule="ingress[0]"}'), 2);
    assert.equal(requests.get('palisade_proxy_requests_total{verdict="refused",policy="shop/api",rule="ingress[0]"}'), 2);
    assert.equal(requests.get('palisade_proxy_requests_total{verdict="refused",policy="",rule=""}'), 1);
    assert.equal(requests.get('palisade_proxy_requests_total{verdict="audited",policy="shop/api",rule="ingress[1]"}'), 1);
    assert.equal(requests.get('palisade_proxy_requests_total{verdict="malformed",policy="",rule=""}'), 1);
    assert.equal(samples(text, "palisade_proxy_connections_total").get("palisade_proxy_connections_total"), 3);
    assert.equal(samples(text, "palisade_proxy_view_generation").get("palisade_proxy_view_generation"), viewGeneration);
    assert.equal(samples(text, "palisade_proxy_view_errors_total").get("palisade_proxy_view_errors_total"), 1);
    assert.ok((samples(text, "process_resident_memory_bytes").get("process_resident_memory_bytes") ?? 0) > 0);
    viewGeneration = 4;
    assert.equal(samples(proxy.renderMetrics(), "palisade_proxy_view_generation").get("palisade_proxy_view_generation"), 4);
  });

  test("a TLS connection the rules refuse: reset, one flow-log line with the name seen, counted by verdict, policy and rule", async () => {
    const client = net.connect(proxy.addresses().find((address) => address.family === "IPv4")?.port as number, "127.0.0.1");
    client.write(records(clientHello([sniExtension([[0, "refused.example"]])])));
    const [error] = (await once(client, "error")) as [NodeJS.ErrnoException];
    assert.equal(error.code, "ECONNRESET");
    const line = logLines.find((entry) => entry["flow"] === "tls");
    assert.deepEqual([line?.["msg"], line?.["verdict"], line?.["serverName"], line?.["policy"], line?.["rule"]], ["TLS connection refused", "refused", "refused.example", "shop/egress", "egress[0]"]);
    const counted = samples(proxy.renderMetrics(), "palisade_proxy_tls_connections_total");
    assert.equal(counted.get('palisade_proxy_tls_connections_total{verdict="refused",policy="shop/egress",rule="egress[0]"}'), 1);
  });

  test("an upstream that refuses: 502, logged as a warning and counted", async () => {
    const deadPort = await unusedPort();
    const lines: Record<string, unknown>[] = [];
    const failing = await allowingProxy(deadPort, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    try {
      const connection = await RawConnection.open(failing.addresses()[0]?.port as number);
      connection.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.equal(statusOf(await connection.next()), 502);
      connection.destroy();
      const flow = lines.find((line) => line["flow"] === "http");
      assert.equal(flow?.["verdict"], "upstream-failed");
      assert.equal(flow?.["level"], 40);
      assert.equal(samples(failing.renderMetrics(), "palisade_proxy_upstream_failures_total").get("palisade_proxy_upstream_failures_total"), 1);
    } finally {
      await failing.stop();
    }
  });

  test("stop: no more connections accepted, open ones closed, the count of open connections back to 0", async () => {
    const stopping = await allowingProxy(upstreamPort, () => undefined);
    const port = stopping.addresses()[0]?.port as number;
    const connection = await RawConnection.open(port);
    connection.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.equal(statusOf(await connection.next()), 200);
    assert.equal(stopping.openConnections, 1);
    await stopping.stop();
    assert.equal(await connection.next(), "closed");
    assert.equal(stopping.openConnections, 0);
    const refused = net.connect(port, "127.0.0.1");
    const [error] = (await once(refused, "error")) as [NodeJS.ErrnoException];
    assert.equal(error.code, "ECONNREFUSED");
  });

  test("once idle (here 300 ms) after its RSS grew by 16 MiB, the proxy runs a collection and logs it; it serves on after it", async () => {
    const lines: Record<string, unknown>[] = [];
    const idle = await allowingProxy(upstreamPort, (line) => lines.push(JSON.parse(line) as Record<string, unknown>), 300);
    // Held until the collection ran: without --single-threaded (as this test runs) V8 may hand dropped pages back on its own.
    const held = Array.from({ length: 400_000 }, (_, index) => ({ index, text: `request ${index}` }));
    try {
      const deadline = Date.now() + 5000;
      let collected: Record<string, unknown> | undefined;
      while (collected === undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        collected = lines.find((line) => line["msg"] === "Collected the garbage of the last load, now idle");
      }
      assert.ok(collected !== undefined, "no idle collection within 5 s");
      assert.equal(typeof collected["rssAfterMb"], "number");
      const connection = await RawConnection.open(idle.addresses()[0]?.port as number);
      connection.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.equal(statusOf(await connection.next()), 200);
      connection.destroy();
      assert.equal(held.length, 400_000);
    } finally {
      await idle.stop();
    }
  });
});

describe("the bytes of open connections in /metrics", () => {
  const MiB = 1024 * 1024;
  let upstream: net.Server;
  const accepted: net.Socket[] = [];
  let proxy: NodeProxy;

  /** The next connection the upstream accepts. */
  async function nextUpstream(): Promise<net.Socket> {
    while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    return accepted.shift()!;
  }

  /** palisade_proxy_passed_bytes_total of `rule` as a scrape of /metrics reads it. */
  async function scrapedBytes(policy: string, rule: string): Promise<{ toUpstream: number; toClient: number }> {
    const counted = samples(await (await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).text(), "palisade_proxy_passed_bytes_total");
    const of = (direction: string) => counted.get(`palisade_proxy_passed_bytes_total{direction="${direction}",policy="${policy}",rule="${rule}"}`) ?? 0;
    return { toUpstream: of("to-upstream"), toClient: of("to-client") };
  }

  /** Ends both connections and waits until the proxy has closed both of its sockets. */
  async function endBoth(client: net.Socket, server: net.Socket): Promise<void> {
    const gone = Promise.all([once(client, "end"), once(server, "end")]);
    client.end();
    server.end();
    await gone;
    client.destroy();
    server.destroy();
    while (proxy.openConnections > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /**
   * Passes `phases` of bytes each way over a connection whose counts so far are `total`, checking after each that a
   * scrape reads exactly what has passed, then ends it and checks the scrape after its end reads all of it.
   */
  async function transferScraped(client: net.Socket, server: net.Socket, phases: readonly (readonly [up: number, down: number])[], total: { toUpstream: number; toClient: number }, policy: string, rule: string): Promise<void> {
    for (const [up, down] of phases) {
      await exchangeBytes(client, server, up, down);
      total.toUpstream += up;
      total.toClient += down;
      // What the other end has received was written by the proxy: the count is exact, not a bound.
      assert.deepEqual(await scrapedBytes(policy, rule), total, "open: what passed so far");
    }
    await endBoth(client, server);
    assert.deepEqual(await scrapedBytes(policy, rule), total, "closed: every byte, none twice");
  }

  /** A client connection through the proxy, SNI-spliced by its ClientHello naming `serverName`, and its upstream end. */
  async function spliced(serverName: string): Promise<{ client: net.Socket; server: net.Socket; hello: number }> {
    const hello = records(clientHello([sniExtension([[0, serverName]])]));
    const client = net.connect(proxy.addresses()[0]?.port as number, "127.0.0.1");
    client.write(hello);
    const server = await nextUpstream();
    await receiveBytes(server, hello.length);
    return { client, server, hello: hello.length };
  }

  before(async () => {
    upstream = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    const upstreamPort = (upstream.address() as AddressInfo).port;
    proxy = await NodeProxy.start({
      families: [4],
      listen: async (server) => {
        server.listen(0, "127.0.0.1");
        await once(server, "listening");
      },
      connectUpstream: async () => net.connect(upstreamPort, "127.0.0.1"),
      judge: () => ({ allow: true, policy: "shop/ws", rule: "ingress[0]" }),
      // Each test's connections under a rule of their own (a test judge: the proxy's labels come from the verdict).
      judgeConnection: (start) => (start.tls ? { allow: true, policy: "shop/sni", rule: start.serverName ?? "" } : { allow: true }),
      view: () => ({ generation: 1, loaded: true, errors: 0 }),
      logger: jsonLogger("info", {}, () => undefined),
      metricsPort: 0,
      metricsHost: "127.0.0.1",
    });
  });

  after(async () => {
    await proxy?.stop();
    for (const socket of accepted) socket.destroy();
    upstream?.close();
  });

  test("a long SNI-spliced transfer scraped mid-way shows what has passed each way so far; the last scrape, all of it", async () => {
    const { client, server, hello } = await spliced("long.example");
    try {
      await transferScraped(client, server, [[4 * MiB, 0], [0, 3 * MiB], [MiB, MiB]], { toUpstream: hello, toClient: 0 }, "shop/sni", "long.example");
    } finally {
      client.destroy();
      server.destroy();
    }
  });

  test("a connection that closes between two scrapes is counted once: the rest at its end, nothing after", async () => {
    const { client, server, hello } = await spliced("short.example");
    try {
      await exchangeBytes(client, server, 1000, 2000);
      assert.deepEqual(await scrapedBytes("shop/sni", "short.example"), { toUpstream: hello + 1000, toClient: 2000 });
      await exchangeBytes(client, server, 300, 400);
      await endBoth(client, server);
      const total = { toUpstream: hello + 1300, toClient: 2400 };
      assert.deepEqual(await scrapedBytes("shop/sni", "short.example"), total);
      assert.deepEqual(await scrapedBytes("shop/sni", "short.example"), total);
    } finally {
      client.destroy();
      server.destroy();
    }
  });

  test("a WebSocket counts from its 101 on (the server's bytes sent with it included) under its upgrade request's rule, while open and at its end", async () => {
    const client = net.connect(proxy.addresses()[0]?.port as number, "127.0.0.1");
    client.write("GET /chat HTTP/1.1\r\nHost: api.shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    const server = await nextUpstream();
    try {
      let request = "";
      while (!request.endsWith("\r\n\r\n")) request += String((await once(server, "data"))[0]);
      const early = "server's first frame";
      const switched = new Promise<void>((resolve) => {
        let answer = "";
        const onData = (chunk: Buffer) => {
          answer += String(chunk);
          if (!answer.endsWith(early)) return;
          client.off("data", onData);
          resolve();
        };
        client.on("data", onData);
      });
      server.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n${early}`);
      await switched;
      await transferScraped(client, server, [[2 * MiB, 0], [0, 2 * MiB]], { toUpstream: 0, toClient: early.length }, "shop/ws", "ingress[0]");
    } finally {
      client.destroy();
      server.destroy();
    }
  });
});
