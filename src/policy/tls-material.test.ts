import assert from "node:assert/strict";
import { test } from "node:test";
import { formatTlsMaterialSource, tlsMaterialName } from "./tls-material.ts";

test("copies are named by kind, namespace and name, and no two sources share a name", () => {
  assert.equal(tlsMaterialName({ kind: "Secret", namespace: "shop", name: "api-tls" }), "secret.shop.api-tls");
  assert.equal(tlsMaterialName({ kind: "ConfigMap", namespace: "shop", name: "shop-ca" }), "configmap.shop.shop-ca");
  // Secret and ConfigMap names may hold dots, namespace names may not: the first two dots split the name.
  assert.equal(tlsMaterialName({ kind: "Secret", namespace: "a", name: "b.c" }), "secret.a.b.c");
  assert.notEqual(tlsMaterialName({ kind: "Secret", namespace: "a", name: "b" }), tlsMaterialName({ kind: "ConfigMap", namespace: "a", name: "b" }));
  assert.equal(formatTlsMaterialSource({ kind: "Secret", namespace: "shop", name: "api-tls" }), "Secret shop/api-tls");
});

test("a source whose copy's name would be too long for a Secret has none", () => {
  const name = "a".repeat(253 - "secret.shop.".length);
  assert.equal(tlsMaterialName({ kind: "Secret", namespace: "shop", name })?.length, 253);
  assert.equal(tlsMaterialName({ kind: "Secret", namespace: "shop", name: `${name}b` }), undefined);
});
