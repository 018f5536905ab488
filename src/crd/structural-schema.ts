/**
 * Turns the JSON Schema ts-json-schema-generator writes (draft-07, with
 * `$ref`s into `definitions`) into a Kubernetes structural schema: every
 * reference inlined, every node typed, `number | string` as
 * `x-kubernetes-int-or-string`, literals as enums, and nothing the API server
 * would refuse. Anything it cannot express is an error naming the schema path,
 * so a new construct in the API types fails generation instead of producing a
 * CRD the API server rejects.
 *
 * @module
 */

/** A CEL validation rule of a CRD schema node (`x-kubernetes-validations`). */
export interface ValidationRule {
  /** The CEL expression; `self` is the value of the node the rule sits on. */
  rule: string;
  /** The error message, written to follow the field path. */
  message?: string;
  /** A CEL expression computing the error message, when it names values. */
  messageExpression?: string;
  /** The field the error is reported at, relative to the node, e.g. `.endPort`. */
  fieldPath?: string;
}

/** The value types of a structural schema node. */
export type StructuralType = "object" | "array" | "string" | "integer" | "number" | "boolean";

/** A node of a Kubernetes structural OpenAPI v3 schema: the subset CRDs accept. */
export interface StructuralSchema {
  type?: StructuralType;
  description?: string;
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  additionalProperties?: StructuralSchema;
  items?: StructuralSchema;
  enum?: (string | number | boolean)[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  "x-kubernetes-int-or-string"?: true;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-validations"?: ValidationRule[];
}

/** A JSON Schema node as ts-json-schema-generator writes it, read loosely: it is checked key by key. */
export type JsonSchema = Record<string, unknown>;

/** The schema a structural schema cannot be made from, and why. */
export class StructuralSchemaError extends Error {
  override readonly name = "StructuralSchemaError";
  /** Where in the schema, e.g. `EBPFNetworkPolicy.spec.ingress[].ports[].port`. */
  readonly path: string;

  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super(`Cannot make a structural schema of "${path}": ${detail}`, options);
    this.path = path;
  }
}

/** Keywords copied as they are: value validations, documentation and the Kubernetes extensions. */
const COPIED_KEYWORDS = new Set([
  "description",
  "default",
  "format",
  "pattern",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "enum",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-validations",
]);

const SCALAR_TYPES = new Set(["string", "integer", "number", "boolean"]);

/**
 * Converts the schema of one named type to a structural schema, inlining the
 * definitions it references.
 *
 * @example
 * ```ts
 * toStructuralSchema("Port", { Port: { type: "object", properties: { port: { type: ["number", "string"] } }, additionalProperties: false } });
 * // { type: "object", properties: { port: { "x-kubernetes-int-or-string": true } } }
 * ```
 */
export function toStructuralSchema(typeName: string, definitions: Record<string, JsonSchema>): StructuralSchema {
  return convert({ $ref: `#/definitions/${encodeURIComponent(typeName)}` }, typeName, definitions, []);
}

function convert(node: JsonSchema, path: string, definitions: Record<string, JsonSchema>, refStack: string[]): StructuralSchema {
  const { $ref, ...siblings } = node;
  if ($ref !== undefined) {
    const name = definitionName($ref, path);
    const target = definitions[name];
    if (target === undefined) throw new StructuralSchemaError(path, `references "${name}", which is not a definition`);
    // A structural schema is a finite tree: a type that contains itself cannot be one.
    if (refStack.includes(name)) throw new StructuralSchemaError(path, `type "${name}" contains itself: [${[...refStack, name].join(" > ")}]`);
    // Keywords beside a $ref (the property's own JSDoc) override the referenced type's.
    const inlined = convert(target, path, definitions, [...refStack, name]);
    const own = convert(siblings, path, definitions, refStack);
    const rules = [...(inlined["x-kubernetes-validations"] ?? []), ...(own["x-kubernetes-validations"] ?? [])];
    return ordered({ ...inlined, ...own, ...(rules.length > 0 ? { "x-kubernetes-validations": rules } : {}) });
  }
  const out: StructuralSchema = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "type":
        Object.assign(out, convertType(value, path));
        break;
      case "const":
        out.enum = [scalar(value, `${path}.const`)];
        break;
      case "properties":
        out.properties = Object.fromEntries(
          Object.entries(objectValue(value, path, key)).map(([name, child]) => [name, convert(objectValue(child, `${path}.${name}`, "property"), `${path}.${name}`, definitions, refStack)]),
        );
        break;
      case "required":
        if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) throw new StructuralSchemaError(path, "required is not a list of names");
        if (value.length > 0) out.required = value;
        break;
      case "items":
        out.items = convert(objectValue(value, path, key), `${path}[]`, definitions, refStack);
        break;
      case "additionalProperties":
        // false is what the API server does anyway: it prunes unknown fields.
        if (value === false) break;
        out.additionalProperties = convert(objectValue(value, path, key), `${path}{}`, definitions, refStack);
        break;
      default:
        if (!COPIED_KEYWORDS.has(key)) throw new StructuralSchemaError(path, `keyword "${key}" has no structural equivalent`);
        (out as Record<string, unknown>)[key] = value;
    }
  }
  return ordered(out);
}

/** Key order of the output, so the generated YAML reads description first and extensions last. */
const KEY_ORDER = ["description", "type", "x-kubernetes-int-or-string", "enum", "default", "format"];

function ordered(schema: StructuralSchema): StructuralSchema {
  const rank = (key: string): number => {
    const i = KEY_ORDER.indexOf(key);
    return i >= 0 ? i : key.startsWith("x-kubernetes-") ? KEY_ORDER.length + 1 : KEY_ORDER.length;
  };
  return Object.fromEntries(Object.entries(schema).sort(([a], [b]) => rank(a) - rank(b))) as StructuralSchema;
}

function convertType(value: unknown, path: string): StructuralSchema {
  if (typeof value === "string") {
    if (value === "object" || value === "array" || SCALAR_TYPES.has(value)) return { type: value as StructuralType };
    throw new StructuralSchemaError(path, `type "${value}" is not a Kubernetes schema type`);
  }
  if (Array.isArray(value) && value.length === 2 && value.includes("string") && (value.includes("number") || value.includes("integer"))) {
    return { "x-kubernetes-int-or-string": true };
  }
  throw new StructuralSchemaError(path, `type ${JSON.stringify(value)} is a union other than number | string`);
}

function definitionName(ref: unknown, path: string): string {
  const prefix = "#/definitions/";
  if (typeof ref !== "string" || !ref.startsWith(prefix)) throw new StructuralSchemaError(path, `$ref ${JSON.stringify(ref)} does not point into #/definitions`);
  return decodeURIComponent(ref.slice(prefix.length));
}

function objectValue(value: unknown, path: string, key: string): JsonSchema {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new StructuralSchemaError(path, `${key} is not a schema object`);
  return value as JsonSchema;
}

function scalar(value: unknown, path: string): string | number | boolean {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  throw new StructuralSchemaError(path, `${JSON.stringify(value)} is not a string, number or boolean`);
}
