import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { A, B, C, CLIENT_CERTIFICATES, compileHttpWorld, connectionStartArb, ebpf, httpFlowArb, httpPoliciesArb, httpRequestArb, terminationPoliciesArb, worldOf } from "../../test/lib/http-world.ts";
import { admittingRules } from "./tls-client-certificate.ts";
import type { AnyPolicy, HttpRule, TlsRule } from "./api-types.ts";
import { compileWorld } from "./compiler.ts";
import {
  IDENTITY_WORLD,
  POLICY_FLAG_AUDIT_HTTP,
  POLICY_FLAG_AUDIT_HTTP_DENY,
  POLICY_FLAG_HTTP,
  POLICY_FLAG_HTTP_DENY,
  VERDICT_ALLOW,
  VERDICT_NONE,
} from "./desired-state.ts";
import { httpRequestView } from "./http-request.ts";
import type { HttpRequestView } from "./http-rule.ts";
import { HttpViewIndex, parseHttpView, readsRequests } from "./http-view.ts";
import type { ConnectionStart, HttpJudgement } from "./http-view.ts";
import { explainPacket, lookupIpcache } from "./lookup.ts";
import { evaluateConnection, evaluateRequest } from "./reference-evaluator.ts";
import { validatePolicy } from "./validate.ts";

/** An ingress rule to b on TCP 8080 from a, with `http` and `action`. */
function rule(http: HttpRule[] | undefined, action: "Allow" | "Deny" = "Allow", from = "a") {
  return { action, from: [{ podSelector: { matchLabels: { pod: from } } }], ports: [{ protocol: "TCP" as const, port: 8080 }], ...(http ? { http } : {}) };
}

/** An ingress rule to b on TCP 8080 from a, with `tls` and `action`. */
function tlsRule(tls: TlsRule, action: "Allow" | "Deny" = "Allow") {
  return { ...rule(undefined, action), tls };
}

function request(method: string, path: string, headers: Record<string, string> = {}): HttpRequestView {
  return { method, path, host: "b.x", headers: new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), [v]])) };
}

/** Compiles the policies and judges a request from `client` to b:8080 through a view written to JSON and read back. */
function judge(policies: AnyPolicy[], req: HttpRequestView, client = A): HttpJudgement {
  const { compiler, state } = compileWorld(worldOf(policies));
  const view = parseHttpView(JSON.parse(JSON.stringify(compiler.httpView())));
  const identityOf = (ip: string) => lookupIpcache(state, ip)?.value.identity ?? IDENTITY_WORLD;
  return new HttpViewIndex(view).judge(req, { clientAddress: client, clientPort: 40000, serverAddress: B, serverPort: 8080 }, identityOf);
}

const publicGets: HttpRule[] = [{ method: "GET", path: { prefix: "/public/" } }];

describe("HTTP rules in the compiled state", () => {
  test("an Allow rule with http sets HTTP on its entry and the datapath steers the flow; other ports are untouched", () => {
    const policies = [ebpf("web", { ingress: [rule(publicGets)] })];
    const { state } = compileWorld(worldOf(policies));
    const [entry] = [...state.policy.values()];
    assert.equal(entry?.value.verdict, VERDICT_ALLOW);
    assert.equal(entry?.value.flags, POLICY_FLAG_HTTP | POLICY_FLAG_AUDIT_HTTP);
    const explain = (port: number) => explainPacket(state, worldOf(policies), { src: { ip: A }, dst: { ip: B }, protocol: "TCP", port }).ingress;
    assert.deepEqual([explain(8080)?.allowed, explain(8080)?.proxied], [true, true]);
    assert.deepEqual([explain(8081)?.allowed, explain(8081)?.proxied], [false, false]);
  });

  test("rules add up: an Allow without http for the same peer and port clears the steering; a Deny with http keeps it", () => {
    const open = ebpf("open", { ingress: [rule(undefined)] });
    const steered = (policies: AnyPolicy[]) => explainPacket(compileWorld(worldOf(policies)).state, worldOf(policies), { src: { ip: A }, dst: { ip: B }, protocol: "TCP", port: 8080 }).ingress?.proxied;
    assert.equal(steered([ebpf("web", { ingress: [rule(publicGets)] }), open]), false);
    assert.equal(steered([open, ebpf("deny", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] })]), true);
  });

  test("a Deny rule with http is no L4 deny: its entry has verdict none and the HTTP_DENY flags", () => {
    const { state } = compileWorld(worldOf([ebpf("deny", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] })]));
    const [entry] = [...state.policy.values()];
    assert.deepEqual([entry?.value.verdict, entry?.value.flags], [VERDICT_NONE, POLICY_FLAG_HTTP_DENY | POLICY_FLAG_AUDIT_HTTP_DENY]);
  });

  test("an Audit-mode http rule steers through the audit flags only", () => {
    const { state } = compileWorld(worldOf([ebpf("open", { ingress: [rule(undefined)] }), ebpf("audit", { mode: "Audit", ingress: [rule(publicGets)] })]));
    assert.deepEqual([...state.policy.values()].map((e) => e.value.flags), [0]);
    const audited = compileWorld(worldOf([ebpf("audit", { mode: "Audit", ingress: [rule(publicGets)] }), ebpf("open", { ingress: [rule(undefined)], mode: "Audit" })]));
    assert.deepEqual([...audited.state.policy.values()].map((e) => e.value.flags), [0]);
    const deny = compileWorld(worldOf([ebpf("open", { ingress: [rule(undefined)] }), ebpf("audit", { mode: "Audit", ingress: [rule(publicGets, "Deny")] })]));
    assert.deepEqual([...deny.state.policy.values()].map((e) => e.value.flags), [POLICY_FLAG_AUDIT_HTTP_DENY]);
  });

  test("the view holds only slots with http entries, and the rules they name", () => {
    const { compiler } = compileWorld(worldOf([ebpf("web", { ingress: [rule(publicGets)] }), ebpf("other", { selector: { matchLabels: { pod: "c" } }, ingress: [rule(undefined)] })]));
    const view = compiler.httpView();
    assert.equal(view.endpoints.length, 3, "every local endpoint, so a connection of a known pod is judged");
    assert.equal(view.policy.length, 1);
    assert.deepEqual(view.rules.map(([, ref]) => ref.name), ["web"]);
  });
});

