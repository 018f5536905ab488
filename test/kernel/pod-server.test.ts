/**
 * The dev cluster's pod server in real network namespaces (wired like the
 * CNI ptp plugin, no datapath attached): TCP and UDP echo, and SCTP answered
 * by its `palisade-sctp serve` child over raw sockets — INIT ACK on a served
 * port, ABORT on another, over IPv4 and IPv6 — and the two processes living
 * and dying together.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import type { ChildProcess } from "node:child_process";
import { sctpRawBinary } from "../../src/devcluster/node-runtime/index.ts";
import { PROBER_PATH } from "../../src/probe/index.ts";
import { HOLD_CONNECTION_PATH, waitForLine } from "../lib/hold-connection.ts";
import { NetnsNode, type NetnsPod } from "../lib/kernel.ts";
import { alive } from "../lib/processes.ts";

const podServerJs = fileURLToPath(new URL("../../src/devcluster/node-runtime/pod-server.js", import.meta.url));
const SERVER_PORTS = ["80/TCP", "81/UDP", "80/SCTP", "82/SCTP", "8080/TCP/http", "9090/TCP/http2"];

let cluster: NetnsNode;
let client: NetnsPod;
let server: NetnsPod;

/** Starts a pod server in `pod`; resolves once it printed "ready". */
async function startPodServer(pod: NetnsPod): Promise<ChildProcess> {
  const child = cluster.spawnIn(pod, process.execPath, [podServerJs, "--pod=shop/api", ...SERVER_PORTS]);
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line === "ready") return child;
  }
  throw new Error(`The pod server exited before it was ready (${child.exitCode})`);
}

/** The single child process of `pid`: the pod server's palisade-sctp. */
function onlyChild(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ").filter((c) => c !== "");
  assert.equal(children.length, 1, `pid ${pid} has children ${children.join(", ")}`);
  const child = Number(children[0]);
  assert.equal(readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0")[0], sctpRawBinary());
  return child;
}

function probe(from: NetnsPod, protocol: "tcp" | "udp" | "sctp", ip: string, port: number): string {
  const command = protocol === "sctp" ? [sctpRawBinary(), "probe"] : [process.execPath, PROBER_PATH, protocol];
  const [file, ...args] = command;
  return cluster.execIn(from, file as string, [...args, ip, String(port), "1000"]).stdout.trim();
}

describe("pod server", () => {
  before(() => {
    cluster = new NetnsNode();
    client = cluster.addPod("10.202.0.2", "fd00:202::2");
    server = cluster.addPod("10.202.0.3", "fd00:202::3");
  });

  after(() => cluster?.remove());

  test("serves TCP, UDP and SCTP on its ports over both families, and refuses SCTP elsewhere", async () => {
    const child = await startPodServer(server);
    try {
      for (const ip of [server.ipv4, server.ipv6]) {
        assert.equal(probe(client, "tcp", ip, 80), "connected", `TCP ${ip}:80`);
        assert.equal(probe(client, "udp", ip, 81), "connected", `UDP ${ip}:81`);
        assert.equal(probe(client, "sctp", ip, 80), "connected", `SCTP ${ip}:80`);
        assert.equal(probe(client, "sctp", ip, 82), "connected", `SCTP ${ip}:82`);
        assert.equal(probe(client, "sctp", ip, 81), "refused", `SCTP ${ip}:81 is answered by an ABORT`);
        // A TCP probe concludes at the handshake; the echo comes back on a held connection.
        const holder = cluster.spawnIn(client, process.execPath, [HOLD_CONNECTION_PATH, ip, "80"]);
        await waitForLine(holder, "connected");
        holder.stdin!.write("ping\n");
        await waitForLine(holder, "echo");
        holder.kill("SIGKILL");
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("answers HTTP/1.1 (keep-alive) and HTTP/2 with prior knowledge on its http and http2 ports, naming the pod, the request and the client", async () => {
    const child = await startPodServer(server);
    try {
      for (const [ip, client_] of [[server.ipv4, client.ipv4], [server.ipv6, client.ipv6]] as const) {
        const host = ip.includes(":") ? `[${ip}]` : ip;
        // Two requests in one curl run: the second reuses the first's connection (it opened none, %{num_connects} 0).
        const http1 = cluster.execIn(client, "curl", ["-sS", "--http1.1", "-X", "POST", "-w", "connects=%{num_connects}\\n", `http://${host}:8080/a?x=1`, `http://${host}:8080/b`]);
        const lines = http1.stdout.trim().split("\n");
        assert.deepEqual(lines.filter((line) => line.startsWith("connects=")), ["connects=1", "connects=0"]);
        assert.deepEqual(lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as unknown), [
          { pod: "shop/api", protocol: "HTTP/1.1", method: "POST", path: "/a?x=1", client: client_ },
          { pod: "shop/api", protocol: "HTTP/1.1", method: "POST", path: "/b", client: client_ },
        ]);
        const http2 = cluster.execIn(client, "curl", ["-sS", "--http2-prior-knowledge", "-w", "%{http_version}", `http://${host}:9090/pkg.Service/Get`]);
        assert.equal(http2.stdout, `${JSON.stringify({ pod: "shop/api", protocol: "HTTP/2", method: "GET", path: "/pkg.Service/Get", client: client_ })}\n2`);
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("an SCTP probe to a namespace without a responder is refused by ICMP", () => {
    // No raw SCTP socket in the client's namespace: its kernel answers protocol
    // unreachable (IPv4) or parameter problem, unrecognized next header (IPv6).
    assert.equal(probe(server, "sctp", client.ipv4, 80), "refused");
    assert.equal(probe(server, "sctp", client.ipv6, 80), "refused");
  });

  test("the pod server exits when its SCTP responder dies", async () => {
    const child = await startPodServer(server);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = once(child, "exit");
    process.kill(onlyChild(child.pid as number), "SIGKILL");
    const [code] = await exited;
    assert.equal(code, 2);
    assert.match(stderr, /Cannot serve SCTP ports 80, 82: palisade-sctp exited \(SIGKILL\)/);
  });

  test("the SCTP responder dies with the pod server", async () => {
    const child = await startPodServer(server);
    const responder = onlyChild(child.pid as number);
    child.kill("SIGKILL");
    await once(child, "exit");
    for (let i = 0; i < 100 && alive(responder); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(alive(responder), false, `palisade-sctp ${responder} outlived its pod server`);
  });
});
