/**
 * The CEL rules and bounds of the PalisadeIdentity CRD: an identity is
 * named by its number and never changes what it stands for, so a number
 * seen by an agent always means the same key.
 *
 * Bounds exist for the CEL cost estimate of the immutability rule (it
 * compares the whole spec); they are far above what a pod usually carries,
 * but the API server takes pods and namespaces past them, and the object of
 * such a key cannot exist: {@link identityObjectProblem} says which keys.
 *
 * @module
 */
import type { PalisadeIdentitySpec } from "../policy/api-types.ts";
import { FIRST_ALLOCATED_IDENTITY } from "../policy/desired-state.ts";
import { MAX_IDENTITY } from "../policy/identity-object.ts";
import { labelMapRefinements } from "./label-rules.ts";
import type { SchemaRefinement } from "./refinements.ts";
import type { ValidationRule } from "./structural-schema.ts";

/** Labels of one pod or namespace. */
export const MAX_IDENTITY_LABELS = 256;
/** Named ports of one pod. */
export const MAX_IDENTITY_NAMED_PORTS = 256;
/** The key repeats the labels and ports: room for all of them at full length (labels' keys and values are bounded too). */
export const MAX_IDENTITY_KEY_LENGTH = 262_144;
/** A namespace name (DNS-1123 label), anchored. */
const DNS1123_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A container port name (IANA_SVC_NAME): lowercase letters, digits and single '-' between them, with at least one letter. */
const PORT_NAME_PATTERN = "^([0-9]+-)*[0-9]*[a-z][a-z0-9]*(-[a-z0-9]+)*$";

/**
 * Rules on the whole object: the name is the identity's decimal number, from
 * {@link FIRST_ALLOCATED_IDENTITY} to {@link MAX_IDENTITY} (the numbers above
 * are an agent's own, never an object's).
 *
 * @example
 * ```ts
 * customResourceDefinition({ ...options, validations: PALISADE_IDENTITY_VALIDATIONS });
 * ```
 */
export const PALISADE_IDENTITY_VALIDATIONS: readonly ValidationRule[] = [
  {
    rule: `self.metadata.name.matches('^[1-9][0-9]{0,9}$') && int(self.metadata.name) >= ${FIRST_ALLOCATED_IDENTITY} && int(self.metadata.name) <= ${MAX_IDENTITY}`,
    message: `metadata.name must be the identity number in decimal, from ${FIRST_ALLOCATED_IDENTITY} to ${MAX_IDENTITY}`,
  },
];

/**
 * Refinements of the PalisadeIdentity schema, by API type.
 *
 * @example
 * ```ts
 * applyRefinements(definitions, PALISADE_IDENTITY_REFINEMENTS);
 * ```
 */
export const PALISADE_IDENTITY_REFINEMENTS: readonly SchemaRefinement[] = [
  {
    type: "PalisadeIdentitySpec",
    path: [],
    add: { "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "is immutable: a changed key is a new identity" }] },
  },
  { type: "PalisadeIdentitySpec", path: ["key"], add: { minLength: 1, maxLength: MAX_IDENTITY_KEY_LENGTH } },
  { type: "PalisadeIdentitySpec", path: ["namespace"], add: { maxLength: 63, pattern: DNS1123_LABEL_PATTERN } },
  ...labelMapRefinements("PalisadeIdentitySpec", ["namespaceLabels"], MAX_IDENTITY_LABELS),
  ...labelMapRefinements("PalisadeIdentitySpec", ["labels"], MAX_IDENTITY_LABELS),
  { type: "PalisadeIdentitySpec", path: ["namedPorts"], add: { maxItems: MAX_IDENTITY_NAMED_PORTS } },
  { type: "PalisadeIdentitySpec", path: ["cidr"], add: { maxLength: 49 } },
  { type: "IdentityNamedPort", path: ["name"], add: { maxLength: 15, pattern: PORT_NAME_PATTERN } },
  { type: "IdentityNamedPort", path: ["port"], add: { type: "integer", minimum: 1, maximum: 65535 } },
];

/** Why the API cannot hold an identity object: a field past its bound. */
export interface IdentityObjectProblem {
  /** The spec field, e.g. `labels`. */
  field: "key" | "labels" | "namespaceLabels" | "namedPorts";
  /** Its size: entries, or characters of the key. */
  size: number;
  /** What the CRD allows. */
  limit: number;
}

/**
 * What keeps the PalisadeIdentity object of a spec (as `identityObject`
 * writes it) out of the API, or `undefined` when it fits the CRD's bounds.
 * Everything else in the spec is checked by the API server in the pod or
 * namespace it comes from, with the same rules.
 *
 * @example
 * ```ts
 * identityObjectProblem(identityObject(0, key).spec); // { field: "labels", size: 300, limit: 256 }
 * ```
 */
export function identityObjectProblem(spec: PalisadeIdentitySpec): IdentityObjectProblem | undefined {
  const sizes: [IdentityObjectProblem["field"], number, number][] = [
    ["key", spec.key.length, MAX_IDENTITY_KEY_LENGTH],
    ["labels", Object.keys(spec.labels ?? {}).length, MAX_IDENTITY_LABELS],
    ["namespaceLabels", Object.keys(spec.namespaceLabels ?? {}).length, MAX_IDENTITY_LABELS],
    ["namedPorts", spec.namedPorts?.length ?? 0, MAX_IDENTITY_NAMED_PORTS],
  ];
  const over = sizes.find(([, size, limit]) => size > limit);
  return over === undefined ? undefined : { field: over[0], size: over[1], limit: over[2] };
}
