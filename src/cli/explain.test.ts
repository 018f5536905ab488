import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { TestContext } from "node:test";
import { repositoryRoot } from "../repository-root.ts";
import { runExplain } from "./explain.ts";
import type { ExplainOptions } from "./explain.ts";

/** `palisade explain -f examples/tls.yaml --from shop/worker --to 140.82.112.3 --port PORT --tls-server-name NAME`. */
function explainTls(serverName: string, port = 443): string {
  const options: ExplainOptions = { files: [join(repositoryRoot(), "examples/tls.yaml")], from: "shop/worker", to: "140.82.112.3", port, protocol: "TCP", output: "text", tlsServerName: serverName };
  return runExplain(options);
}

describe("explain --tls-server-name", () => {
  test("answers with the proxy's verdict and the rule behind it", () => {
    assert.equal(
      explainTls("API.GitHub.com"),
      [
        "shop/worker (10.244.1.30) -> 140.82.112.3 (140.82.112.3) TCP/443: ALLOWED",
        "  egress at shop/worker: allowed by EBPFNetworkPolicy shop/worker-egress egress[0] (steered to the node's proxy: HTTP or TLS rules judge it)",
        "  tls API.GitHub.com: allowed by EBPFNetworkPolicy shop/worker-egress egress[0].tls",
      ].join("\n"),
    );
    assert.match(explainTls("github.com"), /: DENIED\n(.*\n)* {2}tls github\.com: reset by EBPFNetworkPolicy shop\/worker-egress egress\[0\]: no tls serverNames entry of the rules allowing the flow matched$/);
    assert.match(explainTls("10.0.0.1"), /tls 10\.0\.0\.1: reset before any rule: a ClientHello naming an IP address, which SNI may not carry is malformed$/);
  });

  test("a flow no tls rule covers never reaches the proxy", () => {
    assert.match(explainTls("api.stripe.com", 53), /tls api\.stripe\.com: not judged, no HTTP or TLS rule covers this flow \(it never reaches the proxy\)$/);
  });
});

/** `palisade explain -f examples/tls-termination.yaml --from shop/frontend --to shop/api --port 8443 ...`. */
function explainTermination(extra: Partial<ExplainOptions>): string {
  return runExplain({ files: [join(repositoryRoot(), "examples/tls-termination.yaml")], from: "shop/frontend", to: "shop/api", port: 8443, protocol: "TCP", output: "text", tlsServerName: "api.shop.example", ...extra });
}

describe("explain --tls-client-san", () => {
  test("a terminated connection: the certificate presented, the client certificate's names, the request inside", () => {
    const spiffe = "spiffe://cluster.local/ns/shop/sa/frontend";
    const allowed = explainTermination({ tlsClientSans: [spiffe], http: { method: "GET", path: "/public/a", headers: [] } });
    assert.match(allowed, /: ALLOWED\n/);
    assert.match(allowed, /\n {2}tls api\.shop\.example: terminated with Secret shop\/api-tls \(upstream Plain\), admitted by EBPFNetworkPolicy shop\/api-mtls ingress\[0\]\.tls\n {2}http GET \/public\/a: allowed by EBPFNetworkPolicy shop\/api-mtls ingress\[0\]\.http\[0\]$/);
    assert.match(explainTermination({ tlsClientSans: [spiffe], http: { method: "GET", path: "/admin", headers: [] } }), /: DENIED\n(.*\n)* {2}http GET \/admin: refused with 403 by EBPFNetworkPolicy shop\/api-mtls ingress\[0\]: no http entry of the rules allowing the flow matched$/);
    assert.match(explainTermination({ tlsClientSans: ["DNS:x"] }), /tls api\.shop\.example: reset after the handshake: san-not-allowed/);
    assert.match(explainTermination({ tlsClientSans: ["web.frontend.shop.example"] }), /terminated with Secret shop\/api-tls/);
    assert.match(explainTermination({}), /tls api\.shop\.example: reset after the handshake: no-client-certificate/);
    assert.match(explainTermination({ tlsServerName: "other.shop.example" }), /tls other\.shop\.example: reset by EBPFNetworkPolicy shop\/api-mtls ingress\[0\]: no tls serverNames entry/);
  });
});

