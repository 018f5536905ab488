/**
 * The dev cluster's Node objects. No kubelet runs, so we register each Node
 * ourselves with the status a healthy kubelet would report (Ready, addresses,
 * capacity) and the pod CIDRs the node runtime wires pods into. Nothing
 * changes them afterwards: kube-controller-manager runs without the
 * node-lifecycle controller (see `CONTROLLERS`).
 *
 * @module
 */
import { availableParallelism, release, totalmem } from "node:os";
import { DevClusterError } from "./errors.ts";
import { httpsRequest, type TlsIdentity } from "./https-client.ts";

/** Prefix of every dev Node's name: `palisade-node-1`, `palisade-node-2`, … */
export const NODE_NAME_PREFIX = "palisade-node-";

/** The most nodes a dev cluster has (one IPv4 /24 each in 10.244.0.0/16). */
export const MAX_NODES = 254;

/** Names and addresses of dev node `index` (1-based). */
export interface DevNodeSpec {
  name: string;
  /** IPv4 then IPv6. */
  podCIDRs: [string, string];
  /** InternalIP addresses, IPv4 then IPv6. */
  internalIPs: [string, string];
}

/**
 * The spec of dev node `index` (1 to {@link MAX_NODES}).
 *
 * @example
 * ```ts
 * devNodeSpec(2).podCIDRs; // ["10.244.2.0/24", "fd00:10:244:2::/64"]
 * ```
 */
export function devNodeSpec(index: number): DevNodeSpec {
  if (!Number.isInteger(index) || index < 1 || index > MAX_NODES) {
    throw new DevClusterError(`Cannot describe dev node ${index}: the index must be 1 to ${MAX_NODES}`);
  }
  return {
    name: `${NODE_NAME_PREFIX}${index}`,
    podCIDRs: [`10.244.${index}.0/24`, `fd00:10:244:${index}::/64`],
    internalIPs: [`10.240.0.${index}`, `fd00:10:240::${index}`],
  };
}

/**
 * The index of the dev node named `name` (the inverse of
 * {@linkcode devNodeSpec}'s name), or `undefined` when `name` is not a dev
 * node's.
 *
 * @example
 * ```ts
 * devNodeIndex("palisade-node-2"); // 2
 * devNodeIndex("worker-1");        // undefined
 * ```
 */
export function devNodeIndex(name: string): number | undefined {
  if (!name.startsWith(NODE_NAME_PREFIX)) return undefined;
  const digits = name.slice(NODE_NAME_PREFIX.length);
  const index = Number(digits);
  return /^[1-9]\d*$/.test(digits) && index <= MAX_NODES ? index : undefined;
}

const ARCHITECTURES: Readonly<Record<string, string>> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };

function nodeStatus(spec: DevNodeSpec, now: string): Record<string, unknown> {
  const capacity = { cpu: String(availableParallelism()), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: "110" };
  return {
    capacity,
    allocatable: capacity,
    addresses: [
      { type: "InternalIP", address: spec.internalIPs[0] },
      { type: "InternalIP", address: spec.internalIPs[1] },
      { type: "Hostname", address: spec.name },
    ],
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "PalisadeDevNode",
        message: "stand-in node of the Palisade dev cluster (no kubelet)",
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      },
    ],
    nodeInfo: {
      operatingSystem: "linux",
      architecture: ARCHITECTURES[process.arch] ?? process.arch,
      kernelVersion: release(),
      osImage: "Palisade dev node",
    },
  };
}

function nodeObject(spec: DevNodeSpec): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: spec.name,
      labels: {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": ARCHITECTURES[process.arch] ?? process.arch,
        "palisade.dev/dev-node": "true",
      },
    },
    spec: { podCIDR: spec.podCIDRs[0], podCIDRs: spec.podCIDRs },
  };
}