describe("HttpViewIndex.judge", () => {
  test("a request must match an entry of an allowing rule; the rule and entry are named", () => {
    const policies = [ebpf("web", { ingress: [rule([{ method: "POST", path: { exact: "/orders" } }, ...publicGets])] })];
    assert.deepEqual(judge(policies, request("GET", "/public/a")), { allow: true, audit: false, policy: "EBPFNetworkPolicy x/web", rule: "ingress[0].http[1]" });
    const refused = judge(policies, request("GET", "/private"));
    assert.deepEqual(refused, { allow: false, audit: false, policy: "EBPFNetworkPolicy x/web", rule: "ingress[0]: no http entry of the rules allowing the flow matched" });
  });

  test("deny wins over any allow, with or without http", () => {
    const deny = ebpf("deny", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] });
    const open = ebpf("open", { ingress: [rule(undefined)] });
    assert.deepEqual(judge([open, deny], request("GET", "/admin/users")), { allow: false, audit: false, policy: "EBPFNetworkPolicy x/deny", rule: "ingress[0].http[0]" });
    assert.deepEqual(judge([open, deny], request("GET", "/public/x")), { allow: true, audit: false });
  });

  test("allows add up across policies and across the identity and any-peer entries", () => {
    const fromA = ebpf("from-a", { ingress: [rule(publicGets)] });
    const anyPeer = ebpf("any", { ingress: [{ ports: [{ protocol: "TCP", port: 8080 }], http: [{ headers: [{ name: "X-Tenant", exact: "blue" }] }] }] });
    assert.equal(judge([fromA, anyPeer], request("GET", "/public/a")).allow, true);
    assert.equal(judge([fromA, anyPeer], request("DELETE", "/x", { "X-Tenant": "blue" })).allow, true);
    assert.equal(judge([fromA, anyPeer], request("DELETE", "/x")).allow, false);
    assert.equal(judge([fromA, anyPeer], request("GET", "/public/a"), C).allow, false, "c only has the any-peer rule");
  });

  test("an Audit-mode policy's refusal forwards the request and says so", () => {
    const open = ebpf("open", { ingress: [rule(undefined)] });
    const audit = ebpf("audit", { mode: "Audit", ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] });
    assert.deepEqual(judge([open, audit], request("GET", "/admin")), { allow: true, audit: true, policy: "EBPFNetworkPolicy x/audit", rule: "ingress[0].http[0]" });
    assert.deepEqual(judge([open, audit], request("GET", "/ok")), { allow: true, audit: false });
  });

  test("Deny entries match the path as servers also read it: slashes merged, ;parameters dropped; Allow entries as written", () => {
    const deny = ebpf("deny", { ingress: [rule([{ path: { prefix: "/admin" } }, { path: { exact: "/orders" } }], "Deny")] });
    const open = ebpf("open", { ingress: [rule(undefined)] });
    const refused = (entry: number, read: string) => ({ allow: false, audit: false, policy: "EBPFNetworkPolicy x/deny", rule: `ingress[0].http[${entry}]`, reason: `the path read as ${read}, as some servers read it` });
    // nginx and Apache serve //admin/users as /admin/users; Tomcat and Jetty serve /;x/admin and /orders;v=2 as /admin and /orders.
    assert.deepEqual(judge([open, deny], request("GET", "//admin/users")), refused(0, "/admin/users"));
    assert.deepEqual(judge([open, deny], request("GET", "/;x/admin")), refused(0, "/admin"));
    assert.deepEqual(judge([open, deny], request("GET", "/orders;v=2")), refused(1, "/orders"));
    assert.deepEqual(judge([open, deny], request("GET", "/admin/users")), { allow: false, audit: false, policy: "EBPFNetworkPolicy x/deny", rule: "ingress[0].http[0]" }, "as written: no reason");
    assert.deepEqual(judge([open, deny], request("GET", "/public//admin;x")), { allow: true, audit: false });
    // Allow entries match the path as written: a rule naming // or ; admits it, and a merged reading admits nothing more.
    const web = ebpf("web", { ingress: [rule([...publicGets, { path: { exact: "/a//b;v=1" } }])] });
    assert.equal(judge([web], request("GET", "/a//b;v=1")).allow, true);
    assert.equal(judge([web], request("GET", "/a/b")).allow, false);
    assert.equal(judge([web], request("GET", "//public/a")).allow, false);
    assert.equal(judge([web], request("GET", "/public//a")).allow, true);
    const audit = ebpf("audit", { mode: "Audit", ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] });
    assert.deepEqual(judge([open, audit], request("GET", "///admin")), { allow: true, audit: true, policy: "EBPFNetworkPolicy x/audit", rule: "ingress[0].http[0]", reason: "the path read as /admin, as some servers read it" });
  });

  test("the client's egress rules are judged too when the client is on the node", () => {
    const egress = ebpf("egress", { selector: { matchLabels: { pod: "a" } }, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: { matchLabels: { pod: "b" } } }], ports: [{ protocol: "TCP", port: 8080 }], http: publicGets }] });
    assert.equal(judge([egress], request("GET", "/public/ok")).allow, true);
    assert.deepEqual(judge([egress], request("GET", "/nope")).policy, "EBPFNetworkPolicy x/egress");
  });

  test("the requests of one connection cost one identity lookup per side, not one per request", () => {
    const { compiler, state } = compileWorld(worldOf([ebpf("web", { ingress: [rule(publicGets)] })]));
    const index = new HttpViewIndex(compiler.httpView());
    let lookups = 0;
    const identityOf = (ip: string) => {
      lookups++;
      return lookupIpcache(state, ip)?.value.identity ?? IDENTITY_WORLD;
    };
    const connection = { clientAddress: A, clientPort: 40000, serverAddress: B, serverPort: 8080 };
    for (let i = 0; i < 100; i++) assert.equal(index.judge(request("GET", i % 2 ? "/public/x" : "/private"), connection, identityOf).allow, i % 2 === 1);
    assert.equal(lookups, 1, "b's ingress is the only side with HTTP rules");
  });

  test("a connection no endpoint of the view is party to is refused", () => {
    const { compiler } = compileWorld(worldOf([ebpf("web", { ingress: [rule(publicGets)] })]));
    const index = new HttpViewIndex(compiler.httpView());
    const verdict = index.judge(request("GET", "/public/"), { clientAddress: "192.0.2.1", clientPort: 1, serverAddress: "192.0.2.2", serverPort: 8080 }, () => IDENTITY_WORLD);
    assert.equal(verdict.allow, false);
    const unruled = index.judge(request("GET", "/public/"), { clientAddress: A, clientPort: 1, serverAddress: C, serverPort: 8080 }, () => IDENTITY_WORLD);
    assert.deepEqual(unruled, { allow: false, audit: false, rule: "no HTTP rule of this node covers the connection" }, "c's slot has no HTTP entries: the view is behind the datapath");
  });
});

