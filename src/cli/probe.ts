/**
 * `palisade probe`: real packets between the dev cluster's pods. A prober
 * (prober.ts) runs inside the source pod's network namespace (the dev node
 * runtime names it `pal-<node index>-<first 8 chars of the pod uid>`) and
 * connects to the target pod's IP, where the node runtime's pod server
 * answers on the declared ports. TCP and UDP are sent from Node; SCTP
 * through `palisade-sctp probe`, which sends an INIT over a raw socket (the
 * kernel may have no SCTP sockets) and reports the same way.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { V1Pod } from "@kubernetes/client-node";
import { parseObjectKey } from "../k8s/cache.ts";
import { KubeClient } from "../k8s/client.ts";
import { resourcePath, Resources } from "../k8s/resource.ts";
import { verdictTable, type PairVerdict } from "./verdict-table.ts";
import { UsageError } from "./usage-error.ts";
import { ProberPool } from "./prober-pool.ts";

/** What one probe sends. */
export interface ProbeTarget {
  port: number;
  protocol: "TCP" | "UDP" | "SCTP";
  family: "ipv4" | "ipv6";
  timeoutMs: number;
}

/** How one probe ended. */
export interface ProbeResult {
  allowed: boolean;
  reason: "connected" | "timeout" | "refused";
}

const NODE_PREFIX = "palisade-node-";

/** The network namespace the dev node runtime made for `pod`. */
export function podNetns(pod: V1Pod): string {
  const label = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  const node = pod.spec?.nodeName ?? "";
  const index = node.startsWith(NODE_PREFIX) ? Number(node.slice(NODE_PREFIX.length)) : Number.NaN;
  if (!Number.isInteger(index) || index < 1) {
    throw new UsageError(`Cannot probe from pod "${label}": spec.nodeName "${node}" is not a dev cluster node (${NODE_PREFIX}<n>)`);
  }
  const uid = pod.metadata?.uid ?? "";
  return `pal-${index}-${uid.slice(0, 8)}`;
}

/** The pod's address of `family`, or undefined when it has none. */
export function podAddress(pod: V1Pod, family: "ipv4" | "ipv6"): string | undefined {
  const ips = (pod.status?.podIPs ?? []).map((entry) => entry.ip);
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return ips.find((ip) => ip.includes(":") === (family === "ipv6"));
}

/**
 * Runs one probe from the namespace `netns` to `ip`, through `pool` (a
 * prober of its own, closed afterwards, when none is given).
 */
export async function probeOnce(netns: string, ip: string, target: ProbeTarget, pool?: ProberPool): Promise<ProbeResult> {
  const own = pool === undefined ? new ProberPool() : undefined;
  try {
    const reason = await (pool ?? (own as ProberPool)).probe(netns, { protocol: target.protocol, host: ip, port: target.port, timeoutMs: target.timeoutMs });
    return { allowed: reason === "connected", reason };
  } finally {
    own?.close();
  }
}

function splitRef(ref: string, flag: string): { namespace: string; name: string } {
  const { namespace, name } = parseObjectKey(ref);
  if (!namespace || !name || name.includes("/")) throw new UsageError(`Cannot probe: ${flag} "${ref}" is not NAMESPACE/POD`);
  return { namespace, name };
}

async function getPod(client: KubeClient, ref: string, flag: string): Promise<V1Pod> {
  return client.request<V1Pod>("GET", resourcePath(Resources.pods, splitRef(ref, flag)));
}

/**
 * Probes from one pod to another; returns the verdict.
 *
 * @example
 * ```ts
 * const result = await probePods(client, "x/a", "y/b", { port: 80, protocol: "TCP", family: "ipv4", timeoutMs: 1000 });
 * ```
 */
export async function probePods(client: KubeClient, from: string, to: string, target: ProbeTarget): Promise<ProbeResult> {
  const [source, destination] = await Promise.all([getPod(client, from, "--from"), getPod(client, to, "--to")]);
  const ip = podAddress(destination, target.family);
  if (ip === undefined) throw new UsageError(`Cannot probe: pod "${to}" has no ${target.family} address (status.podIPs)`);
  return probeOnce(podNetns(source), ip, target);
}

/**
 * Probes every ordered pair of distinct Running pods in `namespaces`, all at
 * once, through one prober per source pod.
 *
 * @example
 * ```ts
 * const pairs = await probeMatrix(client, ["x", "y"], { port: 80, protocol: "TCP", family: "ipv4", timeoutMs: 1000 });
 * ```
 */
