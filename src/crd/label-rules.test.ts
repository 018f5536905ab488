import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dns1123LabelProblem, labelKeyProblem, labelValueProblem, portNameProblem } from "../policy/validate.ts";
import { generateCrds } from "./generate.ts";
import { LABEL_KEY_PATTERN, LABEL_KEY_SCHEMA, LABEL_MAP_KEYS_RULE, LABEL_VALUE_PATTERN, MAX_LABEL_KEY_LENGTH, MAX_LABEL_VALUE_LENGTH } from "./label-rules.ts";
import type { StructuralSchema } from "./structural-schema.ts";

const name63 = `a${"b".repeat(61)}c`;
const prefix253 = Array.from({ length: 4 }, () => "p".repeat(62)).join(".") + ".q";

/** Strings a label key or value may be, good and bad, at and past every limit. */
const SAMPLES = [
  "",
  "a",
  "app",
  "a b",
  "a\tb",
  "a\nb",
  "-a",
  "a-",
  "_a",
  "a_",
  ".a",
  "a.b_c-d",
  "MyValue",
  "12345",
  "é",
  "app\u0000",
  "ünïcödé",
  "💥",
  name63,
  `${name63}d`,
  "example.com/app",
  "Example.com/app",
  "example..com/app",
  "-example.com/app",
  "example.com/",
  "/app",
  "a/b/c",
  `${prefix253}/app`,
  `${prefix253}r/app`,
  `example.com/${name63}`,
  `example.com/${name63}d`,
  "kubernetes.io/metadata.name",
];

/** What the API server checks of a label key string: length, pattern and the CEL prefix rule (emulated: `indexOf` is the same in JS). */
function keySchemaAccepts(key: string): boolean {
  return key.length <= MAX_LABEL_KEY_LENGTH && new RegExp(LABEL_KEY_PATTERN).test(key) && key.indexOf("/") <= 253;
}

function valueSchemaAccepts(value: string): boolean {
  return value.length <= MAX_LABEL_VALUE_LENGTH && new RegExp(LABEL_VALUE_PATTERN).test(value);
}

describe("label rules", () => {
  const [policy, identity] = generateCrds().map((crd) => crd.spec.versions[0]?.schema.openAPIV3Schema);

  it("accept exactly the label keys the operator's validation accepts", () => {
    for (const key of SAMPLES) assert.equal(keySchemaAccepts(key), labelKeyProblem(key) === undefined, JSON.stringify(key));
  });

  it("accept exactly the label values the operator's validation accepts", () => {
    for (const value of SAMPLES) assert.equal(valueSchemaAccepts(value), labelValueProblem(value) === undefined, JSON.stringify(value));
  });

  it("give PalisadeIdentity's namespace and port names the API server's own rules", () => {
    const spec = identity?.properties?.spec?.properties;
    const accepts = (schema: StructuralSchema | undefined, text: string): boolean => text.length <= (schema?.maxLength ?? Infinity) && new RegExp(schema?.pattern ?? "(?!)").test(text);
    const names = [...SAMPLES, "http", "h2c", "1a", "a1", "1-a", "a--b", "a-b-c", "123", "-", "abcdefghijklmno", "abcdefghijklmnop", "9-9-x"];
    for (const text of names) {
      assert.equal(accepts(spec?.namespace, text), dns1123LabelProblem(text) === undefined, `namespace ${JSON.stringify(text)}`);
      assert.equal(accepts(spec?.namedPorts?.items?.properties?.name, text), portNameProblem(text) === undefined, `port name ${JSON.stringify(text)}`);
    }
  });

  it("sit on every label selector of the EBPFNetworkPolicy schema, and on the PalisadeIdentity labels", () => {
    const selectors = labelSelectors(policy?.properties?.spec ?? {}, "spec");
    assert.deepEqual(
      selectors.map(([path]) => path).sort(),
      [
        "spec.egress[].to[].namespaceSelector",
        "spec.egress[].to[].podSelector",
        "spec.ingress[].from[].namespaceSelector",
        "spec.ingress[].from[].podSelector",
        "spec.selector",
      ],
    );
    const labelMaps = selectors.map(([path, selector]): [string, StructuralSchema | undefined] => [`${path}.matchLabels`, selector.properties?.matchLabels]);
    const identitySpec = identity?.properties?.spec?.properties;
    labelMaps.push(["identity labels", identitySpec?.labels], ["identity namespaceLabels", identitySpec?.namespaceLabels]);
    for (const [path, labels] of labelMaps) {
      assert.deepEqual(labels?.["x-kubernetes-validations"], [LABEL_MAP_KEYS_RULE], `${path} checks its keys`);
      assert.equal(labels?.additionalProperties?.pattern, LABEL_VALUE_PATTERN, `${path} checks its values`);
    }
    for (const [path, selector] of selectors) {
      const requirement = selector.properties?.matchExpressions?.items?.properties;
      assert.deepEqual({ ...requirement?.key, description: undefined, type: undefined }, { ...LABEL_KEY_SCHEMA, description: undefined, type: undefined }, `${path} checks expression keys`);
      assert.equal(requirement?.values?.items?.pattern, LABEL_VALUE_PATTERN, `${path} checks expression values`);
    }
  });
});

/** Every node shaped like a LabelSelector (matchLabels and matchExpressions), with its path. */
function labelSelectors(node: StructuralSchema, path: string): [string, StructuralSchema][] {
  const found: [string, StructuralSchema][] = [];
  if (node.properties?.matchLabels !== undefined && node.properties.matchExpressions !== undefined) found.push([path, node]);
  for (const [name, child] of Object.entries(node.properties ?? {})) found.push(...labelSelectors(child, `${path}.${name}`));
  if (node.items !== undefined) found.push(...labelSelectors(node.items, `${path}[]`));
  return found;
}
