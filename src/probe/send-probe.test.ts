import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { test } from "node:test";
import { sendProbe, UDP_PROBE_SENDS, type ProbeReason } from "./send-probe.ts";

/**
 * Sends one UDP probe to a server on 127.0.0.1 that answers only the
 * datagrams `answers` picks (by their 1-based number), as a busy or lossy
 * path lets some through; resolves with the verdict and how many datagrams
 * reached the server.
 */
async function probeLossyEcho(answers: (n: number) => boolean, timeoutMs: number): Promise<{ reason: ProbeReason; received: number }> {
  const socket = createSocket("udp4");
  let received = 0;
  socket.on("message", (message, peer) => {
    received++;
    if (answers(received)) socket.send(message, peer.port, peer.address);
  });
  try {
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const reason = await sendProbe({ protocol: "UDP", host: "127.0.0.1", port: socket.address().port, timeoutMs }, undefined);
    // Whatever the probe might still send would arrive within this.
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { reason, received };
  } finally {
    socket.close();
  }
}

test("a UDP probe sends its datagram again within its timeout, so lost datagrams do not read as a drop", async () => {
  assert.deepEqual(await probeLossyEcho((n) => n > 2, 3000), { reason: "connected", received: 3 });
});

test("a UDP probe that no datagram answers ends in a timeout, having sent it again but never more than its tries", async () => {
  const { reason, received } = await probeLossyEcho(() => false, 2000);
  assert.equal(reason, "timeout");
  // All of them unless this process stalled for a whole interval (timers that fire late are not caught up).
  assert.ok(received >= 2 && received <= UDP_PROBE_SENDS, `${received} datagrams`);
});

test("a UDP probe concludes at the first echo and sends nothing after it", async () => {
  // A timeout long enough that a second datagram is not due before the echo.
  assert.deepEqual(await probeLossyEcho(() => true, 60_000), { reason: "connected", received: 1 });
});