export async function probeMatrix(client: KubeClient, namespaces: readonly string[], target: ProbeTarget): Promise<PairVerdict[]> {
  const lists = await Promise.all(namespaces.map((namespace) => client.request<{ items: V1Pod[] }>("GET", resourcePath(Resources.pods, { namespace }))));
  const pods = lists
    .flatMap((list) => list.items)
    .filter((pod) => pod.status?.phase === "Running" && podAddress(pod, target.family) !== undefined)
    .map((pod) => ({ label: `${pod.metadata?.namespace}/${pod.metadata?.name}`, netns: podNetns(pod), ip: podAddress(pod, target.family) as string }))
    .sort((a, b) => a.label.localeCompare(b.label));
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
  const pool = new ProberPool();
  try {
    return await Promise.all(pairs.map(async ({ from, to }) => {
      const result = await probeOnce(from.netns, to.ip, target, pool);
      return { from: from.label, to: to.label, allowed: result.allowed, reason: result.reason };
    }));
  } finally {
    pool.close();
  }
}

/** The parsed flags of `palisade probe` / `palisade probe matrix`. */
export interface ProbeOptions extends ProbeTarget {
  kubeconfig?: string;
  output: "text" | "json" | "table";
  matrix?: { namespaces: string[] };
  from?: string;
  to?: string;
}

/** `palisade probe` help text. */
export const PROBE_HELP = `  palisade probe --from NS/POD --to NS/POD --port N [--protocol TCP|UDP|SCTP] [--family ipv4|ipv6]
                 [--timeout-ms 1000] [--kubeconfig PATH] [-o text|json]
      Sends real packets from one dev cluster pod to another (inside the source pod's network
      namespace) and prints allowed or denied; -o json prints {"allowed": true|false}. SCTP sends
      an INIT over a raw socket and is allowed when the INIT ACK comes back.
  palisade probe matrix --namespaces X,Y --port N [--protocol TCP|UDP|SCTP] [-o table|json]
      Probes every ordered pair of Running pods of the namespaces (all at once); -o json prints
      {"port","protocol","pairs":[{"from","to","allowed","reason"}]} (connected, timeout, refused).`;

/**
 * Parses the flags of `palisade probe [matrix]`.
 *
 * @example
 * ```ts
 * parseProbeArgs(["--from", "x/a", "--to", "x/b", "--port", "80"]);
 * ```
 */
export function parseProbeArgs(argv: string[]): ProbeOptions {
  const matrix = argv[0] === "matrix";
  const { values } = parseArgs({
    args: matrix ? argv.slice(1) : argv,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      namespaces: { type: "string" },
      port: { type: "string" },
      protocol: { type: "string", default: "TCP" },
      family: { type: "string", default: "ipv4" },
      "timeout-ms": { type: "string", default: "1000" },
      kubeconfig: { type: "string" },
      output: { type: "string", short: "o" },
    },
  });
  const port = Number(values.port);
  if (values.port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`Cannot probe: --port "${values.port ?? ""}" is not a port number (1-65535)`);
  }
  const protocol = values.protocol.toUpperCase();
  if (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP") throw new UsageError(`Cannot probe: --protocol "${values.protocol}" is not TCP, UDP or SCTP`);
  if (values.family !== "ipv4" && values.family !== "ipv6") throw new UsageError(`Cannot probe: --family "${values.family}" is not ipv4 or ipv6`);
  const timeoutMs = Number(values["timeout-ms"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError(`Cannot probe: --timeout-ms "${values["timeout-ms"]}" is not a positive integer`);
  const output = values.output ?? (matrix ? "table" : "text");
  const allowedOutputs = matrix ? ["table", "json"] : ["text", "json"];
  if (!allowedOutputs.includes(output)) throw new UsageError(`Cannot probe: -o "${output}" is not ${allowedOutputs.join(" or ")}`);
  const base = { port, protocol: protocol as ProbeTarget["protocol"], family: values.family as ProbeTarget["family"], timeoutMs, output: output as ProbeOptions["output"], ...(values.kubeconfig !== undefined && { kubeconfig: values.kubeconfig }) };
  if (matrix) {
    const namespaces = (values.namespaces ?? "").split(",").filter((ns) => ns !== "");
    if (namespaces.length === 0) throw new UsageError("Cannot probe matrix: --namespaces X,Y is required");
    return { ...base, matrix: { namespaces } };
  }
  if (values.from === undefined || values.to === undefined) throw new UsageError("Cannot probe: --from NS/POD and --to NS/POD are required");
  return { ...base, from: values.from, to: values.to };
}

/** Runs `palisade probe [matrix]` and returns what to print. */
export async function runProbe(argv: string[]): Promise<string> {
  const options = parseProbeArgs(argv);
  const client = options.kubeconfig === undefined ? KubeClient.fromDefault() : KubeClient.fromFile(options.kubeconfig);
  if (options.matrix) {
    const pairs = await probeMatrix(client, options.matrix.namespaces, options);
    return options.output === "json" ? JSON.stringify({ port: options.port, protocol: options.protocol, pairs }) : verdictTable(pairs);
  }
  const result = await probePods(client, options.from as string, options.to as string, options);
  if (options.output === "json") return JSON.stringify({ allowed: result.allowed });
  return `${options.from} -> ${options.to} ${options.protocol}/${options.port}: ${result.allowed ? "allowed" : "denied"} (${result.reason})`;
}
