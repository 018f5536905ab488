/**
 * PalisadeIdentity objects: how an identity number and its key are written
 * to the API and read back. The operator writes them; agents read them. An
 * object is named by its number, so two keys can never claim one number.
 *
 * @module
 */
import type { PalisadeIdentity } from "./api-types.ts";
import { identityKeyFields } from "./identity-key.ts";
import { FIRST_ALLOCATED_IDENTITY, FIRST_NODE_LOCAL_IDENTITY } from "./desired-state.ts";

/**
 * The largest number of a PalisadeIdentity. The datapath stores identities
 * in 32 bits; the top sixteenth of them is kept for numbers an agent gives on
 * its own ({@link FIRST_NODE_LOCAL_IDENTITY}), so no object can claim one.
 */
export const MAX_IDENTITY = FIRST_NODE_LOCAL_IDENTITY - 1;

/** Name of the informer cache index from identity key to objects. */
export const IDENTITY_KEY_INDEX = "identityKey";

/**
 * The PalisadeIdentity object of identity `id` for `key`: the key as the
 * compiler built it, and its readable parts beside it.
 *
 * @example
 * ```ts
 * identityObject(300, '["cidr","10.0.0.0/8"]').spec; // { key: '["cidr","10.0.0.0/8"]', kind: "cidr", cidr: "10.0.0.0/8" }
 * ```
 */
export function identityObject(id: number, key: string): PalisadeIdentity {
  const { kind, namespace, namespaceLabels, labels, namedPorts, cidr } = identityKeyFields(key);
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "PalisadeIdentity",
    metadata: { name: String(id), labels: { "app.kubernetes.io/part-of": "palisade", "palisade.dev/identity-kind": kind } },
    spec: {
      key,
      kind,
      ...(namespace === undefined ? {} : { namespace }),
      ...(namespaceLabels === undefined ? {} : { namespaceLabels }),
      ...(labels === undefined ? {} : { labels }),
      ...(namedPorts === undefined || namedPorts.length === 0 ? {} : { namedPorts }),
      ...(cidr === undefined ? {} : { cidr }),
    },
  };
}

/**
 * The identity number an object's name states; `undefined` unless it is a
 * decimal number the operator could have allocated (the CRD refuses others,
 * this guards against anything that slipped past it).
 *
 * @example
 * ```ts
 * identityNumberOf({ metadata: { name: "300" } }); // 300
 * identityNumberOf({ metadata: { name: "0300" } }); // undefined
 * ```
 */
export function identityNumberOf(obj: { metadata?: { name?: string } }): number | undefined {
  const name = obj.metadata?.name ?? "";
  if (!/^[1-9][0-9]{0,9}$/.test(name)) return undefined;
  const id = Number(name);
  return id >= FIRST_ALLOCATED_IDENTITY && id <= MAX_IDENTITY ? id : undefined;
}

/**
 * The identity key an object holds, for {@link IDENTITY_KEY_INDEX}: none
 * when its name is not an identity number or it has no key.
 *
 * @example
 * ```ts
 * informerOptions.indexers = { [IDENTITY_KEY_INDEX]: identityKeyIndex };
 * ```
 */
export function identityKeyIndex(obj: { metadata?: { name?: string }; spec?: { key?: unknown } }): string[] {
  const key = obj.spec?.key;
  return typeof key === "string" && identityNumberOf(obj) !== undefined ? [key] : [];
}

/**
 * The number of a key among the objects holding it: the lowest, so every
 * reader agrees even in the rare case of two objects for one key (two
 * operators racing); the operator collects the other one.
 *
 * @example
 * ```ts
 * lowestIdentityNumber(cache.byIndex(IDENTITY_KEY_INDEX, key)); // 300, or undefined
 * ```
 */
export function lowestIdentityNumber(objects: readonly { metadata?: { name?: string } }[]): number | undefined {
  let lowest: number | undefined;
  for (const obj of objects) {
    const id = identityNumberOf(obj);
    if (id !== undefined && (lowest === undefined || id < lowest)) lowest = id;
  }
  return lowest;
}
