/**
 * What the project's own compiler makes of everything an API server holds,
 * for one node: the world (namespaces, pods, policies of both APIs, read
 * back from the API, as the agent reads them) and the counts the node's
 * agent should report in its metrics. A check of the agent against the
 * compiler that does not trust the generator: it reads what the API server
 * actually holds.
 *
 * @module
 */
import { resourcePath, Resources } from "../../src/k8s/index.ts";
import type { KubeClient } from "../../src/k8s/index.ts";
import { buildWorld, compileWorld } from "../../src/policy/index.ts";
import type { StateCounts, World } from "../../src/policy/index.ts";

/** The world in the API and what the compiler makes of it for one node. */
export interface CompiledCluster {
  world: World;
  counts: StateCounts;
  /** Objects the policy layer refused (none expected of a generated world). */
  errors: string[];
}

const KINDS = [
  [Resources.namespaces, "v1", "Namespace"],
  [Resources.pods, "v1", "Pod"],
  [Resources.networkPolicies, "networking.k8s.io/v1", "NetworkPolicy"],
  [Resources.ebpfNetworkPolicies, "palisade.dev/v1alpha1", "EBPFNetworkPolicy"],
] as const;

/**
 * Lists the API's namespaces, pods and policies and compiles them for `node`.
 *
 * @example
 * ```ts
 * const { counts } = await compileCluster(client, "palisade-node-1");
 * counts.policyEntries; // what palisade_policy_entries of that node's agent should say
 * ```
 */
export async function compileCluster(client: KubeClient, node: string): Promise<CompiledCluster> {
  const objects: unknown[] = [];
  for (const [ref, apiVersion, kind] of KINDS) {
    let next: string | undefined;
    do {
      const page = await client.request<{ items: { metadata?: { managedFields?: unknown } }[]; metadata: { continue?: string } }>("GET", resourcePath(ref), { query: { limit: 1000, continue: next } });
      // List items carry no kind of their own; the policy layer reads objects as manifests do.
      for (const item of page.items) objects.push({ ...item, apiVersion, kind, metadata: { ...item.metadata, managedFields: undefined } });
      next = page.metadata.continue || undefined;
    } while (next !== undefined);
  }
  const { world, errors } = buildWorld(objects);
  const { compiler } = compileWorld(world, { nodeName: node });
  return { world, counts: compiler.stateCounts(), errors: errors.map((e) => e.message) };
}
