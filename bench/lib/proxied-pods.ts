/**
 * Two pods on one node with the node's transparent proxy between them, as
 * the proxy steering suite builds them: a network namespace for the node,
 * a client and a server pod wired into it (test/lib/node-namespace.ts), the
 * real datapath attached to both pods' interfaces with the proxy routing
 * and device installed in the node namespace (test/lib/proxy-node.ts), and
 * a real `palisade proxy` process there (started with `nsenter --net`,
 * which keeps bpffs in view, unlike `ip netns exec`) reading an HTTP view
 * file written before it starts. Policies go through the real compiler: {@link ProxiedPods.applyPolicies}
 * compiles a world of the two pods and replaces the datapath's state.
 * Everything is registered on the cleanup stack as it is made.
 *
 * @module
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Datapath, DEFAULT_PROXY_PORT, PROXY_NODE_FLAGS, type ReasonName } from "../../src/datapath/index.ts";
import { compileWorld, type AnyPolicy, type PolicyCompiler, type World } from "../../src/policy/index.ts";
import { tag, uniquePinRoot } from "../../test/lib/kernel.ts";
import { addPeer, createNodeNamespace, POD_GATEWAY, type NodePeer } from "../../test/lib/node-namespace.ts";
import { PROXY_NODE_PATH } from "../../test/lib/proxy-node.ts";
import type { CleanupStack } from "./cleanup.ts";
import { waitForListener } from "./listener.ts";

/** The namespace of the two pods in the compiled world. */
export const POD_NAMESPACE = "bench";

const CLI_PATH = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const RELAY_PATH = fileURLToPath(new URL("./socket-relay.js", import.meta.url));

/** A pod of the pair: its wiring, its ifindex in the node namespace, and its key in the world. */
export interface BenchPod extends NodePeer {
  name: string;
  ifindex: number;
}

/** A process the datapath can steer to (the proxy, or the relay in its place) as the benchmark watches it. */
export interface ProxyProcess {
  pid: number;
  /** Its transparent listener's port. */
  port: number;
  /** What it wrote so far (JSON log lines). */
  output(): string;
}

/** The pods, the datapath, and the proxy between them. */
export interface ProxiedPods {
  node: string;
  client: BenchPod;
  server: BenchPod;
  datapath: Datapath;
  proxy: ProxyProcess;
  /**
   * Compiles the two pods and `policies` with the real compiler, replaces the
   * datapath's state with the result and clears conntrack; returns the
   * compiler (its `httpView()` is what the proxy needs).
   */
  applyPolicies(policies: readonly AnyPolicy[]): PolicyCompiler;
  /** A folder for `what` inside the benchmark's scratch folder (removed on cleanup). */
  scratch(what: string): string;
  /** The datapath's reason counters (packets). */
  reasons(): Record<ReasonName, bigint>;
  /** Makes the datapath steer new proxied flows to `target`'s listener (the proxy's at start). */
  steerTo(target: ProxyProcess): void;
  /**
   * Starts the byte relay of socket-relay.ts in the node namespace, listening
   * transparently on `port` as the proxy does on its own and connecting each
   * flow to its original destination as the proxy does: steered to with
   * {@link ProxiedPods.steerTo}, it takes the proxy's place without its work.
   */
  startRelay(port: number): Promise<ProxyProcess>;
}

/** The world of the two pods under `policies`. */
export function podWorld(pods: readonly BenchPod[], policies: readonly AnyPolicy[]): World {
  return {
    namespaces: new Map([[POD_NAMESPACE, { name: POD_NAMESPACE, labels: { "kubernetes.io/metadata.name": POD_NAMESPACE } }]]),
    pods: new Map(pods.map((pod) => [`${POD_NAMESPACE}/${pod.name}`, { namespace: POD_NAMESPACE, name: pod.name, labels: { app: pod.name }, ips: [pod.v4, pod.v6], namedPorts: [] }])),
    policies: [...policies],
    hostIPs: [],
  };
}

function removeNetns(name: string): void {
  try {
    execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
  } catch {
    // Never made, or already gone.
  }
}

/**
 * Starts `script ARGS` with the proxy's Node flags in the node namespace,
 * as `what`; resolves once something listens on `port` there.
 */
