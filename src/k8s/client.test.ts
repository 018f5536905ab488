import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { stringify } from "yaml";
import { makeCertificate } from "../../test/lib/tls-certificate.ts";
import { KubeClient } from "./client.ts";
import { Kubeconfig } from "./kubeconfig.ts";

const certificate = makeCertificate(["localhost"]);
/** A TLS server answering every request with an empty object list, counting the TLS connections it accepts. */
const server = createServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ kind: "List", items: [], seen: { path: req.url, authorization: req.headers.authorization } }));
});
let connections = 0;
server.on("secureConnection", () => connections++);
server.listen(0, "127.0.0.1");
await once(server, "listening");
after(() => server.close());

const folder = mkdtempSync(join(tmpdir(), "client-test-"));
after(() => rmSync(folder, { recursive: true, force: true }));

function client(token: string): KubeClient {
  const path = join(folder, `kubeconfig-${token}`);
  writeFileSync(path, stringify({
    clusters: [{ name: "c", cluster: { server: `https://localhost:${(server.address() as AddressInfo).port}`, "certificate-authority-data": certificate.cert.toString("base64") } }],
    users: [{ name: "u", user: { token } }],
    contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
    "current-context": "x",
  }));
  return new KubeClient(Kubeconfig.fromFile(path));
}

test("requests reuse one TLS connection, and each still carries the kubeconfig's current credentials", async () => {
  const before = connections;
  const kube = client("first");
  for (let i = 0; i < 5; i++) {
    const answer = await kube.request<{ seen: { path: string; authorization: string } }>("GET", `/api/v1/namespaces/n${i}`);
    assert.deepEqual(answer.seen, { path: `/api/v1/namespaces/n${i}`, authorization: "Bearer first" });
  }
  assert.equal(connections - before, 1, "five sequential requests, one TLS handshake");
  // Requests in parallel open what they need, and are pooled again afterwards.
  await Promise.all([1, 2, 3].map((i) => kube.request("GET", `/api/v1/pods/p${i}`)));
  const opened = connections - before;
  assert.ok(opened >= 1 && opened <= 3, `${opened} connections for 3 parallel requests`);
  await kube.request("GET", "/api/v1/pods/again");
  assert.equal(connections - before, opened, "the pool's connections serve the next request");
});