/** Compiles the policies and judges a connection start from a to b:8080 through a view written to JSON and read back. */
function judgeStart(policies: AnyPolicy[], start: ConnectionStart): HttpJudgement {
  const { compiler, state } = compileWorld(worldOf(policies));
  const view = parseHttpView(JSON.parse(JSON.stringify(compiler.httpView())));
  const identityOf = (ip: string) => lookupIpcache(state, ip)?.value.identity ?? IDENTITY_WORLD;
  return new HttpViewIndex(view).judgeConnection(start, { clientAddress: A, clientPort: 40000, serverAddress: B, serverPort: 8080 }, identityOf);
}

const hello = (serverName: string | undefined): ConnectionStart => ({ tls: true, serverName });

describe("HttpViewIndex.judgeConnection", () => {
  const stripe = ebpf("sni", { ingress: [tlsRule({ serverNames: ["api.stripe.com", "*.github.com"] })] });

  test("a tls rule sets the proxy's flags as an http rule does, and its rule reference carries tls", () => {
    const { state, compiler } = compileWorld(worldOf([stripe]));
    assert.deepEqual([...state.policy.values()].map((e) => e.value.flags), [POLICY_FLAG_HTTP | POLICY_FLAG_AUDIT_HTTP]);
    assert.deepEqual(compiler.httpView().rules.map(([, ref]) => ref.tls), [{ serverNames: ["api.stripe.com", "*.github.com"] }]);
  });

  test("a ClientHello must name one of the allowing rules' server names: exact, or one label under a wildcard, any case", () => {
    assert.deepEqual(judgeStart([stripe], hello("api.stripe.com")), { allow: true, audit: false, policy: "EBPFNetworkPolicy x/sni", rule: "ingress[0].tls" });
    assert.equal(judgeStart([stripe], hello("API.GitHub.com")).allow, true);
    for (const name of ["github.com", "a.b.github.com", "stripe.com", "evilgithub.com"]) assert.equal(judgeStart([stripe], hello(name)).allow, false, name);
    assert.deepEqual(judgeStart([stripe], hello(undefined)), { allow: false, audit: false, policy: "EBPFNetworkPolicy x/sni", rule: "ingress[0]: the ClientHello names no server" });
    assert.deepEqual(judgeStart([stripe], { tls: false }), { allow: false, audit: false, policy: "EBPFNetworkPolicy x/sni", rule: "ingress[0]: the connection is not TLS, and only rules with tls allow the flow" });
  });

  test("mixed http and tls allows: TLS is judged by the tls rules, other bytes go on to the http rules", () => {
    const mixed = [stripe, ebpf("web", { ingress: [rule(publicGets)] })];
    assert.equal(judgeStart(mixed, hello("api.stripe.com")).allow, true);
    assert.equal(judgeStart(mixed, hello("other.example")).allow, false);
    assert.deepEqual(judgeStart(mixed, { tls: false }), { allow: true, audit: false });
    assert.equal(judge(mixed, request("GET", "/public/a")).allow, true);
    assert.equal(judge([stripe], request("GET", "/public/a")).allow, false, "a tls rule admits no request");
  });

  test("rules add up, deny wins, and an http Deny rule resets TLS connections it cannot see into", () => {
    const open = ebpf("open", { ingress: [rule(undefined)] });
    const both = [stripe, open];
    assert.equal(explainPacket(compileWorld(worldOf(both)).state, worldOf(both), { src: { ip: A }, dst: { ip: B }, protocol: "TCP", port: 8080 }).ingress?.proxied, false, "an allow without tls admits everything: not steered");
    const deny = ebpf("deny", { ingress: [tlsRule({ serverNames: ["api.stripe.com"] }, "Deny")] });
    assert.deepEqual(judgeStart([open, deny], hello("API.stripe.com")), { allow: false, audit: false, policy: "EBPFNetworkPolicy x/deny", rule: "ingress[0].tls" });
    assert.deepEqual(judgeStart([open, deny], hello("x.stripe.com")), { allow: true, audit: false });
    assert.deepEqual(judgeStart([open, deny], { tls: false }), { allow: true, audit: false }, "a tls Deny rule leaves other bytes to the http front end");
    const httpDeny = ebpf("no-admin", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] });
    assert.match(judgeStart([open, httpDeny], hello("api.stripe.com")).rule ?? "", /^ingress\[0\]\.http: the requests of a TLS connection cannot be judged/);
  });

  test("an Audit-mode tls rule lets the connection through and says so", () => {
    const open = ebpf("open", { ingress: [rule(undefined)] });
    const audit = ebpf("audit", { mode: "Audit", ingress: [tlsRule({ serverNames: ["evil.example"] }, "Deny")] });
    assert.deepEqual(judgeStart([open, audit], hello("evil.example")), { allow: true, audit: true, policy: "EBPFNetworkPolicy x/audit", rule: "ingress[0].tls" });
  });
});

