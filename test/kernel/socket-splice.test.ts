/**
 * The native kernel splice (SocketSplice: splice(2) through a pipe per
 * direction) on real loopback TCP connections: a client connected to one
 * socket of the splice, a server accepting from the other. Bytes both ways at
 * once, half-closes in both orders, resets both ways, a reader that stops,
 * many splices at once, bad arguments; and after each case, no fd left open.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer, Socket, type AddressInfo, type Server } from "node:net";
import { describe, test } from "node:test";
import { BpfError, SocketSplice, type SocketSpliceEnd } from "../../src/datapath/native.ts";
import { openFds } from "../lib/open-fds.ts";

/** What a case builds: the client, the server's socket, and the two sockets of the splice between them. */
interface Path {
  /** Connected to `proxyA`. */
  client: Socket;
  /** The proxy's socket accepted from `client` (socket a of the splice). */
  proxyA: Socket;
  /** The proxy's socket connected to `server` (socket b of the splice). */
  proxyB: Socket;
  /** Accepted from `proxyB`. */
  server: Socket;
  /** Resolves with the splice's report; the two proxy sockets are closed then, as the proxy closes them. */
  ended: Promise<SocketSpliceEnd>;
  splice: SocketSplice;
  /** Closes the listeners. */
  close(): Promise<void>;
}

function fdOf(socket: Socket | { _handle?: unknown }): number {
  return ((socket as { _handle: { fd: number } })._handle).fd;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once("close", () => resolve()));
}

/**
 * A client and a server joined by a splice. Node never reads the proxy's two sockets (paused from their
 * creation): their bytes are the splice's.
 */
async function splicedPath(): Promise<Path> {
  let accept: (socket: Socket) => void = () => undefined;
  const accepted = new Promise<Socket>((resolve) => (accept = resolve));
  const serverSide = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => accept(socket));
  let acceptA: (socket: Socket) => void = () => undefined;
  const acceptedA = new Promise<Socket>((resolve) => (acceptA = resolve));
  const proxySide = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => acceptA(socket));
  const [serverPort, proxyPort] = await Promise.all([listen(serverSide), listen(proxySide)]);
  const client = new Socket({ allowHalfOpen: true }).connect(proxyPort, "127.0.0.1");
  const proxyA = await acceptedA;
  const proxyB = new Socket({ allowHalfOpen: true }).pause().connect(serverPort, "127.0.0.1");
  await new Promise((resolve) => proxyB.once("connect", resolve));
  const server = await accepted;
  server.resume();
  let report: (end: SocketSpliceEnd) => void = () => undefined;
  const ended = new Promise<SocketSpliceEnd>((resolve) => (report = resolve));
  const splice = new SocketSplice(fdOf(proxyA), fdOf(proxyB), (end) => {
    proxyA.destroy();
    proxyB.destroy();
    report(end);
  });
  return {
    client,
    proxyA,
    proxyB,
    server,
    ended,
    splice,
    close: () => Promise.all([serverSide, proxySide].map((listener) => new Promise((resolve) => listener.close(resolve)))).then(() => undefined),
  };
}

/** Everything `socket` receives until its end of stream, and how it ended. */
function received(socket: Socket): Promise<{ bytes: Buffer; ending: string }> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    socket.once("end", () => resolve({ bytes: Buffer.concat(chunks), ending: "end" }));
    socket.once("error", (error: NodeJS.ErrnoException) => resolve({ bytes: Buffer.concat(chunks), ending: error.code ?? error.message }));
  });
}

/** The SHA-256 of what `socket` receives until its end of stream, and its length. */
function digestOf(socket: Socket): Promise<{ digest: string; length: number }> {
  const hash = createHash("sha256");
  let length = 0;
  socket.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    length += chunk.length;
  });
  return new Promise((resolve, reject) => {
    socket.once("end", () => resolve({ digest: hash.digest("hex"), length }));
    socket.once("error", reject);
  });
}

/** Writes `total` random bytes in 1 MiB chunks, minding backpressure, then ends; resolves with their SHA-256. */
async function sendRandom(socket: Socket, total: number): Promise<string> {
  const hash = createHash("sha256");
  for (let sent = 0; sent < total; ) {
    const chunk = randomBytes(Math.min(1024 * 1024, total - sent));
    hash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once("drain", resolve));
  }
  socket.end();
  return hash.digest("hex");
}

/** The queued bytes (send and receive queues) of the loopback TCP sockets on `ports`, from /proc/net/tcp. */
function queuedOnPorts(ports: readonly number[]): number {
  let total = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const localPort = parseInt(fields[1]!.split(":")[1]!, 16);
    if (!ports.includes(localPort)) continue;
    const [tx, rx] = fields[4]!.split(":").map((hex) => parseInt(hex, 16)) as [number, number];
    total += tx + rx;
  }
  return total;
}

