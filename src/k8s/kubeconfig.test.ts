import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { Kubeconfig } from "./kubeconfig.ts";

const CA = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n";
const b64 = (text: string): string => Buffer.from(text).toString("base64");

describe("Kubeconfig", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "kubeconfig-test-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a kubeconfig with one context `ctx` of `cluster` and `user`; returns its path. */
  const write = (name: string, cluster: Record<string, unknown>, user: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): string => {
    const path = join(dir, name);
    writeFileSync(path, stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster }],
      users: user === undefined ? [] : [{ name: "u", user }],
      contexts: [{ name: "ctx", context: { cluster: "c", ...(user === undefined ? {} : { user: "u" }) } }],
      "current-context": "ctx",
      ...extra,
    }));
    return path;
  };

  it("reads a client certificate, the CA and the server of the current context", async () => {
    const config = Kubeconfig.fromFile(write("cert", { server: "https://127.0.0.1:6443/", "certificate-authority-data": b64(CA), "tls-server-name": "kubernetes" }, { "client-certificate-data": b64(CERT), "client-key-data": b64(KEY) }));
    assert.equal(config.server, "https://127.0.0.1:6443");
    assert.equal(config.context, "ctx");
    const options = await config.requestOptions();
    assert.equal(String(options.ca), CA);
    assert.equal(String(options.cert), CERT);
    assert.equal(String(options.key), KEY);
    assert.equal(options.servername, "kubernetes");
    assert.equal(options.rejectUnauthorized, undefined);
    assert.deepEqual(options.headers, {});
  });

  it("reads a kubeconfig written as JSON, as YAML and as YAML that is not JSON alike", async () => {
    const doc = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443", "certificate-authority-data": b64(CA) } }],
      users: [{ name: "u", user: { token: "abc" } }],
      contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
      "current-context": "ctx",
    };
    const flow = stringify(doc, { collectionStyle: "flow" });
    assert.throws(() => JSON.parse(flow), SyntaxError, "the flow-style YAML is not JSON");
    const texts = { json: JSON.stringify(doc, null, 2), block: stringify(doc), flow };
    const read = await Promise.all(Object.entries(texts).map(async ([name, text]) => {
      writeFileSync(join(dir, `same-${name}`), text);
      const config = Kubeconfig.fromFile(join(dir, `same-${name}`));
      const options = await config.requestOptions();
      return [config.server, config.context, String(options.ca), options.headers];
    }));
    assert.deepEqual(read, Array(3).fill(["https://10.0.0.1:6443", "ctx", CA, { authorization: "Bearer abc" }]));
  });

  it("reads files relative to the kubeconfig's folder, again for every request", async () => {
    writeFileSync(join(dir, "ca.crt"), CA);
    writeFileSync(join(dir, "token"), "first\n");
    writeFileSync(join(dir, "client.crt"), CERT);
    writeFileSync(join(dir, "client.key"), KEY);
    const config = Kubeconfig.fromFile(write("files", { server: "https://h:1", "certificate-authority": "ca.crt" }, { tokenFile: "token", "client-certificate": "client.crt", "client-key": "client.key" }));
    const first = await config.requestOptions();
    assert.deepEqual([String(first.ca), String(first.cert), String(first.key), first.headers], [CA, CERT, KEY, { authorization: "Bearer first" }]);
    writeFileSync(join(dir, "token"), "rotated\n");
    writeFileSync(join(dir, "client.crt"), `${CERT}rotated`);
    writeFileSync(join(dir, "ca.crt"), `${CA}rotated`);
    const next = await config.requestOptions();
    assert.deepEqual([String(next.ca), String(next.cert), next.headers], [`${CA}rotated`, `${CERT}rotated`, { authorization: "Bearer rotated" }]);
    rmSync(join(dir, "client.key"));
    assert.throws(() => Kubeconfig.fromFile(join(dir, "files")), /client\.key/, "a missing file is reported when the kubeconfig is read");
  });

  it("sends a token, or basic auth, and skips verification only when told", async () => {
    const token = Kubeconfig.fromFile(write("token", { server: "https://h:1", "insecure-skip-tls-verify": true }, { token: "abc" }));
    const options = await token.requestOptions();
    assert.deepEqual(options.headers, { authorization: "Bearer abc" });
    assert.equal(options.rejectUnauthorized, false);
    const basic = Kubeconfig.fromFile(write("basic", { server: "https://h:1" }, { username: "admin", password: "secret" }));
    assert.deepEqual((await basic.requestOptions()).headers, { authorization: `Basic ${b64("admin:secret")}` });
  });

  it("runs an exec plugin and keeps its credential until it expires", async () => {
    const count = join(dir, "runs");
    writeFileSync(count, "");
    const plugin = join(dir, "plugin.sh");
    // Each run appends a line and prints a token numbered by the runs so far; the expiry comes from the environment.
    writeFileSync(plugin, `#!/bin/sh\necho run >> "${count}"\nn=$(wc -l < "${count}")\necho "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"t$n-$PLUGIN_ARG-$1\\",\\"expirationTimestamp\\":\\"$EXPIRES\\"}}"\n`);
    chmodSync(plugin, 0o755);
    const exec = (expires: string) => ({ apiVersion: "client.authentication.k8s.io/v1", command: "./plugin.sh", args: ["a1"], env: [{ name: "PLUGIN_ARG", value: "e1" }, { name: "EXPIRES", value: expires }] });
    const lasting = Kubeconfig.fromFile(write("exec", { server: "https://h:1" }, { exec: exec(new Date(Date.now() + 3_600_000).toISOString()) }));
    assert.deepEqual((await lasting.requestOptions()).headers, { authorization: "Bearer t1-e1-a1" });
    assert.deepEqual((await lasting.requestOptions()).headers, { authorization: "Bearer t1-e1-a1" }, "kept while valid");
    const expired = Kubeconfig.fromFile(write("exec-expired", { server: "https://h:1" }, { exec: exec(new Date(Date.now() - 1000).toISOString()) }));
    assert.deepEqual((await expired.requestOptions()).headers, { authorization: "Bearer t2-e1-a1" });
    assert.deepEqual((await expired.requestOptions()).headers, { authorization: "Bearer t3-e1-a1" }, "run again once expired");
  });

  it("says why an exec plugin's credential cannot be used", async () => {
    const config = Kubeconfig.fromFile(write("exec-bad", { server: "https://h:1" }, { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "echo", args: ['{"kind":"ExecCredential","status":{}}'] } }));
    await assert.rejects(config.requestOptions(), /exec credential plugin "echo": status must hold a token, or clientCertificateData and clientKeyData/);
    const missing = Kubeconfig.fromFile(write("exec-missing", { server: "https://h:1" }, { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "/nonexistent/plugin" } }));
    await assert.rejects(missing.requestOptions(), /exec credential plugin "\/nonexistent\/plugin" failed/);
  });

  it("merges several files as kubectl does: the first to define a name or the current context wins", async () => {
    const first = join(dir, "merge-1");
    writeFileSync(first, stringify({ clusters: [{ name: "c", cluster: { server: "https://first:1" } }], users: [{ name: "u", user: { token: "first" } }] }));
    const second = join(dir, "merge-2");
    writeFileSync(second, stringify({
      clusters: [{ name: "c", cluster: { server: "https://second:1" } }],
      users: [{ name: "u", user: { token: "second" } }],
      contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
      "current-context": "ctx",
    }));
    const config = Kubeconfig.fromFile(first, second);
    assert.equal(config.server, "https://first:1");
    assert.deepEqual((await config.requestOptions()).headers, { authorization: "Bearer first" });
  });

  it("reads the pod's service account", async () => {
    const saved = { host: process.env["KUBERNETES_SERVICE_HOST"], port: process.env["KUBERNETES_SERVICE_PORT"] };
    try {
      process.env["KUBERNETES_SERVICE_HOST"] = "fd00::1";
      process.env["KUBERNETES_SERVICE_PORT"] = "443";
      const accountDir = mkdtempSync(join(dir, "sa-"));
      writeFileSync(join(accountDir, "ca.crt"), CA);
      writeFileSync(join(accountDir, "token"), "sa-token\n");
      const config = Kubeconfig.inCluster(accountDir);
      assert.equal(config.server, "https://[fd00::1]:443");
      const options = await config.requestOptions();
      assert.equal(String(options.ca), CA);
      assert.deepEqual(options.headers, { authorization: "Bearer sa-token" });
    } finally {
      for (const [name, value] of [["KUBERNETES_SERVICE_HOST", saved.host], ["KUBERNETES_SERVICE_PORT", saved.port]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("refuses what it would otherwise misread, naming the file and field", () => {
    const cases: [string, Record<string, unknown>, Record<string, unknown> | undefined, RegExp][] = [
      ["auth-provider", { server: "https://h:1" }, { "auth-provider": { name: "oidc" } }, /user "u" field "auth-provider" is not supported/],
      ["impersonation", { server: "https://h:1" }, { token: "t", as: "admin" }, /user "u" field "as" is not supported/],
      ["proxy", { server: "https://h:1", "proxy-url": "http://proxy:3128" }, { token: "t" }, /cluster "c" field "proxy-url" is not supported/],
      ["no-server", {}, { token: "t" }, /cluster "c" field "server" is required/],
      ["two-cas", { server: "https://h:1", "certificate-authority": "ca.crt", "certificate-authority-data": b64(CA) }, undefined, /"certificate-authority" and "certificate-authority-data" are both set/],
      ["key-only", { server: "https://h:1" }, { "client-key-data": b64(KEY) }, /field "client-key" is set without its certificate/],
      ["token-and-basic", { server: "https://h:1" }, { token: "t", username: "a" }, /field "username" and a token are both set/],
      ["insecure-text", { server: "https://h:1", "insecure-skip-tls-verify": "yes" }, undefined, /field "insecure-skip-tls-verify" must be true or false/],
      ["exec-version", { server: "https://h:1" }, { exec: { apiVersion: "v1", command: "x" } }, /field "exec.apiVersion" must be a client.authentication.k8s.io version/],
    ];
    for (const [name, cluster, user, message] of cases) {
      const path = write(`bad-${name}`, cluster, user);
      assert.throws(() => Kubeconfig.fromFile(path), (e: Error) => message.test(e.message) && e.message.includes(path), name);
    }
    const noContext = write("no-context", { server: "https://h:1" }, undefined, { "current-context": "other" });
    assert.throws(() => Kubeconfig.fromFile(noContext), /current-context "other" names no context/);
  });
});
