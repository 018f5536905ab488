import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
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