async function call(server: string, identity: TlsIdentity, what: string, path: string, options: Parameters<typeof httpsRequest>[2], ok: number[]) {
  const response = await httpsRequest(`${server}${path}`, identity, options);
  if (!ok.includes(response.status)) {
    let detail = response.body;
    try {
      detail = (JSON.parse(response.body) as { message?: string }).message ?? response.body;
    } catch {
      // Not a Status object: keep the raw body.
    }
    throw new DevClusterError(`Cannot ${what}: ${options?.method ?? "GET"} ${path} answered ${response.status}: ${detail}`);
  }
  return response;
}

/** A Node as the API returns it, reduced to what the dev cluster reads. */
export interface NodeSummary {
  name: string;
  ready: boolean;
  podCIDRs: string[];
  internalIPs: string[];
}

interface ApiNode {
  metadata: { name: string };
  spec?: { podCIDRs?: string[] };
  status?: { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[] };
}

/**
 * Every Node of the cluster at `server`.
 *
 * @example
 * ```ts
 * const nodes = await listNodes("https://127.0.0.1:6443", { caCertFile, client: admin });
 * ```
 */
export async function listNodes(server: string, identity: TlsIdentity): Promise<NodeSummary[]> {
  const response = await call(server, identity, "list nodes", "/api/v1/nodes", {}, [200]);
  const items = (JSON.parse(response.body) as { items: ApiNode[] }).items;
  return items.map((node) => ({
    name: node.metadata.name,
    ready: node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    podCIDRs: node.spec?.podCIDRs ?? [],
    internalIPs: (node.status?.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address),
  }));
}

/**
 * Makes the cluster's dev Nodes exactly `palisade-node-1..count`: creates
 * missing ones, sets every one's status to Ready, deletes dev Nodes beyond
 * `count`. Returns the specs of the registered Nodes.
 *
 * @example
 * ```ts
 * await registerNodes("https://127.0.0.1:6443", { caCertFile, client: admin }, 2);
 * ```
 */
export async function registerNodes(server: string, identity: TlsIdentity, requested: number | undefined): Promise<DevNodeSpec[]> {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1 || requested > MAX_NODES)) {
    throw new DevClusterError(`Cannot register ${requested} dev nodes: the count must be 1 to ${MAX_NODES}`);
  }
  const existing = new Map((await listNodes(server, identity)).map((node) => [node.name, node]));
  const count = requested ?? Math.max(1, [...existing.keys()].filter((name) => name.startsWith(NODE_NAME_PREFIX)).length);
  const specs = Array.from({ length: count }, (_, i) => devNodeSpec(i + 1));
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  for (const spec of specs) {
    const node = existing.get(spec.name);
    if (node === undefined) {
      await call(server, identity, `register node "${spec.name}"`, "/api/v1/nodes", { method: "POST", body: nodeObject(spec) }, [201]);
    } else if (node.podCIDRs.join(",") !== spec.podCIDRs.join(",")) {
      // spec.podCIDRs is immutable once set.
      throw new DevClusterError(`Cannot register node "${spec.name}": it exists with spec.podCIDRs ${node.podCIDRs.join(",")} instead of ${spec.podCIDRs.join(",")}`);
    }
    await call(
      server,
      identity,
      `set the status of node "${spec.name}"`,
      `/api/v1/nodes/${spec.name}/status`,
      { method: "PATCH", contentType: "application/merge-patch+json", body: { status: nodeStatus(spec, now) } },
      [200],
    );
    // The API server taints new Nodes not-ready; the node lifecycle controller that would lift the
    // taint once they report Ready is off here (nothing heartbeats), so lift it ourselves.
    await call(
      server,
      identity,
      `untaint node "${spec.name}"`,
      `/api/v1/nodes/${spec.name}`,
      { method: "PATCH", contentType: "application/merge-patch+json", body: { spec: { taints: null } } },
      [200],
    );
  }
  const wanted = new Set(specs.map((spec) => spec.name));
  for (const name of existing.keys()) {
    if (name.startsWith(NODE_NAME_PREFIX) && !wanted.has(name)) {
      await call(server, identity, `remove node "${name}"`, `/api/v1/nodes/${name}`, { method: "DELETE" }, [200, 202, 404]);
    }
  }
  return specs;
}
