import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSubjectAltNames } from "./client-certificate.ts";

test("Node's subjectAltName text is read whole, quoted values included, or not at all", () => {
  assert.deepEqual(parseSubjectAltNames("DNS:a.example, URI:spiffe://c/ns/x, IP Address:10.0.0.1, email:a@b"), { dns: ["a.example"], uri: ["spiffe://c/ns/x"] });
  assert.deepEqual(parseSubjectAltNames('DNS:"a.example, DNS:evil.example", URI:spiffe://c'), { dns: ["a.example, DNS:evil.example"], uri: ["spiffe://c"] }, "a comma inside a name cannot add a name");
  assert.deepEqual(parseSubjectAltNames(undefined), { dns: [], uri: [] });
  assert.deepEqual(parseSubjectAltNames("DNS:a, garbage"), { dns: [], uri: [] });
});