describe("HttpViewIndex: TLS termination", () => {
  const termination = { certificate: { secretName: "api-tls" } };
  const clientCertificate = { ca: { configMapName: "ca", key: "ca.crt" }, subjectAltNames: ["spiffe://c/ns/x/sa/a"] };
  const terminating = (tls: TlsRule, http?: HttpRule[]) => ({ ...rule(http), tls });
  /** Judges a request inside a connection the rules `ids` terminated. */
  const judgeInside = (policies: AnyPolicy[], req: HttpRequestView, ids: number[]) => {
    const { compiler, state } = compileWorld(worldOf(policies));
    const view = parseHttpView(JSON.parse(JSON.stringify(compiler.httpView())));
    const identityOf = (ip: string) => lookupIpcache(state, ip)?.value.identity ?? IDENTITY_WORLD;
    return new HttpViewIndex(view).judge(req, { clientAddress: A, clientPort: 40000, serverAddress: B, serverPort: 8080, terminatedBy: ids }, identityOf);
  };

  test("a rule with termination makes a plan: the certificate, upstream and the rules with their client certificates", () => {
    const api = ebpf("api", { ingress: [terminating({ serverNames: ["api.shop.example"], termination, clientCertificate }, publicGets)] });
    const judged = judgeStart([api], hello("api.shop.example"));
    assert.equal(judged.allow, true);
    assert.deepEqual(judged.terminate && { ...judged.terminate, rules: judged.terminate.rules.map(({ id: _id, ...rest }) => rest) }, {
      namespace: "x",
      termination,
      rules: [{ policy: "EBPFNetworkPolicy x/api", rule: "ingress[0].tls", http: true, clientCertificate }],
      httpDenies: false,
      judgesRequests: true,
    });
    assert.equal(judgeStart([api], hello(undefined)).allow, false, "serverNames set: a ClientHello without a name is refused");
    const anyName = ebpf("api", { ingress: [terminating({ termination })] });
    assert.ok(judgeStart([anyName], hello(undefined)).terminate, "no serverNames: any ClientHello, with a name or without");
    assert.deepEqual(judgeStart([api], { tls: false }).allow, false, "plain bytes: a rule with tls admits no plain request, even with http");
    assert.equal(judge([api, ebpf("web", { ingress: [rule(undefined, "Allow", "c")] })], request("GET", "/public/a")).allow, false, "and its http judges no plain request");
  });

  test("inside a terminated connection: the terminating rules' http, any request without http, and Deny rules with http win", () => {
    const api = ebpf("api", { ingress: [terminating({ termination }, publicGets), terminating({ termination, clientCertificate })] });
    const ids = judgeStart([api], hello("a.example")).terminate?.rules.map((r) => r.id) ?? [];
    assert.equal(ids.length, 2);
    assert.equal(judgeInside([api], request("GET", "/admin"), [ids[0] ?? 0]).allow, false, "the rule with http only");
    assert.equal(judgeInside([api], request("GET", "/public/x"), [ids[0] ?? 0]).allow, true);
    assert.deepEqual(judgeInside([api], request("GET", "/admin"), ids), { allow: true, audit: false, policy: "EBPFNetworkPolicy x/api", rule: "ingress[1].tls" }, "the client certificate's rule admits every request");
    const noAdmin = ebpf("no-admin", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] });
    const withDeny = judgeStart([api, noAdmin], hello("a.example"));
    assert.equal(withDeny.terminate?.httpDenies, true);
    assert.equal(judgeInside([api, noAdmin], request("GET", "/admin"), withDeny.terminate?.rules.map((r) => r.id) ?? []).allow, false, "deny wins inside");
    assert.equal(judgeInside([api], request("GET", "/public/x"), [999]).allow, false, "rules that no longer cover the connection admit nothing");
  });

  test("inside a terminated connection, a request for a host the terminating rules' serverNames do not name is misdirected (421), before http Deny and Allow", () => {
    const names = ["api.shop.example", "*.internal.example"];
    const api = ebpf("api", { ingress: [terminating({ serverNames: names, termination }, publicGets)] });
    const noAdmin = ebpf("no-admin", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] });
    const ids = judgeStart([api, noAdmin], hello("api.shop.example")).terminate?.rules.map((r) => r.id) ?? [];
    /** The verdict for a request as the front ends read it: "400" when they refuse it before any rule. */
    const inside = (fields: [string, string][], path = "/public/a", authority?: string, policies = [api, noAdmin], admitted = ids) => {
      const read = httpRequestView({ method: "GET", target: path, fields, authority });
      if (!read.ok) return "400";
      const judged = judgeInside(policies, read.view, admitted);
      return judged.allow ? "allowed" : judged.misdirected ? "421" : "403";
    };
    assert.equal(inside([["Host", "api.shop.example"]]), "allowed");
    assert.equal(inside([["Host", "API.Shop.EXAMPLE:8443"]]), "allowed", "case and port do not matter");
    assert.equal(inside([["Host", "db.internal.example"]]), "allowed", "one label under the wildcard");
    assert.equal(inside([["Host", "admin.shop.example"]]), "421", "another server of the same pod");
    assert.equal(inside([["Host", "internal.example"]]), "421", "the wildcard's own name: one label short");
    assert.equal(inside([["Host", "a.b.internal.example"]]), "421", "two labels under the wildcard");
    assert.equal(inside([["Host", "10.0.0.2"]]), "421", "an IPv4 literal is no server name");
    assert.equal(inside([["Host", "[::1]:8443"]]), "421", "an IPv6 literal is no server name");
    assert.equal(inside([["Host", "api.shop.example."]]), "400", "a trailing dot is refused before any rule");
    assert.equal(inside([]), "400", "no Host (HTTP/1.0): refused before any rule");
    assert.equal(inside([["Host", "api.shop.example"]], "/public/a", "api.shop.example:443"), "400", ":authority and Host naming other ports");
    assert.equal(inside([["Host", "admin.shop.example"]], "/public/a", "admin.shop.example"), "421", ":authority and Host agreeing on another host");
    assert.equal(inside([], "/public/a", "admin.shop.example"), "421", ":authority alone (HTTP/2)");
    assert.equal(inside([["Host", "api.shop.example"]], "/admin"), "403", "the right host: the http rules judge");
    assert.equal(inside([["Host", "admin.shop.example"]], "/admin"), "421", "421 before the Deny rule");
    assert.equal(inside([["Host", "admin.shop.example"]], "/other"), "421", "421 before the Allow rules");
    const judged = judgeInside([api], { ...request("GET", "/public/a"), host: "admin.shop.example" }, ids);
    assert.deepEqual([judged.allow, judged.misdirected, judged.policy, judged.rule], [false, true, "EBPFNetworkPolicy x/api", "ingress[0].tls"], "the rule that terminated the connection is named");
    assert.match(judged.reason ?? "", /^misdirected: /);
    // A terminating rule without serverNames admits any host, as it admits any ClientHello; only the rules that admitted the connection count.
    const two = ebpf("two", { ingress: [terminating({ serverNames: names, termination }, publicGets), terminating({ termination, clientCertificate }, publicGets)] });
    const both = judgeStart([two], hello("api.shop.example")).terminate?.rules.map((r) => r.id) ?? [];
    assert.equal(both.length, 2);
    assert.equal(inside([["Host", "admin.shop.example"]], "/public/a", undefined, [two], both), "allowed", "a rule without serverNames admitted it too");
    assert.equal(inside([["Host", "admin.shop.example"]], "/public/a", undefined, [two], [both[0] ?? 0]), "421", "only the rule with serverNames admitted it");
  });

  test("rules that disagree refuse the connection; an http Deny still resets connections passed on unchanged", () => {
    const two = ebpf("two", { ingress: [terminating({ termination }), terminating({ termination: { certificate: { secretName: "other-tls" } } })] });
    assert.match(judgeStart([two], hello("a.example")).rule ?? "", /rules terminating the connection name different certificates, upstreams or ALPN protocols/);
    const upstreams = ebpf("two", { ingress: [terminating({ termination }), terminating({ termination: { ...termination, upstream: "TLS", upstreamCA: { configMapName: "ca", key: "ca.crt" } } })] });
    assert.equal(judgeStart([upstreams], hello("a.example")).allow, false);
    const mixed = [ebpf("t", { ingress: [terminating({ termination })] }), ebpf("sni", { ingress: [tlsRule({ serverNames: ["a.example"] })] })];
    assert.match(judgeStart(mixed, hello("a.example")).rule ?? "", /rules passing the connection on unchanged and rules terminating it both admit it/);
    assert.ok(judgeStart(mixed, hello("b.example")).terminate, "only the terminating rule names b.example");
    const sniOnly = [ebpf("sni", { ingress: [tlsRule({ serverNames: ["a.example"] })] }), ebpf("no-admin", { ingress: [rule([{ path: { prefix: "/admin" } }], "Deny")] })];
    assert.match(judgeStart(sniOnly, hello("a.example")).rule ?? "", /cannot be judged without terminating TLS/);
  });

  test("an Audit-mode policy terminates nothing: for the audit verdict its rule admits by server name", () => {
    const audit = ebpf("audit", { mode: "Audit", ingress: [terminating({ serverNames: ["b.example"], termination, clientCertificate }, publicGets)] });
    const other = judgeStart([audit], hello("a.example"));
    assert.deepEqual([other.allow, other.audit, other.terminate], [true, true, undefined], "a name the rule does not list: passed on, reported");
    assert.deepEqual(judgeStart([audit], hello("b.example")), { allow: true, audit: false }, "its name: passed on unchanged, not terminated");
  });
});

