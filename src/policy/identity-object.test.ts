import assert from "node:assert/strict";
import { test } from "node:test";
import { identityKeyIndex, identityNumberOf, identityObject, lowestIdentityNumber } from "./identity-object.ts";

test("identityObject names the object by number and spells the key out", () => {
  const key = JSON.stringify(["pod", "x", [["kubernetes.io/metadata.name", "x"]], [["app", "web"]], [{ name: "http", port: 80, protocol: "TCP" }], null]);
  assert.deepEqual(identityObject(301, key), {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "PalisadeIdentity",
    metadata: { name: "301", labels: { "app.kubernetes.io/part-of": "palisade", "palisade.dev/identity-kind": "pod" } },
    spec: {
      key,
      kind: "pod",
      namespace: "x",
      namespaceLabels: { "kubernetes.io/metadata.name": "x" },
      labels: { app: "web" },
      namedPorts: [{ name: "http", port: 80, protocol: "TCP" }],
    },
  });
});

test("only decimal numbers from 256 below the node-local numbers are identity names", () => {
  for (const [name, id] of [["256", 256], ["4026531839", 4026531839], ["4026531840", undefined], ["4294967295", undefined], ["255", undefined], ["0256", undefined], ["4294967296", undefined], ["x", undefined]] as const) {
    assert.equal(identityNumberOf({ metadata: { name } }), id, name);
  }
  assert.deepEqual(identityKeyIndex({ metadata: { name: "12" }, spec: { key: "k" } }), []);
  assert.deepEqual(identityKeyIndex({ metadata: { name: "300" }, spec: { key: "k" } }), ["k"]);
  assert.equal(lowestIdentityNumber([{ metadata: { name: "300" } }, { metadata: { name: "299" } }, { metadata: { name: "7" } }]), 299);
});
