/**
 * spliceSockets on real loopback connections, as the front ends call it: a
 * client, the proxy's two sockets (the accepted one and the upstream one),
 * and a server. The hand-over to the kernel splice (bytes Node read or was
 * still writing go first, in order), the Node sockets' lifetime (they close
 * when the connection has ended), a reset of either one by the proxy, an
 * upstream still connecting, and TLS sockets, which are piped through Node.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { connect as connectTls, createServer as createTlsServer, type TLSSocket } from "node:tls";
import { exchangeBytes } from "../../test/lib/exchange-bytes.ts";
import { openFds } from "../../test/lib/open-fds.ts";
import { makeCertificate } from "../../test/lib/tls-certificate.ts";
import { resetSocket, spliceSockets } from "./splice.ts";
import type { PassedBytes, PassedBytesCounter } from "./splice.ts";

/**
 * Checks that no more fds are open than `before`, once closes still on their way have run. Fewer is fine: an fd
 * the process itself had open when `before` was counted (the test runner's, a module being read) may be gone.
 */
async function assertFdsBackTo(before: number): Promise<void> {
  for (let waited = 0; openFds() > before && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(openFds() <= before, `no fd left open: ${openFds()} open, ${before} before`);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once("close", () => resolve()));
}

/** Waits until `condition` holds, checking once per turn of the loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

/** Everything `socket` receives until its end of stream, and how it ended. */
function received(socket: Socket): Promise<{ text: string; ending: string }> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    socket.once("end", () => resolve({ text: Buffer.concat(chunks).toString(), ending: "end" }));
    socket.once("error", (error: NodeJS.ErrnoException) => resolve({ text: Buffer.concat(chunks).toString(), ending: error.code ?? error.message }));
  });
}

/** A counter as the metrics use one: `read()` the running totals while it is open, `ended` its reports. */
function recorder(): { counter: PassedBytesCounter; read(): PassedBytes; ended: PassedBytes[] } {
  let reader: (() => PassedBytes) | undefined;
  const ended: PassedBytes[] = [];
  return {
    counter: { joined: (read) => (reader = read), ended: (bytes) => ended.push(bytes) },
    read: () => reader!(),
    ended,
  };
}

/** A listener whose accepted sockets come out of `next()` in order. */
function acceptor(server: Server): { next(): Promise<Socket> } {
  const waiting: ((socket: Socket) => void)[] = [];
  const ready: Socket[] = [];
  server.on("connection", (socket: Socket) => {
    const take = waiting.shift();
    if (take) take(socket);
    else ready.push(socket);
  });
  return { next: () => (ready.length > 0 ? Promise.resolve(ready.shift()!) : new Promise((resolve) => waiting.push(resolve))) };
}

/** A client and a server with the proxy's two sockets between them, not yet spliced. */
async function proxiedPair(options: { waitForUpstream: boolean }) {
  const serverListener = createServer({ allowHalfOpen: true });
  const proxyListener = createServer({ allowHalfOpen: true });
  const servers = acceptor(serverListener);
  const proxies = acceptor(proxyListener);
  const [serverPort, proxyPort] = await Promise.all([listen(serverListener), listen(proxyListener)]);
  const client = new Socket({ allowHalfOpen: true }).connect(proxyPort, "127.0.0.1");
  const proxyClient = await proxies.next();
  const upstream = new Socket().connect(serverPort, "127.0.0.1");
  if (options.waitForUpstream) await new Promise((resolve) => upstream.once("connect", resolve));
  return { client, proxyClient, upstream, server: () => servers.next(), close: () => Promise.all([closeServer(serverListener), closeServer(proxyListener)]) };
}

