/**
 * Steering to the node's transparent proxy with real traffic. A network
 * namespace stands for the node (the agent's, the proxy's and the host side
 * of every pod's veth), pods a and b are namespaces wired into it as the CNI
 * ptp plugin does, and a namespace r stands for a peer on another node,
 * routed through the node's uplink. The datapath is attached in the node
 * namespace with the proxy routing installed; a real transparent proxy
 * (test/lib/transparent-proxy.ts: listenTransparent + connectTransparent,
 * greeting each client with `proxied`) runs there, and real TCP clients
 * and servers (test/lib/line-peer.ts) in the pods. Each exchange is judged
 * by what the server saw (the client's own address and port), whether the
 * proxy greeted the client, and the reason counters.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Datapath, type ReasonName } from "../../src/datapath/index.ts";
import { DEFAULT_PROXY_PORT } from "../../src/datapath/transparent-socket.ts";
import {
  DIRECTION_EGRESS,
  DIRECTION_INGRESS,
  emptyDiff,
  EP_ISOLATED_EGRESS,
  EP_ISOLATED_INGRESS,
  ipcacheKeyOf,
  POLICY_FLAG_HTTP,
  PROTOCOL_NUMBERS,
  VERDICT_ALLOW,
  type Direction,
  type PolicyEntry,
} from "../../src/policy/desired-state.ts";
import { parseCidr } from "../../src/policy/ip.ts";
import { eventually } from "../lib/eventually.ts";
import { recordKernelObject } from "../lib/kernel-journal.ts";
import { run, tag, uniquePinRoot } from "../lib/kernel.ts";
import { LINE_PEER_PATH, parseExchange, type LineExchange } from "../lib/line-peer.ts";
import { addPeer, createNodeNamespace, POD_GATEWAY, type NodePeer } from "../lib/node-namespace.ts";
import { PROXY_NODE_PATH } from "../lib/proxy-node.ts";
import { REUSE_PEER_PATH, type ReuseExchange } from "../lib/reuse-peer.ts";
import { TRANSPARENT_PROXY_PATH } from "../lib/transparent-proxy.ts";

const node = process.execPath;
const { TCP } = PROTOCOL_NUMBERS;

/** A namespace with one veth into the node, and its identity. */
interface Peer extends NodePeer {
  identity: number;
}

const id = tag();
const NODE = `pl${id}-node`;
const A: Peer = { netns: `pl${id}-a`, hostIf: `pl${id}a`, v4: "10.210.0.2", v6: "fd00:210::2", identity: 500 };
const B: Peer = { netns: `pl${id}-b`, hostIf: `pl${id}b`, v4: "10.210.0.3", v6: "fd00:210::3", identity: 501 };
/** The peer on another node, behind the node's uplink. */
const R: Peer = { netns: `pl${id}-r`, hostIf: `pl${id}up`, v4: "10.99.0.2", v6: "fd99::2", identity: 502 };

// Ports of b's (and r's) server, one per case: what a's egress and b's ingress say about each.
const PORT = {
  egressHttp: 8080, // a's egress to b: HTTP; b's ingress: plain allow
  ingressHttp: 8081, // a's egress: plain; b's ingress (from a and from r): HTTP
  bothHttp: 8082, // HTTP on both sides
  plain: 8083, // plain on both sides (and from r)
  upstreamDenied: 8084, // a's egress: HTTP; b's ingress: nothing, so the proxy's upstream SYN is dropped
  revoked: 8085, // plain until a test makes b's ingress HTTP
  reuseIngress: 8086, // b's reuse server; a's egress: plain; b's ingress: HTTP
  reuseEgress: 8087, // b's reuse server; a's egress: HTTP; b's ingress: plain
} as const;
/** The ports of b's reuse server (test/lib/reuse-peer.ts), which line-peer leaves alone. */
const REUSE_PORTS: readonly number[] = [PORT.reuseIngress, PORT.reuseEgress];
const SLOT_A = 1;
const SLOT_B = 2;
let rule = 0;

function policy(slot: number, identity: number, direction: Direction, port: number, http: boolean): PolicyEntry {
  rule += 1;
  return {
    key: { slot, identity, direction, protocol: TCP, port, portPrefixLen: 16 },
    value: { verdict: VERDICT_ALLOW, auditVerdict: VERDICT_ALLOW, ruleId: rule, auditRuleId: rule, flags: http ? POLICY_FLAG_HTTP : 0 },
  };
}

