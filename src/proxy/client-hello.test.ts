/**
 * The ClientHello reader (policy/tls-client-hello.ts) on what real TLS
 * clients send over real sockets: Node's TLS client and `openssl s_client`,
 * TLS 1.2 and 1.3, and a real ClientHello split into many records and fed a
 * byte at a time, as the proxy will read it from a connection.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import tls from "node:tls";
import { describe, test } from "node:test";
import { records } from "../../test/lib/tls-hello.ts";
import { readClientHello } from "../policy/tls-client-hello.ts";

/** The first bytes a real client sends, up to a whole ClientHello. */
async function capture(connect: (port: number) => { stop(): void }): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const accepted = once(server, "connection");
  const client = connect(port);
  const [socket] = (await accepted) as [net.Socket];
  let bytes = Buffer.alloc(0);
  for await (const chunk of socket) {
    bytes = Buffer.concat([bytes, chunk as Buffer]);
    if (readClientHello(bytes).state !== "incomplete") break;
  }
  socket.destroy();
  client.stop();
  server.close();
  return bytes;
}

function nodeClient(servername: string | undefined, options: tls.ConnectionOptions = {}) {
  return (port: number) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ...(servername === undefined ? {} : { servername }), ...options });
    socket.on("error", () => undefined);
    return { stop: () => socket.destroy() };
  };
}

function opensslClient(args: string[]) {
  return (port: number) => {
    const child = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, ...args], { stdio: ["pipe", "ignore", "ignore"] });
    return { stop: () => child.kill() };
  };
}

describe("readClientHello with real clients", () => {
  test("Node's TLS client: the name asked for, and none when connecting by address", async () => {
    const named = readClientHello(await capture(nodeClient("API.Stripe.com")));
    assert.equal(named.state, "complete");
    assert.equal(named.state === "complete" && named.serverName, "api.stripe.com");
    const unnamed = readClientHello(await capture(nodeClient(undefined)));
    assert.deepEqual(unnamed.state === "complete" && unnamed.serverName, undefined);
  });

  for (const version of ["-tls1_2", "-tls1_3"]) {
    test(`openssl s_client ${version} -servername`, async () => {
      const reading = readClientHello(await capture(opensslClient([version, "-servername", "api.shop.example"])));
      assert.equal(reading.state === "complete" && reading.serverName, "api.shop.example");
    });
  }

  test("a ClientHello split over many records and fed a byte at a time is read once whole, as one message", async () => {
    const bytes = await capture(nodeClient("split.example", { ALPNProtocols: ["h2", "http/1.1"] }));
    const whole = readClientHello(bytes);
    assert.equal(whole.state, "complete");
    // The handshake bytes again, in records of 37 bytes each.
    assert.equal(bytes.length, 5 + bytes.readUInt16BE(3), "Node sends its ClientHello in one record");
    const handshake = bytes.subarray(5);
    const split = records(handshake, 37);
    for (let n = 1; n < split.length; n++) assert.equal(readClientHello(split.subarray(0, n)).state, "incomplete", `after ${n} bytes`);
    assert.deepEqual(readClientHello(split), { state: "complete", serverName: "split.example", bytes: split.length, encryptedClientHello: false });
    // Application data may follow the ClientHello's last record (TLS 1.3 early data): it is not read.
    assert.equal(readClientHello(Buffer.concat([split, Buffer.from([23, 3, 3, 0, 1, 0])])).state, "complete");
  });
});