/** Runs `body` on a fresh path, then checks that closing everything leaves as many fds open as before. */
async function withPath(body: (path: Path) => Promise<void>): Promise<void> {
  const before = openFds();
  const path = await splicedPath();
  // Two listeners, four sockets, and the splice's own dup of each of its sockets: no pipe before a byte is read.
  assert.equal(openFds(), before + 2 + 4 + 2, "while it runs: the listeners, the four sockets, and the splice's dups");
  try {
    await body(path);
  } finally {
    path.splice.abort();
    path.client.destroy();
    path.server.destroy();
    await Promise.all([path.client, path.server, path.proxyA, path.proxyB].map(closed));
    await path.close();
  }
  assert.equal(openFds(), before, "no fd left open");
}

/** Destroys the paths' client and server sockets, waits until all four sockets of each closed, and closes their listeners. */
async function closePaths(paths: readonly Path[]): Promise<void> {
  for (const path of paths) {
    path.client.destroy();
    path.server.destroy();
  }
  await Promise.all(paths.flatMap((path) => [path.client, path.server, path.proxyA, path.proxyB].map(closed)));
  await Promise.all(paths.map((path) => path.close()));
}

describe("SocketSplice", () => {
  test("64 MiB of random bytes each way at once arrive intact; the ends pass on as half-closes, then it reports", async () => {
    await withPath(async ({ client, server, ended }) => {
      const total = 64 * 1024 * 1024;
      const atServer = digestOf(server);
      const atClient = digestOf(client);
      const [sentUp, sentDown] = await Promise.all([sendRandom(client, total), sendRandom(server, total)]);
      assert.deepEqual(await atServer, { digest: sentUp, length: total });
      assert.deepEqual(await atClient, { digest: sentDown, length: total });
      assert.deepEqual(await ended, { aToB: total, bToA: total, end: "closed" });
    });
  });

  for (const first of ["client", "server"] as const) {
    test(`a half-close by the ${first} first: bytes still pass the other way after it, then the other end`, async () => {
      await withPath(async (path) => {
        const [closer, other] = first === "client" ? [path.client, path.server] : [path.server, path.client];
        const atOther = received(other);
        const atCloser = received(closer);
        closer.end("last words");
        assert.deepEqual(await atOther, { bytes: Buffer.from("last words"), ending: "end" });
        assert.equal(closer.closed, false);
        // The half-closed side still receives: what the other sends after the FIN, then its FIN.
        other.write("after your FIN, ");
        other.end("and mine");
        assert.deepEqual(await atCloser, { bytes: Buffer.from("after your FIN, and mine"), ending: "end" });
        const sizes = first === "client" ? { aToB: 10, bToA: 24 } : { aToB: 24, bToA: 10 };
        assert.deepEqual(await path.ended, { ...sizes, end: "closed" });
      });
    });
  }

  for (const resetter of ["client", "server"] as const) {
    test(`an RST from the ${resetter} reaches the other end as an RST, after the bytes sent before it`, async () => {
      await withPath(async (path) => {
        const [from, to] = resetter === "client" ? [path.client, path.server] : [path.server, path.client];
        const atTo = received(to);
        const first = new Promise((resolve) => to.once("data", resolve));
        from.write("before the reset");
        await first;
        from.resetAndDestroy();
        assert.deepEqual(await atTo, { bytes: Buffer.from("before the reset"), ending: "ECONNRESET" });
        const end = await path.ended;
        assert.deepEqual(end, { ...(resetter === "client" ? { aToB: 16, bToA: 0, failed: "a" } : { aToB: 0, bToA: 16, failed: "b" }), end: "reset", code: "ECONNRESET" });
      });
    });
  }

  test("abort() resets both ends", async () => {
    await withPath(async ({ client, server, splice, ended }) => {
      const atClient = received(client);
      const atServer = received(server);
      splice.abort();
      splice.abort();
      assert.deepEqual(await ended, { aToB: 0, bToA: 0, end: "aborted" });
      assert.deepEqual(await atClient, { bytes: Buffer.alloc(0), ending: "ECONNRESET" });
      assert.deepEqual(await atServer, { bytes: Buffer.alloc(0), ending: "ECONNRESET" });
    });
  });

  test("a reader that stops: the splice stops reading too (bytes in flight bounded by the sockets' buffers and a pipe), then all of it arrives", async () => {
    await withPath(async ({ client, proxyA, proxyB, server, splice, ended }) => {
      const total = 64 * 1024 * 1024;
      server.pause();
      const bytes = randomBytes(total);
      let written = false;
      client.write(bytes, () => (written = true));
      client.end();
      const ports = [client.localPort!, proxyA.localPort!, proxyB.localPort!, server.localPort!];
      // Until what the four sockets hold stops growing: the splice no longer takes from the client.
      let queued = -1;
      for (let same = 0; same < 20; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        const now = queuedOnPorts(ports);
        same = now === queued ? same + 1 : 0;
        queued = now;
      }
      assert.equal(written, false, "the client's write is not complete while nobody reads");
      // Loopback sockets' buffers grow to tcp_wmem/tcp_rmem's maximum (4 and 6 MiB by default) each; a pipe holds 256 KiB.
      assert.ok(queued < 24 * 1024 * 1024, `bytes held on the path: ${queued}`);
      assert.ok(queued > 0);
      // What it has written so far, read while it runs: in the server's buffers, some, not all.
      const meanwhile = splice.passed();
      assert.ok(meanwhile.aToB > 0 && meanwhile.aToB < total && meanwhile.bToA === 0, `passed while stalled: ${JSON.stringify(meanwhile)}`);
      const atServer = digestOf(server);
      server.resume();
      assert.deepEqual(await atServer, { digest: createHash("sha256").update(bytes).digest("hex"), length: total });
      server.end();
      assert.deepEqual(await ended, { aToB: total, bToA: 0, end: "closed" });
      assert.deepEqual(splice.passed(), { aToB: total, bToA: 0 }, "once ended, the counts it reported");
    });
  });

  test("100 splices at once, each passing its own bytes both ways, all end and close every fd", async () => {
    const before = openFds();
    const paths = await Promise.all(Array.from({ length: 100 }, () => splicedPath()));
    await Promise.all(
      paths.map(async ({ client, server, ended }) => {
        const total = 256 * 1024 + Math.floor(Math.random() * 65536);
        const atServer = digestOf(server);
        const atClient = digestOf(client);
        const [up, down] = await Promise.all([sendRandom(client, total), sendRandom(server, total)]);
        assert.deepEqual(await atServer, { digest: up, length: total });
        assert.deepEqual(await atClient, { digest: down, length: total });
        assert.deepEqual(await ended, { aToB: total, bToA: total, end: "closed" });
      }),
    );
    await closePaths(paths);
    assert.equal(openFds(), before, "no fd left open");
  });

  test("an idle splice holds no pipe: 20 connections that passed bytes share one empty pipe", async () => {
    const before = openFds();
    const paths = [];
    for (let i = 0; i < 20; i++) paths.push(await splicedPath());
    for (const { client, server } of paths) {
      const ping = new Promise((resolve) => server.once("data", resolve));
      client.write("ping");
      await ping;
      const pong = new Promise((resolve) => client.once("data", resolve));
      server.write("pong");
      await pong;
    }
    // Per connection: two listeners, four sockets, the splice's two dups; then one pipe (two fds), empty, for all.
    assert.equal(openFds(), before + 20 * 8 + 2);
    for (const path of paths) {
      path.client.end();
      path.server.end();
    }
    for (const path of paths) assert.deepEqual(await path.ended, { aToB: 4, bToA: 4, end: "closed" });
    await closePaths(paths);
    assert.equal(openFds(), before, "no fd left open");
  });

  test("refuses what is not two stream sockets, naming the argument, and leaves no fd open", async () => {
    const before = openFds();
    const { client, proxyA, proxyB, server, splice, close } = await splicedPath();
    splice.abort();
    const notSocket = openSync("/dev/null", "r");
    const udp = createSocket("udp4");
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    try {
      assert.throws(() => new SocketSplice(5, 5, () => undefined), { name: "TypeError", message: /"fdA" and "fdB" arguments must be two sockets: got fd 5 twice/ });
      assert.throws(() => new SocketSplice(-1, 5, () => undefined), { name: "TypeError", message: /"fdA" argument must be a file descriptor/ });
      assert.throws(() => new SocketSplice(notSocket, fdOf(client), () => undefined), (error: unknown) => error instanceof BpfError && error.code === "ENOTSOCK" && /fdA \d+ is not a socket/.test(error.message));
      assert.throws(() => new SocketSplice(fdOf(client), fdOf(udp as unknown as { _handle: unknown }), () => undefined), { name: "TypeError", message: /"fdB" argument must be a stream socket/ });
      assert.throws(() => new SocketSplice(fdOf(client), fdOf(server), undefined as unknown as () => void), { name: "TypeError", message: /"onEnd" argument must be a function/ });
    } finally {
      closeSync(notSocket);
      await new Promise<void>((resolve) => udp.close(resolve));
      client.destroy();
      server.destroy();
      await Promise.all([client, server, proxyA, proxyB].map(closed));
      await close();
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(openFds(), before, "no fd left open");
  });
});