describe("parseHttpView", () => {
  test("refuses malformed views with the field at fault", () => {
    assert.throws(() => parseHttpView({ version: 2 }), /version 1/);
    assert.throws(() => parseHttpView({ version: 1, endpoints: [{ pod: "x/a", addresses: ["nope"], state: {} }], policy: [], rules: [] }), /endpoints\[0\]\.addresses\[0\]/);
    assert.throws(() => parseHttpView({ version: 1, endpoints: [], policy: [], rules: [[1, { namespace: "x", name: "p", http: [{ path: { regex: "(" } }] }]] }), /rules\[0\]\.http\[0\]\.path\.regex/);
    assert.throws(() => parseHttpView({ version: 1, endpoints: [], policy: [], rules: [[1, { namespace: "x", name: "p", tls: { serverNames: ["*.com"] } }]] }), /rules\[0\]\.tls\.serverNames\[0\]/);
  });
});

describe("validation of http", () => {
  const problems = (rules: unknown) => validatePolicy({ ...ebpf("p", {}), spec: { selector: {}, ingress: rules } }).map((issue) => `${issue.field}: ${issue.message}`);

  test("http needs TCP ports and well-formed entries", () => {
    assert.deepEqual(problems([{ http: publicGets }]), ["spec.ingress[0].ports: must list the TCP ports whose requests the rule's http entries judge"]);
    assert.match(problems([{ ports: [{ protocol: "UDP", port: 53 }], http: publicGets }]).join(), /ports\[0\]\.protocol: is "UDP", but the rule sets http/);
    assert.match(problems([{ ports: [{ port: 80 }], http: [{ path: { prefix: "/a/../b" } }] }]).join(), /http\[0\]\.path\.prefix: .*normalized/);
    assert.deepEqual(problems([{ ports: [{ port: 80 }], http: publicGets, action: "Deny" }]), []);
  });

  test("tls needs TCP ports, valid server names, and no http beside it without termination", () => {
    const names = { serverNames: ["api.stripe.com"] };
    assert.deepEqual(problems([{ ports: [{ port: 443 }], tls: names, action: "Deny" }]), []);
    assert.deepEqual(problems([{ tls: names }]), ["spec.ingress[0].ports: must list the TCP ports whose TLS connections the rule's tls judges"]);
    assert.match(problems([{ ports: [{ protocol: "UDP", port: 443 }], tls: names }]).join(), /ports\[0\]\.protocol: is "UDP", but the rule sets tls/);
    assert.match(problems([{ ports: [{ port: 443 }], tls: names, http: publicGets }]).join(), /^spec\.ingress\[0\]\.tls: is set together with http but without termination/);
    assert.deepEqual(problems([{ ports: [{ port: 443 }], tls: { serverNames: ["10.0.0.1", "*.com", "a.*.b", "ok.example."] } }]), [
      "spec.ingress[0].tls.serverNames[0]: \"10.0.0.1\" is an IP address, which SNI may not carry",
      "spec.ingress[0].tls.serverNames[1]: \"*.com\" would match every name under a top-level domain",
      "spec.ingress[0].tls.serverNames[2]: \"a.*.b\" is \"a.*.b\" is not a DNS host name (letters, digits and '-' in labels of 1 to 63)",
      "spec.ingress[0].tls.serverNames[3]: \"ok.example.\" is a host name with a trailing dot",
    ]);
    assert.deepEqual(problems([{ ports: [{ port: 443 }], tls: {} }]), ["spec.ingress[0].tls.serverNames: is required unless tls.termination is set: without termination a rule judges TLS connections by their server name only"]);
    assert.match(problems([{ ports: [{ port: 443 }], tls: { ...names, terminate: true } }]).join(), /tls\.terminate: is not a field of tls/);
    assert.match(problems([{ ports: [{ port: 443 }], tls: { serverNames: [] } }]).join(), /at least one server name/);
  });

  test("termination and client certificates: ingress Allow rules, well-formed references and names", () => {
    const termination = { certificate: { secretName: "api-tls" } };
    const clientCertificate = { ca: { configMapName: "shop-ca", key: "ca.crt" }, subjectAltNames: ["spiffe://cluster.local/ns/shop/sa/frontend", "*.frontend.shop.example"] };
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination, clientCertificate }, http: publicGets }]), [], "serverNames optional, http allowed beside termination");
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination: { ...termination, upstream: "TLS", upstreamCA: { configMapName: "shop-ca", key: "ca.crt" } } } }]), []);
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination: { ...termination, upstream: "TLS" } } }]), ["spec.ingress[0].tls.termination.upstreamCA: is required"]);
    assert.match(problems([{ ports: [{ port: 8443 }], tls: { termination: { ...termination, upstreamCA: { configMapName: "c", key: "k" } } } }]).join(), /upstreamCA: is set, but upstream is not TLS/);
    assert.match(problems([{ ports: [{ port: 8443 }], tls: { serverNames: ["a.example"], clientCertificate } }]).join(), /^spec\.ingress\[0\]\.tls\.clientCertificate: requires tls\.termination/);
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination: { ...termination, alpn: ["h2", "http/1.1"] } } }]), []);
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination: { ...termination, alpn: ["h2", "h3", "h2"] } } }]), [
      'spec.ingress[0].tls.termination.alpn[1]: "h3" is not one of "h2", "http/1.1"',
      'spec.ingress[0].tls.termination.alpn[2]: "h2" is listed twice',
    ]);
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination: { ...termination, alpn: [] } } }]), ["spec.ingress[0].tls.termination.alpn: must name at least one protocol (or be left out)"]);
    assert.match(problems([{ action: "Deny", ports: [{ port: 8443 }], tls: { termination } }]).join(), /tls\.termination: applies to Allow rules only/);
    const egress = validatePolicy({ ...ebpf("p", {}), spec: { selector: {}, egress: [{ ports: [{ port: 443 }], tls: { termination } }] } }).map((issue) => `${issue.field}: ${issue.message}`);
    assert.deepEqual(egress, ["spec.egress[0].tls.termination: is not supported on egress rules: the proxy terminates TLS for the servers a policy selects (ingress rules)"]);
    assert.deepEqual(problems([{ ports: [{ port: 8443 }], tls: { termination: { certificate: { secretName: "API_tls" }, upstream: "Maybe" } } }]), [
      "spec.ingress[0].tls.termination.certificate.secretName: \"API_tls\" is not a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit",
      "spec.ingress[0].tls.termination.upstream: \"Maybe\" is not one of \"Plain\", \"TLS\"",
    ]);
    const sans = (subjectAltNames: unknown) => problems([{ ports: [{ port: 8443 }], tls: { termination, clientCertificate: { ...clientCertificate, subjectAltNames } } }]);
    assert.deepEqual(sans(["spiffe://c/ns/a", "*.com", "a b", "spiffe://x y", "10.0.0.1"]), [
      "spec.ingress[0].tls.clientCertificate.subjectAltNames[1]: \"*.com\" would match every name under a top-level domain (a DNS name; a URI has a scheme)",
      "spec.ingress[0].tls.clientCertificate.subjectAltNames[2]: \"a b\" is \"a b\" is not a DNS host name (letters, digits and '-' in labels of 1 to 63) (a DNS name; a URI has a scheme)",
      "spec.ingress[0].tls.clientCertificate.subjectAltNames[3]: \"spiffe://x y\" is not a URI: a scheme, \":\", and characters RFC 3986 allows in a URI",
      "spec.ingress[0].tls.clientCertificate.subjectAltNames[4]: \"10.0.0.1\" is an IP address: only DNS and URI names are matched",
    ]);
    assert.match(sans([]).join(), /must hold at least one name/);
    assert.match(sans(Array.from({ length: 65 }, (_, i) => `s${i}.example`)).join(), /holds 65 names, more than the limit of 64/);
    assert.match(problems([{ ports: [{ port: 8443 }], tls: { termination, clientCertificate: { ...clientCertificate, ca: { configMapName: "shop-ca", key: "a/b" } } } }]).join(), /clientCertificate\.ca\.key: "a\/b" is not a ConfigMap key/);
  });
});

