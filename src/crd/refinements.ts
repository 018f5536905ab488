/**
 * What a CRD schema needs beyond what the TypeScript types say: CEL rules,
 * list semantics and the size bounds that keep CEL cost estimates within the
 * API server's budget. Each refinement names a type of the API types and a
 * path inside it, so the rules live next to no particular copy of the type
 * and reach every place it is used.
 *
 * @module
 */
import { StructuralSchemaError } from "./structural-schema.ts";
import type { JsonSchema, StructuralSchema } from "./structural-schema.ts";

/** Schema keywords added to one node of a named type's schema. */
export interface SchemaRefinement {
  /** The type, as exported by the API types, e.g. `PolicyPort`. */
  type: string;
  /** Steps from the type to the node: property names, `[]` for a list's items, `{}` for a map's values. Empty = the type itself. */
  path: string[];
  /** Keywords to add; `x-kubernetes-validations` are appended to any already there. */
  add: StructuralSchema;
}

/**
 * Adds refinements to the definitions ts-json-schema-generator wrote, before
 * they are made structural. Definitions are changed in place.
 *
 * @example
 * ```ts
 * applyRefinements(definitions, [{ type: "IPBlock", path: ["cidr"], add: { maxLength: 64 } }]);
 * ```
 */
export function applyRefinements(definitions: Record<string, JsonSchema>, refinements: readonly SchemaRefinement[]): void {
  for (const { type, path, add } of refinements) {
    const where = [type, ...path].join(".");
    let node = definitions[type];
    if (node === undefined) throw new StructuralSchemaError(where, `type "${type}" is not in the API types`);
    for (const step of path) {
      const next: unknown = step === "[]" ? node.items : step === "{}" ? node.additionalProperties : (node.properties as Record<string, unknown> | undefined)?.[step];
      if (next === null || typeof next !== "object" || Array.isArray(next)) throw new StructuralSchemaError(where, `"${step}" is not a field of the type`);
      node = next as JsonSchema;
    }
    for (const [key, value] of Object.entries(add)) {
      const existing = node[key];
      node[key] = key === "x-kubernetes-validations" && Array.isArray(existing) ? [...existing, ...(value as unknown[])] : value;
    }
  }
}
