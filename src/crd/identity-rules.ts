/**
 * The CEL rules and bounds of the PalisadeIdentity CRD: an identity is
 * named by its number and never changes what it stands for, so a number
 * seen by an agent always means the same key.
 *
 * Bounds exist for the CEL cost estimate of the immutability rule (it
 * compares the whole spec); they are far above what a pod carries.
 *
 * @module
 */
import { FIRST_ALLOCATED_IDENTITY } from "../policy/desired-state.ts";
import { labelMapRefinements } from "./label-rules.ts";
import type { SchemaRefinement } from "./refinements.ts";
import type { ValidationRule } from "./structural-schema.ts";

/** Labels of one pod or namespace. */
const MAX_LABELS = 256;
/** Named ports of one pod. */
const MAX_NAMED_PORTS = 256;
/** The key repeats the labels and ports: room for all of them at full length. */
const MAX_KEY_LENGTH = 262_144;
/** A namespace name (DNS-1123 label), anchored. */
const DNS1123_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A container port name (IANA_SVC_NAME): lowercase letters, digits and single '-' between them, with at least one letter. */
const PORT_NAME_PATTERN = "^([0-9]+-)*[0-9]*[a-z][a-z0-9]*(-[a-z0-9]+)*$";

/**
 * Rules on the whole object: the name is the identity's decimal number, at
 * least {@link FIRST_ALLOCATED_IDENTITY} and within the datapath's 32 bits.
 *
 * @example
 * ```ts
 * customResourceDefinition({ ...options, validations: PALISADE_IDENTITY_VALIDATIONS });
 * ```
 */
export const PALISADE_IDENTITY_VALIDATIONS: readonly ValidationRule[] = [
  {
    rule: `self.metadata.name.matches('^[1-9][0-9]{0,9}$') && int(self.metadata.name) >= ${FIRST_ALLOCATED_IDENTITY} && int(self.metadata.name) <= 4294967295`,
    message: `metadata.name must be the identity number in decimal, from ${FIRST_ALLOCATED_IDENTITY} to 4294967295`,
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
  { type: "PalisadeIdentitySpec", path: ["key"], add: { minLength: 1, maxLength: MAX_KEY_LENGTH } },
  { type: "PalisadeIdentitySpec", path: ["namespace"], add: { maxLength: 63, pattern: DNS1123_LABEL_PATTERN } },
  ...labelMapRefinements("PalisadeIdentitySpec", ["namespaceLabels"], MAX_LABELS),
  ...labelMapRefinements("PalisadeIdentitySpec", ["labels"], MAX_LABELS),
  { type: "PalisadeIdentitySpec", path: ["namedPorts"], add: { maxItems: MAX_NAMED_PORTS } },
  { type: "PalisadeIdentitySpec", path: ["cidr"], add: { maxLength: 49 } },
  { type: "IdentityNamedPort", path: ["name"], add: { maxLength: 15, pattern: PORT_NAME_PATTERN } },
  { type: "IdentityNamedPort", path: ["port"], add: { type: "integer", minimum: 1, maximum: 65535 } },
];
