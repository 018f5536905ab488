import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repositoryRoot } from "../repository-root.ts";
import { crdFilePath, generateCrds, renderCrd } from "./generate.ts";
import type { StructuralSchema } from "./structural-schema.ts";

describe("generateCrds", () => {
  const root = repositoryRoot();
  const crds = generateCrds(root);

  it("matches the committed deploy/crds files (run `node dist/src/crd/generate.js` after changing the API types)", () => {
    assert.deepEqual(crds.map((crd) => crdFilePath(crd)), ["deploy/crds/ebpfnetworkpolicies.palisade.dev.yaml", "deploy/crds/palisadeidentities.palisade.dev.yaml"]);
    for (const crd of crds) assert.equal(readFileSync(join(root, crdFilePath(crd)), "utf8"), renderCrd(crd), `${crdFilePath(crd)} is stale`);
  });

  it("describes every field of the spec and status", () => {
    for (const crd of crds) assertDocumented(crd.spec.versions[0]?.schema.openAPIV3Schema);
  });

  it("names identities by number, keeps their spec immutable, and is cluster-scoped", () => {
    const crd = crds.find((c) => c.spec.names.kind === "PalisadeIdentity");
    const schema = crd?.spec.versions[0]?.schema.openAPIV3Schema;
    assert.equal(crd?.spec.scope, "Cluster");
    assert.deepEqual(crd?.spec.names.shortNames, ["palid"]);
    assert.match(schema?.["x-kubernetes-validations"]?.[0]?.rule ?? "", /self\.metadata\.name\.matches/);
    assert.deepEqual(schema?.properties?.spec?.["x-kubernetes-validations"]?.map((v) => v.rule), ["self == oldSelf"]);
    assert.equal(schema?.properties?.spec?.properties?.namedPorts?.items?.properties?.port?.type, "integer");
  });

  function assertDocumented(schema: StructuralSchema | undefined): void {
    const undocumented: string[] = [];
    const visit = (node: StructuralSchema, path: string): void => {
      if (node.description === undefined) undocumented.push(path);
      for (const [name, child] of Object.entries(node.properties ?? {})) visit(child, `${path}.${name}`);
      if (node.items?.properties !== undefined) visit(node.items, `${path}[]`);
    };
    visit(schema?.properties?.spec ?? {}, "spec");
    if (schema?.properties?.status !== undefined) visit(schema.properties.status, "status");
    assert.deepEqual(undocumented, []);
  }

  it("gives port as int-or-string, the defaults, and the status subresource", () => {
    const version = crds[0]?.spec.versions[0];
    const port = version?.schema.openAPIV3Schema.properties?.spec?.properties?.ingress?.items?.properties?.ports?.items;
    assert.equal(port?.properties?.port?.["x-kubernetes-int-or-string"], true);
    assert.equal(port?.properties?.protocol?.default, "TCP");
    assert.deepEqual(version?.subresources, { status: {} });
    assert.deepEqual(version?.additionalPrinterColumns?.map((c) => c.name), ["Selected", "Programmed", "Accepted", "Mode", "Age"]);
  });
});