const REVOCABLE = policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.revoked, false);
const POLICY: PolicyEntry[] = [
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.egressHttp, true),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.ingressHttp, false),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.bothHttp, true),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.plain, false),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.upstreamDenied, true),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.revoked, false),
  policy(SLOT_A, R.identity, DIRECTION_EGRESS, PORT.egressHttp, true),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.reuseIngress, false),
  policy(SLOT_A, B.identity, DIRECTION_EGRESS, PORT.reuseEgress, true),
  policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.reuseIngress, true),
  policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.reuseEgress, false),
  policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.egressHttp, false),
  policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.ingressHttp, true),
  policy(SLOT_B, R.identity, DIRECTION_INGRESS, PORT.ingressHttp, true),
  policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.bothHttp, true),
  policy(SLOT_B, A.identity, DIRECTION_INGRESS, PORT.plain, false),
  policy(SLOT_B, R.identity, DIRECTION_INGRESS, PORT.plain, false),
  REVOCABLE,
];

let datapath: Datapath;
let pinRoot: string;
const children: ChildProcess[] = [];
let proxy: ChildProcess | undefined;
let proxyOutput = "";
let serverOutput = "";

/** Starts a process in a namespace (only the network namespace: /sys keeps its bpffs), keeping its output. */
function spawnIn(netns: string, args: string[], onOutput: (text: string) => void): ChildProcess {
  const child = spawn("nsenter", [`--net=/var/run/netns/${netns}`, node, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  child.stdout.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
  children.push(child);
  return child;
}

async function startProxy(): Promise<void> {
  proxyOutput = "";
  proxy = spawnIn(NODE, [TRANSPARENT_PROXY_PATH, String(DEFAULT_PROXY_PORT)], (text) => (proxyOutput += text));
  await eventually("the proxy listens", () => proxyOutput.includes('"ready"'), { timeoutMs: 10_000, context: () => proxyOutput });
}

async function stopProxy(): Promise<void> {
  const child = proxy;
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** Runs a client in `from` against `to`:`port` (IPv6 when `v6`), closing with a FIN or an RST. */
function exchange(from: Peer, to: Peer, port: number, options: { v6?: boolean; close?: "fin" | "rst"; lines?: string[] } = {}): LineExchange {
  const host = options.v6 === true ? to.v6 : to.v4;
  const stdout = execFileSync("nsenter", [`--net=/var/run/netns/${from.netns}`, node, LINE_PEER_PATH, "request", host, String(port), options.close ?? "fin", ...(options.lines ?? ["one", "two", "three"])], {
    encoding: "utf8",
    timeout: 15_000,
  });
  return parseExchange(stdout);
}

/** Whether a client in `from` fails to connect to `to`:`port` (the line peer exits 2 after 3 s). */
function refused(from: Peer, to: Peer, port: number, v6 = false): boolean {
  try {
    exchange(from, to, port, { v6 });
    return false;
  } catch (error) {
    return (error as { status?: number }).status !== 0;
  }
}

function reasons(): Record<ReasonName, bigint> {
  return Object.fromEntries(Object.entries(datapath.reasonStats()).map(([name, counter]) => [name, counter.packets])) as Record<ReasonName, bigint>;
}

function delta(before: Record<ReasonName, bigint>, name: ReasonName): bigint {
  return reasons()[name] - before[name];
}

/** Asserts a request-response exchange went through the proxy and the server saw the client's own address and port. */
function assertProxied(result: LineExchange, lines: readonly string[], what: string): void {
  assert.equal(result.replies[0], "proxied", `${what}: the proxy greeted the client`);
  const expected = lines.map((line) => `${line} from ${result.local.address} ${result.local.port}`);
  assert.deepEqual(result.replies.slice(1), expected, `${what}: the server answered each request and saw the client's own address and port`);
  assert.deepEqual(result.closed, {}, `${what}: closed cleanly`);
}

function assertDirect(result: LineExchange, lines: readonly string[], what: string): void {
  assert.deepEqual(result.replies, lines.map((line) => `${line} from ${result.local.address} ${result.local.port}`), `${what}: answered directly`);
}

const LINES = ["one", "two", "three"] as const;

/** Connects from `from` to `to`:`port` from `localPort`, and lets the server or the client close first. */
function reuseExchange(from: Peer, to: Peer, port: number, localPort: number, closesFirst: "server" | "client", v6: boolean): ReuseExchange {
  const host = v6 ? to.v6 : to.v4;
  const args = [`--net=/var/run/netns/${from.netns}`, node, REUSE_PEER_PATH, "connect", host, String(port), String(localPort), closesFirst];
  const stdout = execFileSync("nsenter", args, { encoding: "utf8", timeout: 15_000 });
  return JSON.parse(stdout) as ReuseExchange;
}

/** The node namespace's TCP sockets in `state` (ss's names, e.g. `time-wait`), as `local peer` lines. */
function nodeSockets(state: string): string[] {
  const out = execFileSync("ip", ["netns", "exec", NODE, "ss", "-Htan", "state", state], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.trim() !== "").map((line) => line.trim().split(/\s+/).slice(-2).join(" "));
}

/** ss's form of an address and port. */
function ssEndpoint(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Whether `peer`'s namespace still holds a TCP socket on local port `port` (e.g. in LAST-ACK). */
function holdsPort(peer: Peer, port: number): boolean {
  return execFileSync("ip", ["netns", "exec", peer.netns, "ss", "-Htan", `sport = :${port}`], { encoding: "utf8" }).trim() !== "";
}

/**
 * Connects from a to b twice from the same local port (after `basePort`), on each of b's reuse ports (one
 * steered at a's hook, one at b's), IPv4 and IPv6, with the server or the client closing first. Either way the
 * node keeps the first connection's tuple in TIME_WAIT: the proxy's accepted socket when the server closes
 * first (the proxy then closes the client's leg first), its upstream socket when the client does. The second
 * connection must go through as it would without the proxy.
 */
async function connectTwiceFromOnePort(closesFirst: "server" | "client", basePort: number): Promise<void> {
  let localPort = basePort;
  for (const port of REUSE_PORTS) {
    for (const v6 of [false, true]) {
      localPort += 1;
      const what = `port ${port}, IPv${v6 ? 6 : 4}, from port ${localPort}`;
      const greeting = ["proxied", `hello ${v6 ? A.v6 : A.v4} ${localPort}`];
      const client = ssEndpoint(v6 ? A.v6 : A.v4, localPort);
      const server = ssEndpoint(v6 ? B.v6 : B.v4, port);
      const timeWait = closesFirst === "server" ? `${server} ${client}` : `${client} ${server}`;
      assert.deepEqual(reuseExchange(A, B, port, localPort, closesFirst, v6).replies, greeting, `${what}: the first connection`);
      await eventually(`${what}: the node holds the tuple in TIME_WAIT`, () => nodeSockets("time-wait").includes(timeWait), { timeoutMs: 10_000, context: () => nodeSockets("all").join("\n") });
      // A client that closed second has its socket in LAST-ACK until the proxy's last ACK; one that closed first keeps it in TIME_WAIT, which tcp_tw_reuse lets connect take again.
      if (closesFirst === "server") await eventually(`${what}: the client's socket is gone`, () => !holdsPort(A, localPort), { timeoutMs: 10_000 });
      assert.deepEqual(reuseExchange(A, B, port, localPort, closesFirst, v6).replies, greeting, `${what}: the second connection from the same port`);
    }
  }
}

describe("steering to the node's transparent proxy, real traffic", () => {
  before(async () => {
    createNodeNamespace(NODE);
    addPeer(NODE, A, POD_GATEWAY, undefined);
    addPeer(NODE, B, POD_GATEWAY, undefined);
    addPeer(NODE, R, { v4: "10.99.0.1", v6: "fd99::1" }, { v4: "10.99.0.1", v6: "fd99::1" });
    pinRoot = uniquePinRoot("proxy");
    datapath = Datapath.open({ pinRoot });
    const setup = JSON.parse(execFileSync("nsenter", [`--net=/var/run/netns/${NODE}`, node, PROXY_NODE_PATH, pinRoot, A.hostIf, B.hostIf], { encoding: "utf8" })) as {
      ifindexes: Record<string, number>;
      device: { ifindex: number; receiverIfindex: number; mac: string };
    };
    const ifindexOf = (pod: string) => setup.ifindexes[pod === "a" ? A.hostIf : B.hostIf];
    datapath.apply(
      {
        ...emptyDiff(),
        policyUpserts: POLICY,
        endpointUpserts: [
          ["a", { endpointId: 1, identity: A.identity, slot: SLOT_A, flags: EP_ISOLATED_EGRESS }],
          ["b", { endpointId: 2, identity: B.identity, slot: SLOT_B, flags: EP_ISOLATED_INGRESS }],
        ],
        ipcacheUpserts: [A, B, R].flatMap((peer) =>
          [`${peer.v4}/32`, `${peer.v6}/128`].map((cidr) => ({ key: ipcacheKeyOf(parseCidr(cidr)), value: { identity: peer.identity, flags: 0 } })),
        ),
      },
      ifindexOf,
    );
    datapath.setProxy({ ifindex: setup.device.ifindex, port: DEFAULT_PROXY_PORT, mac: setup.device.mac });
    const ports = Object.values(PORT).filter((port) => !REUSE_PORTS.includes(port)).map(String);
    for (const peer of [B, R]) {
      let output = "";
      spawnIn(peer.netns, [LINE_PEER_PATH, "serve", ...ports], (text) => {
        output += text;
        serverOutput += text;
      });
      await eventually(`the server in ${peer.netns} listens`, () => output.includes('"ready"'), { timeoutMs: 10_000, context: () => output });
    }
    let reuseOutput = "";
    spawnIn(B.netns, [REUSE_PEER_PATH, "serve", ...REUSE_PORTS.map(String)], (text) => (reuseOutput += text));
    await eventually("the reuse server listens", () => reuseOutput.includes('"ready"'), { timeoutMs: 10_000, context: () => reuseOutput });
    await startProxy();
  });

  after(async () => {
    for (const child of children) child.kill("SIGKILL");
    try {
      datapath?.destroy();
    } finally {
      for (const netns of [A.netns, B.netns, R.netns, NODE]) {
        try {
          run("ip", ["netns", "del", netns]);
        } catch {
          // Never made.
        }
      }
    }
  });

  test("a's egress HTTP rule: a's connection to b goes through the proxy, several requests, IPv4 and IPv6; b sees a's own address and port", () => {
    const before = reasons();
    for (const v6 of [false, true]) {
      assertProxied(exchange(A, B, PORT.egressHttp, { v6 }), LINES, `a to b egress-steered, IPv${v6 ? 6 : 4}`);
    }
    assert.ok(delta(before, "to-proxy") > 0n, "steered packets counted as to-proxy");
    const flows = datapath.conntrackEntries().filter((e) => e.flow.dport === PORT.egressHttp);
    assert.ok(flows.some((e) => e.flow.direction === DIRECTION_EGRESS && e.value.proxied === true), "a's flow is proxied");
    assert.ok(flows.some((e) => e.flow.direction === DIRECTION_INGRESS && e.value.proxyUpstream === true), "b sees the proxy's upstream flow");
  });

  test("b's ingress HTTP rule: a's connection from the same node, and r's from behind the uplink, go through the proxy", () => {
    for (const v6 of [false, true]) {
      assertProxied(exchange(A, B, PORT.ingressHttp, { v6 }), LINES, `a to b ingress-steered, IPv${v6 ? 6 : 4}`);
      assertProxied(exchange(R, B, PORT.ingressHttp, { v6 }), LINES, `r to b ingress-steered, IPv${v6 ? 6 : 4}`);
    }
  });

  test("HTTP rules on both sides: one pass through the proxy", () => {
    for (const v6 of [false, true]) assertProxied(exchange(A, B, PORT.bothHttp, { v6 }), LINES, `a to b both steered, IPv${v6 ? 6 : 4}`);
    assert.ok(
      datapath.conntrackEntries().some((e) => e.flow.dport === PORT.bothHttp && e.flow.direction === DIRECTION_INGRESS && e.value.proxyUpstream === true),
      "the proxy's upstream leg is not steered again at b",
    );
  });

  test("client and server on different nodes: the server's replies come back to a's interface and reach the proxy's upstream socket", () => {
    for (const v6 of [false, true]) assertProxied(exchange(A, R, PORT.egressHttp, { v6 }), LINES, `a to r egress-steered, IPv${v6 ? 6 : 4}`);
  });

  test("an RST from the client reaches the server through the proxy", async () => {
    const result = exchange(A, B, PORT.ingressHttp, { close: "rst", lines: ["one"] });
    assert.equal(result.replies[0], "proxied");
    const peer = `"address":"${A.v4}","port":${result.local.port}`;
    await eventually("the server sees the reset", () => serverOutput.split("\n").some((line) => line.includes('"reset"') && line.includes(peer)), {
      timeoutMs: 10_000,
      context: () => serverOutput,
    });
    const fin = exchange(A, B, PORT.ingressHttp, { lines: ["one"] });
    await eventually("the server sees the FIN", () => serverOutput.split("\n").some((line) => line.includes('"end"') && line.includes(`"port":${fin.local.port}`)), {
      timeoutMs: 10_000,
      context: () => serverOutput,
    });
  });

  test("only the proxy's SYNs open upstream legs: every upstream entry goes to a server port, never back to a client", () => {
    const serverPorts = new Set<number>(Object.values(PORT));
    const upstream = datapath.conntrackEntries().filter((e) => e.value.proxyUpstream);
    assert.ok(upstream.length > 0, "the earlier tests opened upstream legs");
    // A late packet of the proxy's accepted socket (server address to client) marked upstream would send
    // a later direct connection on the client's reused tuple to the proxy's TIME_WAIT sockets.
    assert.deepEqual(upstream.filter((e) => !serverPorts.has(e.flow.dport)).map((e) => e.key), []);
  });

  test("a client port taken again right after the proxy closed first (its accepted socket in TIME_WAIT) connects through the proxy, at either hook, IPv4 and IPv6", async () => {
    await connectTwiceFromOnePort("server", 41000);
  });

  test("a client port taken again from the client's own TIME_WAIT (tcp_tw_reuse), the proxy's upstream leg in TIME_WAIT on the same tuple, connects through the proxy", async () => {
    run("ip", ["netns", "exec", A.netns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.tcp_tw_reuse_delay=1"]);
    await connectTwiceFromOnePort("client", 42000);
  });

  test("a client that sends its request and its FIN before the proxy connects upstream gets its answer, and the proxy's last FIN is acknowledged (no socket left in LAST-ACK), at either hook, IPv4 and IPv6", async () => {
    for (const port of [PORT.ingressHttp, PORT.egressHttp]) {
      for (const v6 of [false, true]) {
        const what = `port ${port}, IPv${v6 ? 6 : 4}`;
        const [client, server] = v6 ? [A.v6, B.v6] : [A.v4, B.v4];
        // Stopped, the proxy accepts nothing, so the request and the FIN reach the node before the proxy's
        // upstream SYN, as they do at an HTTP proxy that connects once it has read a request.
        proxy?.kill("SIGSTOP");
        const exchanged = promisify(execFile)("nsenter", [`--net=/var/run/netns/${A.netns}`, node, LINE_PEER_PATH, "request", server, String(port), "half", "one"], {
          encoding: "utf8",
          timeout: 15_000,
        });
        try {
          await eventually(`${what}: the client's FIN reached the socket the proxy has yet to accept`, () => nodeSockets("close-wait").some((line) => line.startsWith(`${ssEndpoint(server, port)} `)), {
            timeoutMs: 5_000,
          });
        } finally {
          proxy?.kill("SIGCONT");
        }
        const result = parseExchange((await exchanged).stdout);
        assert.deepEqual(result.replies, ["proxied", `one from ${client} ${result.local.port}`], `${what}: answered through the proxy`);
        // The proxy closed its client leg second: the client's ACK of that FIN ends it (no TIME_WAIT).
        const clientLeg = `${ssEndpoint(server, port)} ${ssEndpoint(client, result.local.port)}`;
        await eventually(`${what}: the proxy's client leg is closed, not left in LAST-ACK`, () => !nodeSockets("all").includes(clientLeg), {
          timeoutMs: 3_000,
          context: () => nodeSockets("all").join("\n"),
        });
      }
    }
  });

  test("the node's sk_lookup link is pinned on the node's namespace and kept when the datapath is set up again (an agent restart)", () => {
    const pin = `${pinRoot}/links/proxy-sk-lookup`;
    const show = () => JSON.parse(execFileSync("bpftool", ["-j", "link", "show", "pinned", pin], { encoding: "utf8" })) as { id: number; type: string; netns_ino: number };
    const before = show();
    assert.equal(before.type, "netns");
    assert.equal(before.netns_ino, statSync(`/var/run/netns/${NODE}`).ino);
    execFileSync("nsenter", [`--net=/var/run/netns/${NODE}`, node, PROXY_NODE_PATH, pinRoot, A.hostIf, B.hostIf], { encoding: "utf8" });
    assert.equal(show().id, before.id);
  });

  test("flows without HTTP rules never go to the proxy", () => {
    const before = reasons();
    for (const v6 of [false, true]) {
      assertDirect(exchange(A, B, PORT.plain, { v6 }), LINES, `a to b plain, IPv${v6 ? 6 : 4}`);
      assertDirect(exchange(R, B, PORT.plain, { v6 }), LINES, `r to b plain, IPv${v6 ? 6 : 4}`);
    }
    assert.equal(delta(before, "to-proxy"), 0n, "no packet was steered");
    assert.equal(delta(before, "proxy-unavailable"), 0n);
    assert.ok(delta(before, "established") > 0n);
  });

  test("the proxy is no way around L3/L4 policy: an upstream connection b's ingress does not allow is dropped", async () => {
    const before = reasons();
    // The proxy takes the client's connection (a's egress allows it), but never reaches b: it closes the client's.
    const result = exchange(A, B, PORT.upstreamDenied);
    assert.deepEqual(result.replies, [], "no greeting, no answer");
    assert.ok(delta(before, "default-deny") > 0n, "the proxy's upstream SYN was dropped by b's ingress policy");
    await eventually(
      "the proxy reports its upstream connection failed",
      () => proxyOutput.includes(`"client":"${A.v4} ${result.local.port}","destination":"${B.v4} ${PORT.upstreamDenied}","error":"ETIMEDOUT"`),
      { timeoutMs: 10_000, context: () => proxyOutput },
    );
    assert.equal(serverOutput.includes(`"local":${PORT.upstreamDenied}`), false, "b's server never saw a connection");
  });

  test("a tracked plain connection whose entry now needs the proxy is revoked on its next packet; the client reconnects through the proxy", async () => {
    let output = "";
    const holder = spawnIn(A.netns, [LINE_PEER_PATH, "hold", B.v4, String(PORT.revoked)], (text) => (output += text));
    await eventually("connected", () => output.includes('"local"'), { timeoutMs: 10_000, context: () => output });
    holder.stdin!.write("one\n");
    await eventually("the first request is answered", () => output.includes('"reply"'), { timeoutMs: 10_000, context: () => output });
    const before = reasons();
    datapath.apply({ ...emptyDiff(), policyUpserts: [{ key: REVOCABLE.key, value: { ...REVOCABLE.value, flags: POLICY_FLAG_HTTP } }] }, () => undefined);
    try {
      holder.stdin!.write("two\n");
      await eventually("the next packet is dropped as revoked", () => delta(before, "revoked") > 0n, { timeoutMs: 10_000 });
      assert.equal(
        datapath.conntrackEntries().some((e) => e.flow.dport === PORT.revoked && e.flow.direction === DIRECTION_INGRESS && e.value.proxied !== true),
        false,
        "the plain flow's entry at b is gone",
      );
      assertProxied(exchange(A, B, PORT.revoked), LINES, "a new connection after the change");
      assertDirect(exchange(A, B, PORT.plain, { lines: ["x"] }), ["x"], "another plain flow is unaffected");
    } finally {
      holder.kill("SIGKILL");
      datapath.apply({ ...emptyDiff(), policyUpserts: [REVOCABLE] }, () => undefined);
    }
  });

  test("proxy down: flows that need it are dropped as proxy-unavailable, the others pass; no proxy configured is the same", async () => {
    await stopProxy();
    let before = reasons();
    assert.ok(refused(A, B, PORT.egressHttp), "a's egress-steered flow has no proxy");
    assert.ok(delta(before, "proxy-unavailable") > 0n, "dropped at a's from-pod hook");
    before = reasons();
    assert.ok(refused(A, B, PORT.ingressHttp, true), "b's ingress-steered flow has no proxy");
    assert.ok(delta(before, "proxy-unavailable") > 0n, "dropped at b's to-pod hook");
    assertDirect(exchange(A, B, PORT.plain), LINES, "a plain flow meanwhile");
    await startProxy();
    const config = datapath.readProxy();
    datapath.setProxy(undefined);
    try {
      before = reasons();
      assert.ok(refused(R, B, PORT.ingressHttp), "no proxy configured");
      assert.ok(delta(before, "proxy-unavailable") > 0n);
      assertDirect(exchange(R, B, PORT.plain), LINES, "a plain flow meanwhile");
    } finally {
      datapath.setProxy(config);
    }
    assertProxied(exchange(R, B, PORT.ingressHttp), LINES, "the proxy back");
  });
});

describe("proxy routing", () => {
  const netns = `pl${tag()}-routing`;
  after(() => {
    try {
      run("ip", ["netns", "del", netns]);
    } catch {
      // Never made.
    }
  });

  test("installProxyRouting is idempotent and returns the device; removeProxyRouting undoes it, twice over", () => {
    recordKernelObject("netns", netns);
    run("ip", ["netns", "add", netns]);
    const routing = new URL("../../src/datapath/proxy-routing.js", import.meta.url).href;
    const script = `import { installProxyRouting, removeProxyRouting } from ${JSON.stringify(routing)};
      const [op, times] = process.argv.slice(1);
      let device;
      for (let i = 0; i < Number(times); i++) device = op === "install" ? installProxyRouting() : removeProxyRouting();
      console.log(JSON.stringify(device ?? null));`;
    const inNetns = (...args: string[]) => execFileSync("nsenter", [`--net=/var/run/netns/${netns}`, ...args], { encoding: "utf8" });
    const device = JSON.parse(inNetns(node, "--input-type=module", "-e", script, "install", "2")) as { ifindex: number; receiverIfindex: number; mac: string };
    const links = JSON.parse(inNetns("ip", "-j", "link", "show")) as { ifname: string; ifindex: number; address: string; operstate: string }[];
    const byName = new Map(links.map((l) => [l.ifname, l]));
    assert.equal(byName.get("pal_proxy")?.ifindex, device.ifindex);
    assert.equal(byName.get("pal_proxy_in")?.ifindex, device.receiverIfindex);
    assert.equal(byName.get("pal_proxy_in")?.address, device.mac);
    for (const family of ["-4", "-6"]) {
      assert.match(inNetns("ip", family, "rule", "show", "pref", "90"), /^90:\s+from all fwmark 0xa00\/0xf00 lookup 2047\s*$/, `one rule, IPv${family.slice(1)}`);
      assert.match(inNetns("ip", family, "route", "show", "table", "2047"), /^local default dev lo/);
    }
    assert.equal(inNetns("cat", "/proc/sys/net/ipv4/tcp_early_demux").trim(), "0");
    assert.equal(inNetns("cat", "/proc/sys/net/ipv4/conf/pal_proxy_in/rp_filter").trim(), "2");
    assert.equal(inNetns("cat", "/proc/sys/net/ipv6/conf/pal_proxy/disable_ipv6").trim(), "1");
    assert.match(inNetns("ip", "-4", "addr", "show", "dev", "pal_proxy_in"), /inet 169\.254\.77\.1\/32/);
    inNetns(node, "--input-type=module", "-e", script, "remove", "2");
    assert.equal(inNetns("ip", "-4", "rule", "show", "pref", "90").trim(), "");
    assert.equal(inNetns("ip", "-6", "rule", "show", "pref", "90").trim(), "");
    assert.equal(inNetns("ip", "-4", "route", "show", "table", "2047").trim(), "");
    assert.equal(inNetns("cat", "/proc/sys/net/ipv4/tcp_early_demux").trim(), "1");
    assert.doesNotMatch(inNetns("ip", "link", "show"), /pal_proxy/);
  });
});
