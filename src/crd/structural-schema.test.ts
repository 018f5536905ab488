import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyRefinements } from "./refinements.ts";
import { StructuralSchemaError, toStructuralSchema } from "./structural-schema.ts";
import type { JsonSchema } from "./structural-schema.ts";

describe("toStructuralSchema", () => {
  it("inlines references, letting the referring property's keywords win, and merges CEL rules", () => {
    const definitions: Record<string, JsonSchema> = {
      Outer: { type: "object", properties: { inner: { $ref: "#/definitions/Inner", description: "Own words." } }, required: ["inner"], additionalProperties: false },
      Inner: { type: "object", description: "Inner words.", properties: { kind: { type: "string", const: "X" } }, additionalProperties: false },
    };
    applyRefinements(definitions, [
      { type: "Inner", path: [], add: { "x-kubernetes-validations": [{ rule: "true", message: "a" }] } },
      { type: "Outer", path: ["inner"], add: { "x-kubernetes-validations": [{ rule: "true", message: "b" }] } },
    ]);
    assert.deepEqual(toStructuralSchema("Outer", definitions), {
      type: "object",
      properties: {
        inner: {
          description: "Own words.",
          type: "object",
          properties: { kind: { type: "string", enum: ["X"] } },
          "x-kubernetes-validations": [{ rule: "true", message: "a" }, { rule: "true", message: "b" }],
        },
      },
      required: ["inner"],
    });
  });

  it("turns number | string into x-kubernetes-int-or-string and keeps maps", () => {
    const definitions: Record<string, JsonSchema> = {
      T: { type: "object", properties: { port: { type: ["number", "string"] }, labels: { type: "object", additionalProperties: { type: "string" } } } },
    };
    assert.deepEqual(toStructuralSchema("T", definitions).properties, {
      port: { "x-kubernetes-int-or-string": true },
      labels: { type: "object", additionalProperties: { type: "string" } },
    });
  });

  it("refuses what a structural schema cannot say, naming where", () => {
    const cases: [Record<string, JsonSchema>, RegExp][] = [
      [{ T: { type: "object", properties: { self: { $ref: "#/definitions/T" } } } }, /"T\.self": type "T" contains itself/],
      [{ T: { type: "object", properties: { v: { type: ["string", "boolean"] } } } }, /"T\.v": type \["string","boolean"\] is a union/],
      [{ T: { anyOf: [{ type: "string" }, { type: "object" }] } }, /"T": keyword "anyOf" has no structural equivalent/],
      [{ T: { $ref: "#/definitions/Missing" } }, /references "Missing"/],
    ];
    for (const [definitions, message] of cases) {
      assert.throws(() => toStructuralSchema("T", definitions), (error: unknown) => error instanceof StructuralSchemaError && message.test(error.message));
    }
  });

  it("refuses a refinement of a field the type does not have", () => {
    assert.throws(() => applyRefinements({ T: { type: "object", properties: {} } }, [{ type: "T", path: ["nope"], add: { maxItems: 1 } }]), /"T\.nope": "nope" is not a field/);
  });
});
