/**
 * A small cluster for the agent's unit tests: namespace `x`, pods `x/a` and
 * `x/b` on this node (`n1`, each with a host-side interface) and `x/c` on
 * another, the `x/only-allowed` policy (web pods admit TCP from pods
 * labelled role=allowed only), and verdicts answered from a
 * {@linkcode MemoryDatapath}'s maps with the lookup emulation, as the kernel
 * would answer them; with cluster identities, the identity table and the
 * operator's numbering.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { PodInterface, PodInterfaceLookup } from "../../src/agent/pod-interface.ts";
import { Reconciler } from "../../src/agent/reconciler.ts";
import type { ReconcilerOptions } from "../../src/agent/reconciler.ts";
import { Cache } from "../../src/k8s/cache.ts";
import { jsonLogger } from "../../src/k8s/logger.ts";
import type { PalisadeIdentity, NetworkPolicy } from "../../src/policy/api-types.ts";
import { DIRECTION_INGRESS } from "../../src/policy/desired-state.ts";
import { IDENTITY_KEY_INDEX, identityKeyIndex, identityObject } from "../../src/policy/identity-object.ts";
import { lookupVerdict } from "../../src/policy/lookup.ts";
import { MemoryDatapath } from "./memory-datapath.ts";
import { MemoryObjects, namespace, networkPolicy, pod } from "./memory-objects.ts";

/** The node the agent under test enforces for. */
export const NODE = "n1";

/** The pods: address, node, and host-side interface (local pods only). */
export const PODS = {
  "x/a": { ip: "10.0.0.1", node: NODE, ifindex: 11 },
  "x/b": { ip: "10.0.0.2", node: NODE, ifindex: 12 },
  "x/c": { ip: "10.0.1.1", node: "n2", ifindex: undefined },
} as const;

/** A pod of {@linkcode PODS}. */
export type PodName = keyof typeof PODS;

/** The Pod object of `name`, on its node with its address. */
export function worldPod(name: PodName, labels: Record<string, string>): KubernetesObject {
  return pod(name, PODS[name].node, PODS[name].ip, labels);
}

/**
 * `x/only-allowed`: web pods admit TCP `port` from pods labelled role=allowed only.
 *
 * @example
 * ```ts
 * objects.put(onlyAllowed(2, 81)); // generation 2 moved the port to 81
 * ```
 */
export function onlyAllowed(generation = 1, port = 80): NetworkPolicy {
  return networkPolicy("x/only-allowed", generation, {
    podSelector: { matchLabels: { app: "web" } },
    policyTypes: ["Ingress"],
    ingress: [{ from: [{ podSelector: { matchLabels: { role: "allowed" } } }], ports: [{ protocol: "TCP", port }] }],
  });
}

/** Finds the local pods' interfaces by address, as the route lookup would. */
const worldInterfaces: PodInterfaceLookup = async (ip) => {
  const found = Object.entries(PODS).find(([, p]) => p.ip === ip && p.ifindex !== undefined);
  return found === undefined ? undefined : ({ name: `veth-${found[0]}`, ifindex: found[1].ifindex } as PodInterface);
};

/**
 * Whether `datapath`'s maps admit a new TCP flow from `from` to local pod `to` on `port`.
 *
 * @example
 * ```ts
 * admits(datapath, "x/c", "x/a"); // true: c carries role=allowed
 * ```
 */
export function admits(datapath: MemoryDatapath, from: PodName, to: PodName, port = 80): boolean {
  const podOf = (ifindex: number): string | undefined => Object.entries(PODS).find(([, p]) => p.ifindex === ifindex)?.[0];
  return lookupVerdict(datapath.state(podOf), { endpoint: to, direction: DIRECTION_INGRESS, remoteIp: PODS[from].ip, protocol: "TCP", port }).allowed;
}

/** Ingress to pods labelled role=client from every pod of x, on TCP port 80. */
export function clientsIn(): NetworkPolicy {
  return networkPolicy("x/clients-in", 1, {
    podSelector: { matchLabels: { role: "client" } },
    policyTypes: ["Ingress"],
    ingress: [{ from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: 80 }] }],
  });
}

/** The labels of the world's pods in the tests of a full policy map: a is web, b a client, c allowed. */
export const CAPACITY_WORLD: Record<PodName, Record<string, string>> = { "x/a": { app: "web" }, "x/b": { role: "client" }, "x/c": { role: "allowed" } };

/**
 * How many policy entries the world's pods, labelled as in {@linkcode CAPACITY_WORLD}, need under
 * `policy` alone: the size of the slot of the pod it selects.
 */
export async function policyEntriesUnder(policy: NetworkPolicy): Promise<number> {
  const objects = new MemoryObjects();
  const datapath = new MemoryDatapath();
  const reconciler = new Reconciler({
    ...worldOptions({ objects, datapath, identityTable: undefined, writeReport: async () => ({ overflow: false }), logger: jsonLogger("error", {}, () => {}) }),
    onIdentitiesChanged: () => {},
    resync: () => {},
  });
  await reconciler.sync("Namespace", objects.put(namespace("x")));
  for (const [name, labels] of Object.entries(CAPACITY_WORLD) as [PodName, Record<string, string>][]) await reconciler.sync("Pod", objects.put(worldPod(name, labels)));
  await reconciler.sync("NetworkPolicy", objects.put(policy));
  await reconciler.commit({ drained: true });
  return datapath.policy.size;
}

/**
 * A reconcile loop's options for this node and its pods' interfaces.
 *
 * @example
 * ```ts
 * new ReconcileLoop(worldOptions({ objects, datapath, writeReport, logger }));
 * ```
 */
export function worldOptions(parts: Pick<ReconcilerOptions, "objects" | "datapath" | "writeReport" | "logger" | "identityTable">): Omit<ReconcilerOptions, "onIdentitiesChanged" | "resync"> {
  return { nodeName: NODE, podInterface: worldInterfaces, ...parts };
}

/** An empty identity table, indexed as the agent's informer indexes it. */
export function identityTable(): Cache<PalisadeIdentity> {
  return new Cache<PalisadeIdentity>({ [IDENTITY_KEY_INDEX]: identityKeyIndex });
}

/** Gives every key a PalisadeIdentity object in `table`, as the operator would. */
export function numberKeys(table: Cache<PalisadeIdentity>, keys: readonly string[]): void {
  for (const key of keys) table.upsert(identityObject(300 + table.size, key));
}