describe("HttpViewIndex against the reference evaluator", () => {
  test("every request of every steered flow gets the reference's verdict (forwarded, refused, audited)", () => {
    let judged = 0;
    const scenario = fc.tuple(httpPoliciesArb, fc.array(fc.tuple(httpFlowArb, httpRequestArb), { minLength: 30, maxLength: 30 }));
    fc.assert(
      fc.property(scenario, ([policies, requests]) => {
        const { world, index, identityOf, steered } = compileHttpWorld(policies);
        for (const [flow, raw] of requests) {
          const packet = steered(flow);
          if (!packet) continue;
          const expected = evaluateRequest(world, packet, raw);
          const accepted = httpRequestView(raw);
          const what = `${JSON.stringify(raw)} on ${JSON.stringify(flow)}`;
          if (!accepted.ok) {
            assert.equal(expected.outcome, "malformed", `malformed ${what}`);
            continue;
          }
          const verdict = index.judge(accepted.view, { clientAddress: flow.client, clientPort: 40000, serverAddress: flow.server, serverPort: flow.port }, identityOf);
          assert.equal(verdict.allow ? "allowed" : "refused", expected.outcome, `verdict of ${what}`);
          assert.equal(verdict.audit, expected.audited, `audit of ${what}`);
          judged++;
        }
      }),
      // About 2.2 of the 30 requests per run reach a steered flow and parse: 1300 runs keep the count well above 2000.
      { numRuns: 1300 },
    );
    assert.ok(judged >= 2000, `only ${judged} requests were judged`);
    console.log(`view differential: ${judged} requests judged as the reference judges them`);
  });
});

