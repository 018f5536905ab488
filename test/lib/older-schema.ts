/**
 * Objects the CRD schema refuses today, stored the way a cluster upgraded
 * from an older Palisade holds them: the EBPFNetworkPolicy CRD is swapped
 * for one without the label rules and the connection rate's burst rule (the
 * schema before they existed), the
 * object is created, and the generated CRD is put back. The API server keeps
 * the stored object and lets updates through that leave its bad field alone
 * (validation ratcheting), so only the operator's own checks stand between it
 * and the datapath: this is how tests reach the operator's refusal path.
 *
 * @module
 */
import { generateCrds, LABEL_KEY_PATTERN, LABEL_KEY_SCHEMA, LABEL_MAP_KEYS_RULE, LABEL_VALUE_PATTERN } from "../../src/crd/index.ts";
import type { CustomResourceDefinition, StructuralSchema } from "../../src/crd/index.ts";
import type { KubeClient } from "../../src/k8s/client.ts";
import { KubeApiError } from "../../src/k8s/errors.ts";
import { resourcePath, Resources } from "../../src/k8s/resource.ts";
import { eventually } from "./eventually.ts";

const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
/** The CEL rule of `tcp.newConnectionsPerSecond` (src/crd/policy-rules.ts). */
const BURST_RULE = "self.burst >= self.average";

/** A namespaced object to create: its namespace and name are read from `metadata`. */
interface PolicyBody {
  metadata: { name: string; namespace: string };
}

/** What the API server stored of a policy. */
export type Stored<T> = T & { metadata: { uid: string; generation: number } };

/**
 * Creates EBPFNetworkPolicies under the schema without label rules, then
 * restores the generated CRD; resolves once the API server refuses the
 * first of them again. Returns what the API server stored, in order.
 *
 * @example
 * ```ts
 * const [stored] = await createUnderOlderSchema(client, [{ ...policy, spec: { selector: { matchLabels: { app: "a b" } } } }]);
 * ```
 */
export async function createUnderOlderSchema<T extends PolicyBody>(client: KubeClient, bodies: readonly T[]): Promise<Stored<T>[]> {
  const generated = generateCrds().find((crd) => crd.spec.names.kind === Resources.ebpfNetworkPolicies.kind) as CustomResourceDefinition;
  const collection = (body: T): string => resourcePath(Resources.ebpfNetworkPolicies, { namespace: body.metadata.namespace });
  await replaceCrd(client, withoutLabelRules(generated));
  try {
    const stored: Stored<T>[] = [];
    for (const body of bodies) {
      // The API server takes a moment to serve the new schema: until then the create is refused.
      stored.push(await eventually(`${body.metadata.name} admitted under the older schema`, () => client.request<Stored<T>>("POST", collection(body), { body })));
    }
    return stored;
  } finally {
    await replaceCrd(client, generated);
    const [first] = bodies;
    if (first !== undefined) await refusedAgain(client, collection(first), { ...first, metadata: { ...first.metadata, name: `${first.metadata.name}-probe` } });
  }
}

/** Waits until a dry-run create of `body` is refused as invalid: the generated schema is in force. */
async function refusedAgain(client: KubeClient, collection: string, body: PolicyBody): Promise<void> {
  await eventually("the generated schema in force again", async () => {
    try {
      await client.request("POST", collection, { body, query: { dryRun: "All" } });
      return false;
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 422) return true;
      throw e;
    }
  });
}

/** The CRD as it was before label keys and values were checked: no pattern, no key rules. */
function withoutLabelRules(crd: CustomResourceDefinition): CustomResourceDefinition {
  // The connection rate's burst rule goes too: a cluster whose CRD predates it may hold a burst below its average.
  const labelRules = [LABEL_MAP_KEYS_RULE, ...(LABEL_KEY_SCHEMA["x-kubernetes-validations"] ?? [])].map((rule) => rule.rule).concat(BURST_RULE);
  const strip = (node: StructuralSchema): StructuralSchema => {
    const { pattern, properties, items, additionalProperties, ...rest } = node;
    const rules = rest["x-kubernetes-validations"]?.filter((rule) => !labelRules.includes(rule.rule));
    return {
      ...rest,
      ...(pattern === undefined || pattern === LABEL_KEY_PATTERN || pattern === LABEL_VALUE_PATTERN ? {} : { pattern }),
      ...(rules === undefined ? {} : { "x-kubernetes-validations": rules }),
      ...(properties === undefined ? {} : { properties: Object.fromEntries(Object.entries(properties).map(([name, child]) => [name, strip(child)])) }),
      ...(items === undefined ? {} : { items: strip(items) }),
      ...(additionalProperties === undefined ? {} : { additionalProperties: strip(additionalProperties) }),
    };
  };
  const versions = crd.spec.versions.map((version) => ({ ...version, schema: { openAPIV3Schema: strip(version.schema.openAPIV3Schema) } }));
  return { ...crd, spec: { ...crd.spec, versions } };
}

async function replaceCrd(client: KubeClient, crd: CustomResourceDefinition): Promise<void> {
  const path = `${CRD_PATH}/${crd.metadata.name}`;
  const current = await client.request<{ metadata: { resourceVersion: string } }>("GET", path);
  await client.request("PUT", path, { body: { ...crd, metadata: { ...crd.metadata, resourceVersion: current.metadata.resourceVersion } } });
}