describe("spliceSockets", () => {
  test("what Node read or was writing before the hand-over arrives first, in order, both ways; the Node sockets close when both ends have", async () => {
    const before = openFds();
    const { client, proxyClient, upstream, server: nextServer, close } = await proxiedPair({ waitForUpstream: true });
    const server = await nextServer();
    // The proxy read the client's first bytes, then paused; Node reads on into its buffer what comes next.
    const first = new Promise<Buffer>((resolve) => proxyClient.once("data", resolve));
    client.write("hello ");
    assert.equal(String(await first), "hello ");
    proxyClient.pause();
    client.write("world, ");
    server.write("greeting, ");
    await until(() => proxyClient.readableLength === 7 && upstream.readableLength === 10);
    const atServer = received(server);
    const atClient = received(client);
    // As the front ends do: an answer of its own to the client, then the judged first bytes of each side.
    proxyClient.write("101 ");
    const { counter, ended: counted } = recorder();
    spliceSockets(proxyClient, upstream, counter, { toUpstream: Buffer.from("hello "), toClient: Buffer.from("rest, ") });
    client.end("after the splice");
    assert.deepEqual(await atServer, { text: "hello world, after the splice", ending: "end" });
    assert.equal(proxyClient.closed, false, "open while the server's half is");
    // Spliced in the kernel: the splice's dup of each socket (and the empty pipes the splices share), beside the two listeners and four sockets.
    assert.ok(openFds() >= before + 2 + 4 + 2, `${openFds() - before} fds more than before`);
    server.end("later");
    assert.deepEqual(await atClient, { text: "101 rest, greeting, later", ending: "end" });
    await Promise.all([proxyClient, upstream].map(closed));
    await until(() => counted.length > 0);
    // Once, from the join on: the first bytes, what Node held and what the kernel moved, not what the caller wrote before.
    assert.deepEqual(counted, [{ toUpstream: "hello world, after the splice".length, toClient: "rest, greeting, later".length }]);
    client.destroy();
    server.destroy();
    await Promise.all([client, server].map(closed));
    await close();
    await assertFdsBackTo(before);
  });

  for (const which of ["client's", "upstream"] as const) {
    test(`resetting the proxy's ${which} socket during the splice resets both connections`, async () => {
      const before = openFds();
      const { client, proxyClient, upstream, server: nextServer, close } = await proxiedPair({ waitForUpstream: true });
      const server = await nextServer();
      const atServer = received(server);
      const atClient = received(client);
      const { counter, ended: counted } = recorder();
      spliceSockets(proxyClient, upstream, counter);
      const arrived = new Promise((resolve) => server.once("data", resolve));
      client.write("ping");
      await arrived;
      resetSocket(which === "client's" ? proxyClient : upstream);
      assert.deepEqual(await atClient, { text: "", ending: "ECONNRESET" });
      assert.deepEqual(await atServer, { text: "ping", ending: "ECONNRESET" });
      await Promise.all([client, proxyClient, upstream, server].map(closed));
      await until(() => counted.length > 0);
      assert.deepEqual(counted, [{ toUpstream: 4, toClient: 0 }], "what passed before the reset, once");
      await close();
      await assertFdsBackTo(before);
    });
  }

  test("an upstream still connecting is joined once connected; bytes the proxy wrote to it meanwhile go first", async () => {
    const { client, proxyClient, upstream, server: nextServer, close } = await proxiedPair({ waitForUpstream: false });
    assert.equal(upstream.connecting, true);
    upstream.write("first ");
    spliceSockets(proxyClient, upstream);
    client.end("then the client's");
    const server = await nextServer();
    assert.deepEqual(await received(server), { text: "first then the client's", ending: "end" });
    server.end();
    await Promise.all([proxyClient, upstream].map(closed));
    client.destroy();
    await Promise.all([client, server].map(closed));
    await close();
  });

  test("a TLS socket (terminated by the proxy) is piped through Node: bytes and half-closes both ways, no fd of a kernel splice", async () => {
    const dir = mkdtempSync(join(tmpdir(), "palisade-splice-"));
    const before = openFds();
    const { client, proxyClient, upstream, server: nextServer, close } = await terminatedPair(dir);
    try {
      const { counter, ended: counted } = recorder();
      spliceSockets(proxyClient, upstream, counter);
      const server = await nextServer();
      const atServer = received(server);
      const atClient = received(client);
      client.end("up through TLS");
      assert.deepEqual(await atServer, { text: "up through TLS", ending: "end" });
      // Two listeners, the client's and the proxy's TLS sockets, the upstream and the server's: nothing more.
      assert.equal(openFds(), before + 2 + 4);
      server.end("down into TLS");
      assert.deepEqual(await atClient, { text: "down into TLS", ending: "end" });
      for (const socket of [client, proxyClient, upstream, server]) socket.destroy();
      await Promise.all([client, proxyClient, upstream, server].map(closed));
      await until(() => counted.length > 0);
      assert.deepEqual(counted, [{ toUpstream: "up through TLS".length, toClient: "down into TLS".length }], "the decrypted bytes, once");
    } finally {
      await close();
      rmSync(dir, { recursive: true, force: true });
    }
    await assertFdsBackTo(before);
  });

  for (const path of ["kernel splice", "Node pipe (TLS)"] as const) {
    test(`the ${path}'s running totals: a long transfer read mid-way shows what has arrived each way, and its end reports the whole`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "palisade-splice-"));
      const { client, proxyClient, upstream, server: nextServer, close } = path === "kernel splice" ? await proxiedPair({ waitForUpstream: true }) : await terminatedPair(dir);
      const sockets: Socket[] = [client, proxyClient, upstream];
      try {
        const { counter, read, ended } = recorder();
        spliceSockets(proxyClient, upstream, counter);
        const server = await nextServer();
        sockets.push(server);
        const MiB = 1024 * 1024;
        // What the other end has received was written by the proxy: the count is exact, not a bound.
        const phases = [[3 * MiB, 0], [0, 2 * MiB], [MiB, MiB]] as const;
        const total = { toUpstream: 0, toClient: 0 };
        for (const [up, down] of phases) {
          await exchangeBytes(client, server, up, down);
          total.toUpstream += up;
          total.toClient += down;
          assert.deepEqual(read(), total, "the bytes passed so far, the connection open");
          assert.deepEqual(ended, [], "not ended");
        }
        const closedBoth = Promise.all([proxyClient, upstream].map(closed));
        client.end();
        server.end();
        await closedBoth;
        await until(() => ended.length > 0);
        assert.deepEqual(ended, [total], "the whole at the end, once");
      } finally {
        for (const socket of sockets) socket.destroy();
        await Promise.all(sockets.map(closed));
        await close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

/** A TLS client, the proxy's TLS socket that terminated it and its upstream socket, and a server: not yet spliced. */
async function terminatedPair(dir: string) {
  const certificate = makeCertificate(["api.example"], dir);
  const serverListener = createServer({ allowHalfOpen: true });
  const servers = acceptor(serverListener);
  let accepted: (socket: TLSSocket) => void = () => undefined;
  const terminated = new Promise<TLSSocket>((resolve) => (accepted = resolve));
  const front = createTlsServer({ key: certificate.key, cert: certificate.cert, allowHalfOpen: true }, (socket) => accepted(socket));
  const [serverPort, frontPort] = await Promise.all([listen(serverListener), listen(front)]);
  const client = connectTls({ port: frontPort, host: "127.0.0.1", servername: "api.example", rejectUnauthorized: false });
  const proxyClient = await terminated;
  const upstream = new Socket().connect(serverPort, "127.0.0.1");
  return { client, proxyClient, upstream, server: () => servers.next(), close: () => Promise.all([closeServer(serverListener), closeServer(front)]) };
}
