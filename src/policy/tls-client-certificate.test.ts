import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConfigMapKeyReference } from "./api-types.ts";
import { admittingRules, matchSubjectAltName } from "./tls-client-certificate.ts";
import type { PresentedCertificate } from "./tls-client-certificate.ts";

test("URI entries match exactly, DNS entries as server names do; wildcard and IP names presented match nothing", () => {
  const patterns = ["spiffe://cluster.local/ns/shop/sa/frontend", "*.frontend.shop.example", "api.shop.example"];
  const names = (dns: string[], uri: string[] = []) => matchSubjectAltName(patterns, { dns, uri });
  assert.equal(names([], ["spiffe://cluster.local/ns/shop/sa/frontend"]), 0);
  assert.equal(names([], ["SPIFFE://cluster.local/ns/shop/sa/frontend"]), -1, "URIs compare exactly");
  assert.equal(names([], ["spiffe://cluster.local/ns/shop/sa/frontend/x"]), -1);
  assert.equal(names(["A.Frontend.Shop.Example"]), 1);
  assert.equal(names(["a.b.frontend.shop.example", "frontend.shop.example"]), -1, "one label under the wildcard, exactly");
  assert.equal(names(["*.frontend.shop.example"]), -1, "a wildcard certificate names no one client");
  assert.equal(names(["API.shop.example"]), 2);
  assert.equal(names(["spiffe://cluster.local/ns/shop/sa/frontend"]), -1, "a URI carried as a DNS name is no URI");
});

test("admittingRules: the rules the certificate meets, else the failure of the rule it came closest to", () => {
  const ca = (name: string): ConfigMapKeyReference => ({ configMapName: name, key: "ca.crt" });
  const rules = [
    { id: 1, clientCertificate: { ca: ca("a"), subjectAltNames: ["spiffe://c/a"] } },
    { id: 2, clientCertificate: { ca: ca("b"), subjectAltNames: ["spiffe://c/b"] } },
  ];
  const certificate = (uri: string, trusted: string[], valid = true): PresentedCertificate => ({ names: { dns: [], uri: [uri] }, valid, chainsTo: (ref) => trusted.includes(ref.configMapName) });
  assert.deepEqual(admittingRules(rules, certificate("spiffe://c/b", ["a", "b"])), { ids: [2] });
  assert.deepEqual(admittingRules(rules, certificate("spiffe://c/b", ["a"])), { ids: [], failure: "san-not-allowed" }, "b's name from a's CA counts for neither");
  assert.deepEqual(admittingRules(rules, certificate("spiffe://c/a", ["a"], false)), { ids: [], failure: "expired-client-certificate" });
  assert.deepEqual(admittingRules(rules, certificate("spiffe://c/a", [])), { ids: [], failure: "untrusted-client-certificate" });
  assert.deepEqual(admittingRules(rules, undefined), { ids: [], failure: "no-client-certificate" });
  assert.deepEqual(admittingRules([...rules, { id: 3 }], undefined), { ids: [3] }, "a rule without clientCertificate admits any client");
});
