/**
 * Schema rules for Kubernetes label keys and values, shared by every label
 * map and label selector of Palisade's CRDs, so that a bad label is refused
 * at admission with the field named, as the API server refuses one in a
 * NetworkPolicy.
 *
 * Strings carry an OpenAPI `pattern`: it costs nothing in the CEL budget,
 * which rules on strings nested this deep (selectors in peers in rules)
 * would exceed many times over. Map keys cannot carry a pattern, so one CEL
 * rule per map checks them with the CEL format library, which runs the API
 * server's own check (`format.qualifiedName()`) and hands back its words.
 *
 * @module
 */
import type { SchemaRefinement } from "./refinements.ts";
import type { StructuralSchema, ValidationRule } from "./structural-schema.ts";

/** The longest label value. */
export const MAX_LABEL_VALUE_LENGTH = 63;
/** The longest label key: a DNS subdomain prefix (253), a slash, a name (63). */
export const MAX_LABEL_KEY_LENGTH = 317;
/** The longest label key prefix (a DNS subdomain). */
const MAX_LABEL_PREFIX_LENGTH = 253;

/** A label value, anchored (the API server's patterns match anywhere otherwise): empty, or letters, digits, `-`, `_`, `.` between a letter or digit at each end. */
export const LABEL_VALUE_PATTERN = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/** A label key: an optional DNS-1123 subdomain and `/`, then a name of 1 to 63 letters, digits, `-`, `_`, `.` between a letter or digit at each end. */
export const LABEL_KEY_PATTERN = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$";

/**
 * The rule on a label map's keys; the message names the first bad key and
 * says what is wrong with it in the API server's words.
 *
 * @example
 * ```ts
 * // { "a b": "x" } → 'spec.selector.matchLabels: Invalid value: "object": "a b": name part must consist of alphanumeric characters, …'
 * ```
 */
export const LABEL_MAP_KEYS_RULE: ValidationRule = {
  rule: "self.all(k, !format.qualifiedName().validate(k).hasValue())",
  messageExpression: `self.filter(k, format.qualifiedName().validate(k).hasValue()).map(k, '"' + k + '": ' + format.qualifiedName().validate(k).value()[0])[0]`,
};

/** What a label key string gets: its bounds, its pattern and the one limit a pattern cannot say (the prefix's length). */
export const LABEL_KEY_SCHEMA: StructuralSchema = {
  maxLength: MAX_LABEL_KEY_LENGTH,
  pattern: LABEL_KEY_PATTERN,
  "x-kubernetes-validations": [
    {
      rule: `self.indexOf('/') <= ${MAX_LABEL_PREFIX_LENGTH}`,
      messageExpression: `'"' + self + '": prefix part must be no more than ${MAX_LABEL_PREFIX_LENGTH} characters'`,
    },
  ],
};

/** What a label value string gets. */
export const LABEL_VALUE_SCHEMA: StructuralSchema = { maxLength: MAX_LABEL_VALUE_LENGTH, pattern: LABEL_VALUE_PATTERN };

/**
 * The refinements of a label map field (`matchLabels`, a pod's labels):
 * at most `maxLabels` entries, every key a label key, every value a label value.
 *
 * @example
 * ```ts
 * labelMapRefinements("LabelSelector", ["matchLabels"], 32);
 * ```
 */
export function labelMapRefinements(type: string, path: string[], maxLabels: number): SchemaRefinement[] {
  return [
    { type, path, add: { maxProperties: maxLabels, "x-kubernetes-validations": [LABEL_MAP_KEYS_RULE] } },
    { type, path: [...path, "{}"], add: LABEL_VALUE_SCHEMA },
  ];
}
