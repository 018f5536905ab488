/**
 * Generation of Palisade's CustomResourceDefinitions from the API types
 * (`src/policy/api-types.ts`): structural schemas, CEL rules, the CRD objects
 * and their committed YAML under `deploy/crds/`.
 *
 * @module
 */
export { API_TYPES_PATH, CRD_DIR, crdFilePath, generateCrds, renderCrd, writeCrds } from "./generate.ts";
export { customResourceDefinition } from "./custom-resource-definition.ts";
export type { CustomResourceDefinition, CustomResourceOptions, PrinterColumn } from "./custom-resource-definition.ts";
export {
  LABEL_KEY_PATTERN,
  LABEL_KEY_SCHEMA,
  LABEL_MAP_KEYS_RULE,
  LABEL_VALUE_PATTERN,
  LABEL_VALUE_SCHEMA,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  labelMapRefinements,
} from "./label-rules.ts";
export {
  MAX_IDENTITY_KEY_LENGTH,
  MAX_IDENTITY_LABELS,
  MAX_IDENTITY_NAMED_PORTS,
  PALISADE_IDENTITY_REFINEMENTS,
  PALISADE_IDENTITY_VALIDATIONS,
  identityObjectProblem,
} from "./identity-rules.ts";
export type { IdentityObjectProblem } from "./identity-rules.ts";
export { EBPF_NETWORK_POLICY_REFINEMENTS, EBPF_NETWORK_POLICY_STATUS_REFINEMENTS } from "./policy-rules.ts";
export { applyRefinements } from "./refinements.ts";
export type { SchemaRefinement } from "./refinements.ts";
export { StructuralSchemaError, toStructuralSchema } from "./structural-schema.ts";
export type { JsonSchema, StructuralSchema, StructuralType, ValidationRule } from "./structural-schema.ts";
