import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer, type AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import type { ProberResponse } from "./prober.ts";
import { PROBER_PATH } from "./prober-pool.ts";

const tcpServer = createServer((socket) => socket.on("data", (data) => socket.end(data)));
const udpServer = createSocket("udp4");
// Accepts connections but never answers: the handshake alone is the TCP verdict.
const silentServer = createServer(() => undefined);
// Never answers: a stand-in for a datagram the datapath dropped.
const silentUdp = createSocket("udp4");
let tcpPort = 0;
let udpPort = 0;
let silentPort = 0;
let silentUdpPort = 0;

before(async () => {
  await new Promise<void>((resolve) => tcpServer.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => silentServer.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => udpServer.bind(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => silentUdp.bind(0, "127.0.0.1", resolve));
  udpServer.on("message", (msg, rinfo) => udpServer.send(msg, rinfo.port, rinfo.address));
  tcpPort = (tcpServer.address() as AddressInfo).port;
  silentPort = (silentServer.address() as AddressInfo).port;
  udpPort = udpServer.address().port;
  silentUdpPort = silentUdp.address().port;
});

after(() => {
  tcpServer.close();
  silentServer.close();
  udpServer.close();
  silentUdp.close();
});

test("the prober answers every request of a stream, each with how it ended", async () => {
  const child = spawn(process.execPath, [PROBER_PATH], { stdio: ["pipe", "pipe", "inherit"] });
  const answers = new Map<number, ProberResponse>();
  const done = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const response = JSON.parse(line) as ProberResponse;
      answers.set(response.id, response);
      if (answers.size === 8) resolve();
    });
  });
  const requests = [
    { id: 1, protocol: "TCP", host: "127.0.0.1", port: tcpPort, timeoutMs: 2000 },
    { id: 2, protocol: "UDP", host: "127.0.0.1", port: udpPort, timeoutMs: 2000 },
    { id: 3, protocol: "TCP", host: "127.0.0.1", port: 1, timeoutMs: 2000 },
    { id: 4, protocol: "UDP", host: "127.0.0.1", port: 1, timeoutMs: 2000 },
    { id: 5, protocol: "UDP", host: "127.0.0.1", port: silentUdpPort, timeoutMs: 300 },
    { id: 6, protocol: "ICMP", host: "127.0.0.1", port: 80, timeoutMs: 300 },
    { id: 7, protocol: "TCP", host: "127.0.0.1", port: silentPort, timeoutMs: 300 },
    { id: 8, protocol: "SCTP", host: "127.0.0.1", port: 80, timeoutMs: 300 },
  ];
  for (const request of requests) child.stdin.write(`${JSON.stringify(request)}\n`);
  await done;
  child.stdin.end();
  assert.deepEqual(answers.get(1), { id: 1, reason: "connected" });
  assert.deepEqual(answers.get(2), { id: 2, reason: "connected" });
  assert.deepEqual(answers.get(3), { id: 3, reason: "refused" });
  assert.deepEqual(answers.get(4), { id: 4, reason: "refused" });
  assert.deepEqual(answers.get(5), { id: 5, reason: "timeout" });
  assert.match(answers.get(6)?.error ?? "", /protocol "ICMP" is not TCP, UDP or SCTP/);
  assert.deepEqual(answers.get(7), { id: 7, reason: "connected" });
  assert.deepEqual(answers.get(8), { id: 8, error: "this prober has no SCTP prober (palisade-sctp)" });
});

/** Runs the prober for one probe; resolves with its exit status and output. */
function probeOnce(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PROBER_PATH, ...args], (error, stdout, stderr) => resolve({ status: error === null ? 0 : Number(error.code), stdout, stderr }));
  });
}

test("with a probe on its command line the prober sends just that one and exits with how it ended", async () => {
  assert.deepEqual(await probeOnce("tcp", "127.0.0.1", String(tcpPort), "2000"), { status: 0, stdout: "connected\n", stderr: "" });
  assert.deepEqual(await probeOnce("UDP", "127.0.0.1", String(udpPort), "2000"), { status: 0, stdout: "connected\n", stderr: "" });
  assert.deepEqual(await probeOnce("tcp", "127.0.0.1", "1", "2000"), { status: 1, stdout: "refused\n", stderr: "" });
  assert.deepEqual(await probeOnce("udp", "127.0.0.1", String(silentUdpPort), "300"), { status: 1, stdout: "timeout\n", stderr: "" });
  assert.deepEqual(await probeOnce("icmp", "127.0.0.1", "80", "300"), { status: 2, stdout: "", stderr: 'Cannot probe icmp 127.0.0.1 port 80: protocol "ICMP" is not TCP, UDP or SCTP\n' });
  assert.equal((await probeOnce("tcp", "127.0.0.1", "80")).status, 2);
});
