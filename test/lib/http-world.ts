/**
 * Random HTTP worlds for differential tests: pods x/a, x/b, x/c (10.0.0.1-3),
 * EBPFNetworkPolicies with HTTP rules drawn from HTTP_LISTS and TLS rules from
 * TLS_RULES, flows between the pods and an outside client, requests as a
 * parser gives them (some of them hostile: dot segments, encodings,
 * absolute-form targets to other hosts), and connection starts (server names,
 * none, bytes that are not TLS).
 *
 * @module
 */
import fc from "fast-check";
import type { AnyPolicy, EBPFNetworkPolicy, HttpRule, TlsRule } from "../../src/policy/api-types.ts";
import type { ReferenceClientCertificate } from "../../src/policy/reference-evaluator.ts";
import { compileWorld } from "../../src/policy/compiler.ts";
import { IDENTITY_WORLD } from "../../src/policy/desired-state.ts";
import type { RawHttpRequest } from "../../src/policy/http-request.ts";
import { HttpViewIndex, parseHttpView } from "../../src/policy/http-view.ts";
import { explainPacket, lookupIpcache } from "../../src/policy/lookup.ts";
import type { Packet, PodInfo, World } from "../../src/policy/world.ts";
import { HTTP_LISTS, TLS_RULES } from "./world-arbitrary.ts";

export const A = "10.0.0.1";
export const B = "10.0.0.2";
export const C = "10.0.0.3";

function pod(name: string, ip: string): PodInfo {
  return { namespace: "x", name, labels: { pod: name }, ips: [ip], namedPorts: [] };
}

/** An EBPFNetworkPolicy `x/name` selecting pod b unless `spec` says otherwise. */
export function ebpf(name: string, spec: Partial<EBPFNetworkPolicy["spec"]>): EBPFNetworkPolicy {
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name, namespace: "x" }, spec: { selector: { matchLabels: { pod: "b" } }, ...spec } };
}

/** Pods a, b, c of namespace x and the policies. */
export function worldOf(policies: AnyPolicy[]): World {
  const pods = [pod("a", A), pod("b", B), pod("c", C)];
  return {
    namespaces: new Map([["x", { name: "x", labels: { "kubernetes.io/metadata.name": "x" } }]]),
    pods: new Map(pods.map((p) => [`x/${p.name}`, p])),
    policies,
    hostIPs: [],
  };
}

/** A flow's ends and port. */
export interface HttpFlow {
  client: string;
  server: string;
  port: number;
}

const ends = ["a", "b", "c"];

const ruleArb = (peerKey: "from" | "to") =>
  fc.record({
    action: fc.constantFrom("Allow" as const, "Allow" as const, "Deny" as const),
    peer: fc.constantFrom<string | undefined>(undefined, ...ends),
    port: fc.constantFrom(80, 8080),
    judged: fc.option(fc.oneof(fc.constantFrom(...HTTP_LISTS).map((http) => ({ http })), fc.constantFrom(...TLS_RULES).map((tls) => ({ tls }))), { freq: 4 }),
  }).map(({ action, peer, port, judged }) => ({
    action,
    ...(peer ? { [peerKey]: [{ podSelector: { matchLabels: { pod: peer } } }] } : {}),
    ports: [{ protocol: "TCP" as const, port }],
    ...judged,
  }));

/** The client CAs terminating rules name (ConfigMap `x/NAME`, key ca.crt), and the client certificates the differential suites present. */
export const CLIENT_CAS = ["ca-1", "ca-2"] as const;