describe("HttpViewIndex.judgeConnection against the reference evaluator", () => {
  test("every connection start of every steered flow gets the reference's verdict (passed on, reset, audited)", () => {
    let judged = 0;
    const outcomes = new Map<string, number>();
    const scenario = fc.tuple(httpPoliciesArb, fc.array(fc.tuple(httpFlowArb, connectionStartArb), { minLength: 20, maxLength: 20 }));
    fc.assert(
      fc.property(scenario, ([policies, starts]) => {
        const { world, index, identityOf, steered } = compileHttpWorld(policies);
        for (const [flow, serverName] of starts) {
          const packet = steered(flow);
          if (!packet) continue;
          const expected = evaluateConnection(world, packet, serverName);
          const start: ConnectionStart = serverName === "not-tls" ? { tls: false } : { tls: true, serverName };
          const verdict = index.judgeConnection(start, { clientAddress: flow.client, clientPort: 40000, serverAddress: flow.server, serverPort: flow.port }, identityOf);
          const what = `${String(serverName)} on ${JSON.stringify(flow)}`;
          const outcome = verdict.allow ? "allowed" : "refused";
          assert.equal(outcome, expected.outcome, `verdict of ${what}`);
          assert.equal(verdict.audit, expected.audited, `audit of ${what}`);
          const key = `${serverName === "not-tls" ? "not-tls" : "tls"} ${outcome}${verdict.audit ? " audited" : ""}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          judged++;
        }
      }),
      { numRuns: 800 },
    );
    assert.ok(judged >= 1000, `only ${judged} connections were judged`);
    console.log(`view differential: ${judged} connection starts judged as the reference judges them (${[...outcomes].map(([k, n]) => `${k}: ${n}`).join(", ")})`);
  });
  test("with rules terminating TLS: each connection, client certificate and request inside gets the reference's verdict", () => {
    const outcomes = new Map<string, number>();
    let judged = 0;
    const scenario = fc.tuple(terminationPoliciesArb, fc.array(fc.tuple(httpFlowArb, connectionStartArb, fc.constantFrom(...CLIENT_CERTIFICATES), httpRequestArb), { minLength: 30, maxLength: 30 }));
    fc.assert(
      fc.property(scenario, ([policies, starts]) => {
        const { world, index, identityOf, steered } = compileHttpWorld(policies);
        for (const [flow, serverName, { name, certificate }, raw] of starts) {
          const packet = steered(flow);
          if (!packet) continue;
          const expected = evaluateConnection(world, packet, serverName, certificate);
          const connection = { clientAddress: flow.client, clientPort: 40000, serverAddress: flow.server, serverPort: flow.port };
          const verdict = index.judgeConnection(serverName === "not-tls" ? { tls: false } : { tls: true, serverName }, connection, identityOf);
          const what = `${String(serverName)} with ${name} on ${JSON.stringify(flow)} under ${JSON.stringify(policies)}`;
          // The client certificate as the proxy reads it: its names, validity, and the CA bundles it chains to.
          const presented = certificate && { names: certificate, valid: certificate.valid, chainsTo: (ca: { configMapName: string; key: string }) => certificate.trustedBy.includes(`x/${ca.configMapName}/${ca.key}`) };
          const admitted = verdict.terminate && admittingRules(verdict.terminate.rules, presented);
          const outcome = verdict.allow && admitted?.failure === undefined ? "allowed" : "refused";
          assert.equal(outcome, expected.outcome, `verdict of ${what}`);
          if (outcome === "refused") {
            outcomes.set("refused", (outcomes.get("refused") ?? 0) + 1);
            continue;
          }
          assert.equal(verdict.audit, expected.audited, `audit of ${what}`);
          assert.equal(verdict.terminate !== undefined, expected.terminated !== undefined, `terminated: ${what}`);
          judged++;
          if (!verdict.terminate || !expected.terminated || !admitted) {
            outcomes.set("passed on", (outcomes.get("passed on") ?? 0) + 1);
            continue;
          }
          // Rules are named differently by the two: compare the policies and rule indexes.
          const viewNames = verdict.terminate.rules.filter((r) => admitted.ids.includes(r.id)).map((r) => `${r.policy} rule ${/\[(\d+)\]/.exec(r.rule)?.[1]}`);
          assert.deepEqual(viewNames, expected.terminated.rules, `admitting rules of ${what}`);
          assert.equal(`x/${verdict.terminate.termination.certificate.secretName}`, expected.terminated.certificate);
          const request = httpRequestView(raw);
          const inside = evaluateRequest(world, packet, raw, expected.terminated);
          // Where no rule admitting the connection has http and no Deny rule has it, the proxy passes the decrypted stream on unjudged.
          if (!readsRequests(verdict.terminate, admitted.ids)) {
            assert.equal(inside.outcome, "allowed", `unjudged ${JSON.stringify(raw)} inside ${what}`);
            outcomes.set("terminated, passed on", (outcomes.get("terminated, passed on") ?? 0) + 1);
            continue;
          }
          if (!request.ok) {
            assert.equal(inside.outcome, "malformed", `malformed ${JSON.stringify(raw)} inside ${what}`);
            continue;
          }
          const answer = index.judge(request.view, { ...connection, terminatedBy: admitted.ids }, identityOf);
          assert.equal(answer.allow ? "allowed" : answer.misdirected ? "misdirected" : "refused", inside.outcome, `${JSON.stringify(raw)} inside ${what}`);
          const key = `terminated, request ${inside.outcome}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }),
      { numRuns: 1500 },
    );
    assert.ok(judged >= 1000, `only ${judged} connections were admitted`);
    for (const key of ["terminated, request allowed", "terminated, request refused", "refused", "passed on"]) assert.ok((outcomes.get(key) ?? 0) > 5, `few ${key}: ${JSON.stringify([...outcomes])}`);
    console.log(`view differential with termination: ${[...outcomes].map(([k, n]) => `${k}: ${n}`).join(", ")}`);
  });
});