async function startNodeProcess(cleanup: CleanupStack, node: string, what: string, port: number, script: string, args: readonly string[]): Promise<ProxyProcess> {
  const child = spawn("nsenter", [`--net=/var/run/netns/${node}`, process.execPath, ...PROXY_NODE_FLAGS, script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  cleanup.add(`${what} in ${node}`, () => child.kill("SIGKILL"));
  await waitForListener(node, port, () => (child.exitCode === null ? undefined : `${what} exited with ${child.exitCode}: ${output.trim()}`));
  const pid = child.pid!;
  // nsenter without --fork execs the command: the pid is the process's own.
  const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  if (command[1 + PROXY_NODE_FLAGS.length] !== script) throw new Error(`Cannot watch ${what}: process ${pid} runs "${command.join(" ")}", not ${script}`);
  return { pid, port, output: () => output };
}

/** What the proxy needs beyond the pods: run in the node namespace before it starts, returns its extra flags. */
export type PrepareProxy = (node: string) => Promise<string[]>;

/**
 * Builds the node, the pods (client and server, IPv4 and IPv6), the
 * datapath with proxy routing, writes the HTTP view of `viewPolicies` (as
 * the agent would: the view holds what the proxy judges by, so it stays
 * right for every policy set whose HTTP and TLS rules are these), applies
 * them, runs `prepare` and starts the proxy with the flags it returns.
 *
 * @example
 * ```ts
 * const pods = await setUpProxiedPods(cleanup, [webPolicy]);
 * pods.applyPolicies([]); // no policy: nothing steered
 * ```
 */
export async function setUpProxiedPods(cleanup: CleanupStack, viewPolicies: readonly AnyPolicy[], prepare: PrepareProxy = () => Promise.resolve([])): Promise<ProxiedPods> {
  const id = tag();
  const node = `pl${id}-node`;
  const pod = (name: string, host: number): BenchPod => ({
    name,
    netns: `pl${id}-${name}`,
    hostIf: `pl${id}${name[0]}`,
    v4: `10.251.0.${host}`,
    v6: `fd00:251::${host}`,
    ifindex: 0,
  });
  const client = pod("client", 2);
  const server = pod("server", 3);
  cleanup.add(`network namespaces of ${node}`, () => [client.netns, server.netns, node].forEach(removeNetns));
  createNodeNamespace(node);
  addPeer(node, client, POD_GATEWAY, undefined);
  addPeer(node, server, POD_GATEWAY, undefined);
  // Enough source ports that a client opening a connection per request never waits for one.
  execFileSync("ip", ["netns", "exec", client.netns, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"]);

  const pinRoot = uniquePinRoot("bench");
  const datapath = Datapath.open({ pinRoot });
  cleanup.add(`datapath pinned at ${pinRoot}`, () => datapath.destroy());
  const setup = JSON.parse(
    execFileSync("nsenter", [`--net=/var/run/netns/${node}`, process.execPath, PROXY_NODE_PATH, pinRoot, client.hostIf, server.hostIf], { encoding: "utf8" }),
  ) as { ifindexes: Record<string, number>; device: { ifindex: number; mac: string } };
  client.ifindex = setup.ifindexes[client.hostIf]!;
  server.ifindex = setup.ifindexes[server.hostIf]!;
  const steerTo = (target: Pick<ProxyProcess, "port">) => datapath.setProxy({ ifindex: setup.device.ifindex, port: target.port, mac: setup.device.mac });
  steerTo({ port: DEFAULT_PROXY_PORT });

  const dir = mkdtempSync("/tmp/palisade-bench-http-");
  cleanup.add(`folder ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const viewFile = join(dir, "http-view.json");
  const ifindexOf = (key: string) => [client, server].find((p) => `${POD_NAMESPACE}/${p.name}` === key)?.ifindex;
  const applyPolicies = (policies: readonly AnyPolicy[]): PolicyCompiler => {
    const { compiler, state } = compileWorld(podWorld([client, server], policies));
    datapath.replaceAll(state, ifindexOf);
    datapath.clearConntrack();
    return compiler;
  };
  writeFileSync(viewFile, JSON.stringify(applyPolicies(viewPolicies).httpView()));
  const flags = await prepare(node);
  const proxy = await startNodeProcess(cleanup, node, "palisade proxy", DEFAULT_PROXY_PORT, CLI_PATH, [
    "proxy", "--http-view-file", viewFile, "--pin-root", pinRoot, "--port", String(DEFAULT_PROXY_PORT), "--log-level", "info", ...flags,
  ]);
  return {
    node,
    client,
    server,
    datapath,
    proxy,
    applyPolicies,
    scratch: (what) => join(dir, what),
    reasons() {
      return Object.fromEntries(Object.entries(datapath.reasonStats()).map(([name, counter]) => [name, counter.packets])) as Record<ReasonName, bigint>;
    },
    steerTo,
    startRelay: (port) => startNodeProcess(cleanup, node, "the relay", port, RELAY_PATH, [`transparent:${port}`, "original"]),
  };
}