/** Ingress rules with `tls.termination`: certificates a and b, client certificates of either CA, with and without `http`, `serverNames` and `alpn`. */
const TERMINATING_RULES: { tls: TlsRule; http?: HttpRule[] }[] = [
  { tls: { termination: { certificate: { secretName: "cert-a" } } } },
  {
    tls: { serverNames: ["api.shop.example", "*.internal.example"], termination: { certificate: { secretName: "cert-a" } }, clientCertificate: { ca: { configMapName: "ca-1", key: "ca.crt" }, subjectAltNames: ["spiffe://c/ns/x/sa/a", "*.frontend.example"] } },
    http: HTTP_LISTS[0],
  },
  { tls: { termination: { certificate: { secretName: "cert-a" } }, clientCertificate: { ca: { configMapName: "ca-2", key: "ca.crt" }, subjectAltNames: ["spiffe://c/ns/x/sa/c"] } } },
  { tls: { serverNames: ["api.shop.example"], termination: { certificate: { secretName: "cert-b" } } }, http: HTTP_LISTS[2] },
  // Any client, for a wildcard's names only: the requests inside are held to them.
  { tls: { serverNames: ["*.internal.example"], termination: { certificate: { secretName: "cert-b" } } }, http: HTTP_LISTS[1] },
  // Offers h2 as well: rules terminating one connection disagree with the others on cert-a.
  { tls: { termination: { certificate: { secretName: "cert-a" }, alpn: ["http/1.1", "h2"] } }, http: HTTP_LISTS[1] },
];

/** An ingress Allow rule to the selected pod on 80 or 8080 that terminates TLS. */
const terminatingRuleArb = fc.record({
  peer: fc.constantFrom<string | undefined>(undefined, ...ends),
  port: fc.constantFrom(80, 8080),
  judged: fc.constantFrom(...TERMINATING_RULES),
}).map(({ peer, port, judged }) => ({ ...(peer ? { from: [{ podSelector: { matchLabels: { pod: peer } } }] } : {}), ports: [{ protocol: "TCP" as const, port }], ...judged }));

const policyArb = (index: number, terminating = false) =>
  fc.record({
    selects: fc.constantFrom<string | undefined>(undefined, ...ends),
    mode: fc.constantFrom("Enforce" as const, "Enforce" as const, "Audit" as const),
    ingress: terminating ? fc.array(fc.oneof(ruleArb("from"), terminatingRuleArb), { maxLength: 3 }) : fc.array(ruleArb("from"), { maxLength: 3 }),
    egress: fc.array(ruleArb("to"), { maxLength: 2 }),
    types: fc.constantFrom<("Ingress" | "Egress")[]>(["Ingress"], ["Ingress"], ["Ingress"], ["Egress"], ["Ingress", "Egress"]),
  }).map(({ selects, mode, ingress, egress, types }) => ebpf(`p${index}`, { selector: selects ? { matchLabels: { pod: selects } } : {}, mode, policyTypes: types, ingress, egress }));

/** Requests as the parser gives them. */
export const httpRequestArb = fc.record({
  method: fc.constantFrom("GET", "POST", "DELETE"),
  target: fc.constantFrom(
    "/public/a",
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2fadmin",
    "/public/..;/admin",
    "/admin/x",
    "/orders",
    "/aaa/b",
    "/%70ublic/x",
    "/a//b",
    "//admin/x",
    "/public//a",
    "//public/a",
    "/;x/admin",
    "/orders;v=2",
    "/x?q=1",
    "http://other.example/public/a",
  ),
  // Some name a terminating rule's server names in another case, with a port, or one label short of a wildcard.
  host: fc.constantFrom("b.x", "api.shop.example", "evilshop.example", "API.Shop.Example:8443", "db.internal.example", "internal.example"),
  tenant: fc.constantFrom(undefined, "blue", "red"),
  debug: fc.boolean(),
}).map(({ method, target, host, tenant, debug }): RawHttpRequest => ({
  method,
  target,
  fields: [["Host", host], ...(tenant ? [["X-Tenant", tenant] as const] : []), ...(debug ? [["X-Debug", ""] as const] : [])],
}));

/** What a connection starts with: the server name of a whole ClientHello (undefined: none; some differ only in case, some only one label off a wildcard), or bytes that are not TLS. */
export const connectionStartArb = fc.constantFrom<string | undefined | "not-tls">(
  undefined,
  "not-tls",
  "api.stripe.com",
  "API.Stripe.COM",
  "stripe.com",
  "github.com",
  "api.github.com",
  "a.b.github.com",
  "api.shop.example",
  "db.internal.example",
  "internal.example",
  "evilgithub.com",
);

