import assert from "node:assert/strict";
import { test } from "node:test";
import { makeCertificate } from "../../test/lib/tls-certificate.ts";
import { tlsMaterialReferences } from "../policy/tls-material.ts";
import { caBundleProblem, tlsSecretProblem } from "./tls-material.ts";

const b64 = (data: Buffer | string): string => Buffer.from(data).toString("base64");
const server = makeCertificate(["api.shop.example"]);
const other = makeCertificate(["other.example"]);
const secret = (data: Record<string, string>) => ({ type: "kubernetes.io/tls", data });

test("a termination certificate must be PEM certificates and the first one's private key", () => {
  assert.equal(tlsSecretProblem(secret({ "tls.crt": b64(server.cert), "tls.key": b64(server.key) })), undefined);
  // A chain after the server's certificate is fine.
  assert.equal(tlsSecretProblem(secret({ "tls.crt": b64(Buffer.concat([server.cert, other.cert])), "tls.key": b64(server.key) })), undefined);
  assert.equal(tlsSecretProblem(secret({ "tls.key": b64(server.key) })), 'has no "tls.crt"');
  assert.equal(tlsSecretProblem(secret({ "tls.crt": b64(server.cert) })), 'has no "tls.key"');
  assert.equal(tlsSecretProblem(secret({ "tls.crt": b64("not pem"), "tls.key": b64(server.key) })), 'holds no PEM certificate in "tls.crt"');
  const broken = server.cert.toString().replace(/\n[A-Za-z0-9+/]{8}/, "\n!!!!!!!!");
  assert.equal(tlsSecretProblem(secret({ "tls.crt": b64(broken), "tls.key": b64(server.key) })), 'holds a certificate that does not parse in "tls.crt" (block 1)');
  assert.equal(tlsSecretProblem(secret({ "tls.crt": b64(server.cert), "tls.key": b64("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") })), 'holds no PEM private key (unencrypted) in "tls.key"');
  const mismatch = tlsSecretProblem(secret({ "tls.crt": b64(server.cert), "tls.key": b64(other.key) }));
  assert.equal(mismatch, 'holds a "tls.key" that is not the private key of the first certificate of "tls.crt"');
  // The messages never carry the data.
  assert.ok(!mismatch.includes(other.key.toString().split("\n")[1]!));
});

test("a CA bundle must hold PEM certificates under the key named", () => {
  assert.equal(caBundleProblem(`${server.cert}${other.cert}`, "ca.crt"), undefined);
  assert.equal(caBundleProblem(undefined, "ca.crt"), 'has no key "ca.crt"');
  assert.equal(caBundleProblem("", "ca.crt"), 'holds no PEM certificate in "ca.crt"');
  assert.equal(caBundleProblem(server.key.toString(), "ca.crt"), 'holds no PEM certificate in "ca.crt"');
});

test("references are read from both directions' rules, each with its field", () => {
  const references = tlsMaterialReferences({
    metadata: { namespace: "shop" },
    spec: {
      ingress: [
        { ports: [{ port: 80 }] },
        { tls: { termination: { certificate: { secretName: "api-tls" }, upstream: "TLS", upstreamCA: { configMapName: "pod-ca", key: "ca.crt" } }, clientCertificate: { ca: { configMapName: "shop-ca", key: "clients.pem" }, subjectAltNames: ["x"] } } },
      ],
      egress: [{ tls: { serverNames: ["api.stripe.com"] } }, { tls: { termination: { certificate: { secretName: 7 } } } }],
    },
  });
  assert.deepEqual(references, [
    { source: { kind: "Secret", namespace: "shop", name: "api-tls" }, field: "spec.ingress[1].tls.termination.certificate.secretName" },
    { source: { kind: "ConfigMap", namespace: "shop", name: "pod-ca" }, key: "ca.crt", field: "spec.ingress[1].tls.termination.upstreamCA.configMapName" },
    { source: { kind: "ConfigMap", namespace: "shop", name: "shop-ca" }, key: "clients.pem", field: "spec.ingress[1].tls.clientCertificate.ca.configMapName" },
  ]);
});
