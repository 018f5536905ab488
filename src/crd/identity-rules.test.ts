import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PalisadeIdentitySpec } from "../policy/api-types.ts";
import { generateCrds } from "./generate.ts";
import { MAX_IDENTITY_KEY_LENGTH, MAX_IDENTITY_LABELS, MAX_IDENTITY_NAMED_PORTS, identityObjectProblem } from "./identity-rules.ts";

const labels = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
const ports = (n: number): PalisadeIdentitySpec["namedPorts"] => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, port: i + 1, protocol: "TCP" as const }));

describe("identityObjectProblem", () => {
  it("passes a spec at every bound and names the first field past one", () => {
    const atBounds: PalisadeIdentitySpec = { key: "k".repeat(MAX_IDENTITY_KEY_LENGTH), kind: "pod", labels: labels(MAX_IDENTITY_LABELS), namespaceLabels: labels(MAX_IDENTITY_LABELS), namedPorts: ports(MAX_IDENTITY_NAMED_PORTS) };
    assert.equal(identityObjectProblem(atBounds), undefined);
    assert.deepEqual(identityObjectProblem({ ...atBounds, key: `${atBounds.key}k` }), { field: "key", size: MAX_IDENTITY_KEY_LENGTH + 1, limit: MAX_IDENTITY_KEY_LENGTH });
    assert.deepEqual(identityObjectProblem({ ...atBounds, labels: labels(300) }), { field: "labels", size: 300, limit: MAX_IDENTITY_LABELS });
    assert.deepEqual(identityObjectProblem({ ...atBounds, namespaceLabels: labels(257) }), { field: "namespaceLabels", size: 257, limit: MAX_IDENTITY_LABELS });
    assert.deepEqual(identityObjectProblem({ ...atBounds, namedPorts: ports(257) }), { field: "namedPorts", size: 257, limit: MAX_IDENTITY_NAMED_PORTS });
  });

  it("uses the bounds the CRD states", () => {
    const spec = generateCrds().find((crd) => crd.spec.names.kind === "PalisadeIdentity")?.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec?.properties;
    assert.equal(spec?.key?.maxLength, MAX_IDENTITY_KEY_LENGTH);
    assert.equal(spec?.labels?.maxProperties, MAX_IDENTITY_LABELS);
    assert.equal(spec?.namespaceLabels?.maxProperties, MAX_IDENTITY_LABELS);
    assert.equal(spec?.namedPorts?.maxItems, MAX_IDENTITY_NAMED_PORTS);
  });
});