describe("explain --tls-server-name with --http-host", () => {
  const spiffe = "spiffe://cluster.local/ns/shop/sa/frontend";
  const inside = (host: string | undefined) => explainTermination({ tlsClientSans: [spiffe], http: { method: "GET", path: "/public/a", headers: [], ...(host !== undefined && { host }) } });

  test("a request for another host than the rules' server names is answered 421, naming the rule; the server name is the host by default", () => {
    assert.match(inside("admin.shop.example"), /: DENIED\n(.*\n)* {2}http GET \/public\/a: answered 421 Misdirected Request \(host admin\.shop\.example, server name api\.shop\.example\) by EBPFNetworkPolicy shop\/api-mtls ingress\[0\]\.tls, misdirected: no tls\.serverNames entry/);
    assert.match(inside("API.Shop.Example:8443"), /: ALLOWED\n(.*\n)* {2}http GET \/public\/a: allowed by EBPFNetworkPolicy shop\/api-mtls ingress\[0\]\.http\[0\]$/);
    assert.match(inside(undefined), /: ALLOWED\n/);
  });

  test("a terminated connection whose requests no rule reads: the host is not judged", (t) => {
    const file = shopFile(t, `apiVersion: palisade.dev/v1alpha1
kind: EBPFNetworkPolicy
metadata: {name: b-tls, namespace: shop}
spec:
  selector: {matchLabels: {app: b}}
  ingress:
  - ports: [{protocol: TCP, port: 8443}]
    tls: {serverNames: [api.shop.example], termination: {certificate: {secretName: b-tls}}}
`);
    const out = runExplain({ files: [file], from: "shop/a", to: "shop/b", port: 8443, protocol: "TCP", output: "text", tlsServerName: "api.shop.example", http: { method: "GET", path: "/", host: "admin.shop.example", headers: [] } });
    assert.match(out, /: ALLOWED\n(.*\n)* {2}http GET \/: not judged, no rule reads the requests of this connection: the decrypted bytes go to the pod unread, their host not held to the server name$/);
  });
});

/** Two pods of `shop`, a at 10.244.1.10 and b at 10.244.1.11, and `policy`, as a file explain reads, removed after the test `t`. */
function shopFile(t: TestContext, policy: string): string {
  const folder = mkdtempSync(join(tmpdir(), "palisade-explain-"));
  t.after(() => rmSync(folder, { recursive: true, force: true }));
  const file = join(folder, "policy.yaml");
  const pod = (name: string, ip: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}
spec: {nodeName: palisade-node-1, containers: [{name: c, image: palisade.dev/pod-server}]}
status: {podIPs: [{ip: ${ip}}]}
`;
  writeFileSync(file, ["apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", pod("a", "10.244.1.10"), pod("b", "10.244.1.11"), policy].join("---\n"));
  return file;
}

describe("explain --http-path", () => {
  test("a Deny entry matching the path only as servers read it names that reading", (t) => {
    const file = shopFile(t, `apiVersion: palisade.dev/v1alpha1
kind: EBPFNetworkPolicy
metadata: {name: b, namespace: shop}
spec:
  selector: {matchLabels: {app: b}}
  ingress:
    - ports: [{protocol: TCP, port: 8080}]
    - action: Deny
      ports: [{protocol: TCP, port: 8080}]
      http: [{path: {prefix: /admin}}]
`);
    const explain = (path: string) => runExplain({ files: [file], from: "shop/a", to: "shop/b", port: 8080, protocol: "TCP", output: "text", http: { method: "GET", path, headers: [] } });
    assert.match(explain("//admin/users"), /http GET \/\/admin\/users: refused with 403 by EBPFNetworkPolicy shop\/b ingress\[1\]\.http\[0\], the path read as \/admin\/users, as some servers read it$/);
    assert.match(explain("/;x/admin"), /the path read as \/admin, as some servers read it$/);
    assert.match(explain("/public//x"), /http GET \/public\/\/x: allowed, /);
  });
});
