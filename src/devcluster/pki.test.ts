import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { DevPki } from "./pki.ts";

const root = mkdtempSync(join(tmpdir(), "pl-pki-"));
after(() => rmSync(root, { recursive: true, force: true }));

function cert(path: string): X509Certificate {
  return new X509Certificate(readFileSync(path));
}

function verifies(pki: DevPki, certFile: string, purpose: "sslclient" | "sslserver"): boolean {
  try {
    execFileSync("openssl", ["verify", "-purpose", purpose, "-CAfile", pki.caCertFile, certFile], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

describe("DevPki", () => {
  test("issues a client certificate with the user as CN and the groups as O, chained to the CA", () => {
    const pki = DevPki.ensure(join(root, "client"));
    const issued = pki.issueClientCert("system:kube-scheduler", ["g1", "system:masters"]);
    const subject = cert(issued.certFile).toLegacyObject().subject as Record<string, unknown>;
    assert.equal(subject.CN, "system:kube-scheduler");
    assert.deepEqual(subject.O, ["g1", "system:masters"]);
    assert.ok(verifies(pki, issued.certFile, "sslclient"));
    assert.ok(!verifies(pki, issued.certFile, "sslserver"));
    assert.equal(statSync(issued.keyFile).mode & 0o777, 0o600);
  });

  test("escapes openssl's subject separators inside names", () => {
    const pki = DevPki.ensure(join(root, "escape"));
    const issued = pki.issueClientCert("a/b+c\\d", ["x=y"]);
    const subject = cert(issued.certFile).toLegacyObject().subject as Record<string, unknown>;
    assert.equal(subject.CN, "a/b+c\\d");
    assert.equal(subject.O, "x=y");
  });

  test("issues a serving certificate valid for each DNS name and IP, IPv6 included", () => {
    const pki = DevPki.ensure(join(root, "serving"));
    const files = pki.issueServingCert("api", { dnsNames: ["localhost", "kubernetes.default.svc"], ips: ["127.0.0.1", "::1", "10.96.0.1"] });
    const served = cert(files.certFile);
    assert.equal(served.checkHost("kubernetes.default.svc"), "kubernetes.default.svc");
    assert.equal(served.checkIP("::1"), "::1");
    assert.equal(served.checkIP("10.96.0.1"), "10.96.0.1");
    assert.equal(served.checkIP("10.96.0.2"), undefined);
    assert.ok(verifies(pki, files.certFile, "sslserver"));
  });

  test("issues a serving certificate usable as a client one on request, and reissues when that changes", () => {
    const pki = DevPki.ensure(join(root, "both"));
    const names = { dnsNames: ["localhost"], ips: ["127.0.0.1"] };
    const serverOnly = pki.issueServingCert("etcd", names);
    assert.ok(!verifies(pki, serverOnly.certFile, "sslclient"));
    const both = pki.issueServingCert("etcd", { ...names, clientAuth: true });
    assert.ok(verifies(pki, both.certFile, "sslclient"));
    assert.ok(verifies(pki, both.certFile, "sslserver"));
  });

  test("reuses what is still right and reissues what changed", () => {
    const dir = join(root, "reuse");
    const first = DevPki.ensure(dir);
    const ca = readFileSync(first.caCertFile, "utf8");
    const client = first.issueClientCert("alice", ["a"]);
    const before = readFileSync(client.certFile, "utf8");
    const again = DevPki.ensure(dir);
    assert.equal(readFileSync(again.caCertFile, "utf8"), ca);
    assert.equal(readFileSync(again.issueClientCert("alice", ["a"]).certFile, "utf8"), before);
    const regrouped = again.issueClientCert("alice", ["b"]);
    assert.notEqual(readFileSync(regrouped.certFile, "utf8"), before);
    assert.deepEqual((cert(regrouped.certFile).toLegacyObject().subject as Record<string, unknown>).O, "b");
  });

  test("starts over when the CA is unreadable: old leaves are replaced, not trusted", () => {
    const dir = join(root, "new-ca");
    const pki = DevPki.ensure(dir);
    const client = pki.issueClientCert("bob");
    writeFileSync(pki.caCertFile, "not a certificate");
    const fresh = DevPki.ensure(dir);
    const reissued = fresh.issueClientCert("bob");
    assert.ok(verifies(fresh, reissued.certFile, "sslclient"));
    assert.equal(reissued.certFile, client.certFile);
  });

  test("keeps distinct users in distinct files", () => {
    const pki = DevPki.ensure(join(root, "names"));
    assert.notEqual(pki.issueClientCert("system:admin").certFile, pki.issueClientCert("system-admin").certFile);
  });

  test("opened read-only, names the files and writes nothing", () => {
    const dir = join(root, "read-only");
    const pki = DevPki.existing(dir);
    const files = pki.issueClientCert("carol", ["x"]);
    assert.equal(files.certFile, join(dir, "users", "carol.crt"));
    assert.throws(() => statSync(dir), { code: "ENOENT" });
  });

  test("creates a service-account key pair that signs and verifies", async () => {
    const pki = DevPki.ensure(join(root, "sa"));
    const { createPrivateKey, createPublicKey, sign, verify } = await import("node:crypto");
    const key = createPrivateKey(readFileSync(pki.serviceAccountKeyFile));
    const signature = sign("sha256", Buffer.from("token"), key);
    assert.ok(verify("sha256", Buffer.from("token"), createPublicKey(readFileSync(pki.serviceAccountPublicKeyFile)), signature));
  });

  test("refuses a control character in a user name", () => {
    const pki = DevPki.ensure(join(root, "bad"));
    assert.throws(() => pki.issueClientCert("a\nb"), /Cannot issue client certificate for user "a\nb"/);
  });
});
