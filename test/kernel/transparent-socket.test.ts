/**
 * The transparent proxy's sockets (native transparentListen and
 * transparentSocket under listenTransparent and connectTransparent) and the
 * read-only view of a pinned ipcache, on the real kernel (root): loopback
 * connections whose source is an address and port chosen by the caller,
 * the errors callers branch on, and identities read from pins another
 * process made.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { after, describe, test } from "node:test";
import { Datapath } from "../../src/datapath/datapath.ts";
import { DatapathError } from "../../src/datapath/datapath-error.ts";
import { BpfError, closeFd, transparentSocket } from "../../src/datapath/native.ts";
import { PinnedIpcache } from "../../src/datapath/pinned-ipcache.ts";
import { connectTransparent, listenTransparent, PROXY_MARK_FROM, TransparentConnectError } from "../../src/datapath/transparent-socket.ts";
import { ipcacheKeyOf } from "../../src/policy/desired-state.ts";
import { parseCidr } from "../../src/policy/ip.ts";
import { uniquePinRoot } from "../lib/kernel.ts";

/** A server on a transparent listener that reports each accepted socket's addresses. */
async function transparentServer(family: 4 | 6): Promise<{ server: Server; port: number; accepted: Promise<Socket> }> {
  let accept: (socket: Socket) => void = () => undefined;
  const accepted = new Promise<Socket>((resolve) => (accept = resolve));
  const server = createServer((socket) => {
    socket.on("data", (data) => socket.write(`echo ${String(data)}`));
    accept(socket);
  });
  await listenTransparent(server, { family, port: 0 });
  return { server, port: (server.address() as { port: number }).port, accepted };
}

/**
 * A source port above the kernel's ephemeral range (`ip_local_port_range`), which no connect or bind to port 0
 * hands out: one inside it may be held by any other connection on the machine (EADDRINUSE, seen under load).
 */
function portAboveEphemeralRange(): number {
  const high = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[1]);
  assert.ok(high < 65_000, `ip_local_port_range ends at ${high}: no room above it for a chosen source port`);
  return high + 1 + (process.pid % (65_535 - high));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe("transparent sockets", () => {
  for (const family of [4, 6] as const) {
    const loopback = family === 4 ? "127.0.0.1" : "::1";
    test(`IPv${family}: the upstream connection leaves from the address and port asked for, and carries data both ways`, async () => {
      const { server, port, accepted } = await transparentServer(family);
      try {
        assert.equal((server.address() as { address: string }).address, family === 4 ? "0.0.0.0" : "::", "bound to the wildcard address");
        const localPort = portAboveEphemeralRange();
        const upstream = await connectTransparent({ family, localAddress: loopback, localPort, remoteAddress: loopback, remotePort: port });
        const peer = await accepted;
        assert.deepEqual([peer.remoteAddress, peer.remotePort], [loopback, localPort], "the server sees the chosen source");
        assert.deepEqual([upstream.localAddress, upstream.localPort], [loopback, localPort]);
        const reply = new Promise<string>((resolve) => upstream.once("data", (data) => resolve(String(data))));
        upstream.write("hello");
        assert.equal(await reply, "echo hello");
        const closed = new Promise((resolve) => peer.once("end", resolve));
        upstream.end();
        await closed;
        peer.destroy();
      } finally {
        await close(server);
      }
    });
  }

  test("a refused connection rejects with ECONNREFUSED; a port in use with EADDRINUSE", async () => {
    const { server, port } = await transparentServer(4);
    await close(server);
    await assert.rejects(
      connectTransparent({ family: 4, localAddress: "127.0.0.1", localPort: 0, remoteAddress: "127.0.0.1", remotePort: port }),
      (error: unknown) => error instanceof TransparentConnectError && error.code === "ECONNREFUSED" && /^Cannot connect from 127\.0\.0\.1:0 to 127\.0\.0\.1:\d+: ECONNREFUSED/.test(error.message),
    );
    const first = await transparentServer(6);
    try {
      await assert.rejects(listenTransparent(createServer(), { family: 6, port: first.port }), (error: unknown) => error instanceof BpfError && error.code === "EADDRINUSE" && error.operation === "bind");
      await assert.rejects(
        connectTransparent({ family: 4, localAddress: "::1", localPort: 1, remoteAddress: "127.0.0.1", remotePort: 1 }),
        (error: unknown) => error instanceof TransparentConnectError && error.code === "EINVAL" && /"::1" is not an IPv4 address/.test(error.message),
      );
    } finally {
      await close(first.server);
    }
  });

  test("a socket binds to an address this host does not have (IP_TRANSPARENT), and arguments are checked", () => {
    closeFd(transparentSocket(4, "203.0.113.7", 41234, PROXY_MARK_FROM));
    closeFd(transparentSocket(6, "2001:db8::7", 41234, PROXY_MARK_FROM));
    assert.throws(() => transparentSocket(5 as 4, "10.0.0.1", 1, 0), { name: "TypeError", code: "ERR_INVALID_ARG_TYPE", message: 'The "family" argument must be 4 or 6: got 5' });
    assert.throws(() => transparentSocket(4, "10.0.0.1", 70_000, 0), { name: "TypeError", message: 'The "localPort" argument must be a port from 0 to 65535: got 70000' });
  });
});

describe("pinned ipcache", () => {
  const pinRoot = uniquePinRoot("pinned-ipcache");
  const datapath = Datapath.open({ pinRoot });
  after(() => datapath.destroy());

  test("another process's view: longest prefix per address, WORLD for the rest, refused once closed or when nothing is pinned", () => {
    const entry = (cidr: string, identity: number) => ({ key: ipcacheKeyOf(parseCidr(cidr)), value: { identity, flags: 0 } });
    datapath.maps.ipcache.upsert([entry("10.0.0.0/8", 400), entry("10.1.2.3/32", 300), entry("fd00::/64", 500)].map((e) => [e.key, e.value] as const));
    const ipcache = PinnedIpcache.open(pinRoot);
    try {
      assert.equal(ipcache.identityOf("10.1.2.3"), 300);
      assert.equal(ipcache.identityOf("10.9.9.9"), 400);
      assert.equal(ipcache.identityOf("fd00::1234"), 500);
      assert.equal(ipcache.identityOf("192.0.2.1"), 2, "no entry: WORLD");
      assert.equal(ipcache.identityOf("fd01::1"), 2);
      datapath.maps.ipcache.upsert([[entry("192.0.2.0/24", 401).key, { identity: 401, flags: 0 }]]);
      assert.equal(ipcache.identityOf("192.0.2.1"), 401, "reads the live map");
    } finally {
      ipcache.close();
      ipcache.close();
    }
    assert.throws(() => ipcache.identityOf("10.1.2.3"), (error: unknown) => error instanceof DatapathError && /is closed/.test(error.message));
    assert.throws(() => PinnedIpcache.open(`${pinRoot}-absent`), (error: unknown) => error instanceof DatapathError && /Cannot open pinned map ".*-absent\/pal_ipcache"/.test(error.message));
  });
});