/** Flows between the pods, and from outside. */
export const httpFlowArb: fc.Arbitrary<HttpFlow> = fc.record({ client: fc.constantFrom(A, C, "192.0.2.7"), server: fc.constantFrom(B, C), port: fc.constantFrom(80, 8080) }).filter(({ client, server }) => client !== server);

/** One to four random EBPFNetworkPolicies with HTTP and TLS rules. */
export const httpPoliciesArb: fc.Arbitrary<EBPFNetworkPolicy[]> = fc.array(fc.nat(), { minLength: 1, maxLength: 4 }).chain((ids) => fc.tuple(...ids.map((_, i) => policyArb(i))));

/** One to four random EBPFNetworkPolicies with HTTP and TLS rules, ingress rules terminating TLS among them. */
export const terminationPoliciesArb: fc.Arbitrary<EBPFNetworkPolicy[]> = fc.array(fc.nat(), { minLength: 1, maxLength: 4 }).chain((ids) => fc.tuple(...ids.map((_, i) => policyArb(i, true))));

/** A client certificate as the reference sees it, named for the suites that make it for real. */
export interface ClientCertificateCase {
  name: string;
  /** Undefined: the client presents none. */
  certificate: ReferenceClientCertificate | undefined;
}

/** The client certificates differential suites present: none, good ones of either CA, wrong names, expired, another CA's. */
export const CLIENT_CERTIFICATES: ClientCertificateCase[] = [
  { name: "none", certificate: undefined },
  { name: "ca-1 spiffe a", certificate: { trustedBy: ["x/ca-1/ca.crt"], valid: true, dns: [], uri: ["spiffe://c/ns/x/sa/a"] } },
  { name: "ca-1 dns web.frontend.example", certificate: { trustedBy: ["x/ca-1/ca.crt"], valid: true, dns: ["web.frontend.example"], uri: [] } },
  { name: "ca-1 expired spiffe a", certificate: { trustedBy: ["x/ca-1/ca.crt"], valid: false, dns: [], uri: ["spiffe://c/ns/x/sa/a"] } },
  { name: "ca-2 spiffe c", certificate: { trustedBy: ["x/ca-2/ca.crt"], valid: true, dns: [], uri: ["spiffe://c/ns/x/sa/c"] } },
  { name: "ca-2 spiffe a", certificate: { trustedBy: ["x/ca-2/ca.crt"], valid: true, dns: [], uri: ["spiffe://c/ns/x/sa/a"] } },
  { name: "other ca spiffe a", certificate: { trustedBy: [], valid: true, dns: [], uri: ["spiffe://c/ns/x/sa/a"] } },
  { name: "ca-1 dns a.b.frontend.example", certificate: { trustedBy: ["x/ca-1/ca.crt"], valid: true, dns: ["a.b.frontend.example"], uri: [] } },
];

/** A compiled HTTP world: what the proxy judges by (the view read back from JSON, as the agent publishes it) and the steered flows. */
export interface CompiledHttpWorld {
  world: World;
  index: HttpViewIndex;
  identityOf: (ip: string) => number;
  /** The flow's first packet, when the datapath steers the flow to the proxy; undefined otherwise (the proxy never sees it). */
  steered(flow: HttpFlow): Packet | undefined;
}

/** Compiles `policies` in the pods' world and publishes the view. */
export function compileHttpWorld(policies: AnyPolicy[]): CompiledHttpWorld {
  const world = worldOf(policies);
  const { compiler, state } = compileWorld(world);
  return {
    world,
    index: new HttpViewIndex(parseHttpView(JSON.parse(JSON.stringify(compiler.httpView())))),
    identityOf: (ip) => lookupIpcache(state, ip)?.value.identity ?? IDENTITY_WORLD,
    steered(flow) {
      const packet: Packet = { src: { ip: flow.client }, dst: { ip: flow.server }, protocol: "TCP", port: flow.port };
      const explained = explainPacket(state, world, packet);
      return explained.allowed && (explained.egress?.proxied || explained.ingress?.proxied) ? packet : undefined;
    },
  };
}
