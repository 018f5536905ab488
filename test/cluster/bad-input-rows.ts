/**
 * The rows of the bad-input suite (bad-input.test.ts): malformed and hostile
 * objects of every kind Palisade reads, each with the outcome the API server
 * and Palisade must give it. Data only; the suite applies the rows and checks
 * their outcomes, liveness and traffic.
 *
 * @module
 */

/** What must become of a row's object. */
export type Outcome =
  /** Refused at admission: the API server's answer names `field` and matches `message`. */
  | { refused: { field: string; message: RegExp } }
  /** An EBPFNetworkPolicy stored before the CRD refused it: Accepted=False (reason Invalid) naming `field`, and a Warning Event. */
  | { invalid: { field: string; message: RegExp } }
  /** Taken by the API server, not by Palisade: a Warning Event with `reason` about the object names `field`. */
  | { warned: { field: string; message: RegExp; reason: string } }
  /** An EBPFNetworkPolicy taken and enforced: Accepted and Programmed at its generation. */
  | { programmed: true }
  /** A NetworkPolicy taken and enforced: every node's report lists it at its generation. */
  | { listed: true }
  /** A Pod taken and numbered: a PalisadeIdentity of its namespace holds exactly these labels. */
  | { numbered: Record<string, string> }
  /** A forged PalisadeIdentity: the operator deletes it once the grace period passed. */
  | { collected: true };

/** One bad input. */
export interface Row {
  /** What is wrong with it, for the test output. */
  name: string;
  /** The object, namespace included (rows land in the suite's own namespaces). */
  object: Manifest;
  outcome: Outcome;
  /** Stored under the CRD schema of before its label rules (a cluster upgraded with the object in it). */
  olderSchema?: true;
  /** A status subresource written after the object (a Pod's addresses, as a kubelet would write them). */
  status?: Record<string, unknown>;
}

/** An object to apply. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
}

/** The namespaces and names rows refer to. */
export interface RowContext {
  /** Where bad policies and pods land: no pod of the traffic matrix is there. */
  bad: string;
  /** The matrix namespace of pods a and b; rows here select real pods. */
  x: string;
  /** The IPv4 address of pod x/a, for a pod that claims it. */
  addressOfA: string;
  /** An identity key in use (that of pod x/a), for forged duplicates. */
  keyOfA: string;
}

const long = (n: number, c = "a"): string => c.repeat(n);
/** A DNS name part of 63 characters, the longest label key name. */
const name63 = `a${long(61, "b")}c`;

function ebpf(ns: string, name: string, spec: unknown): Manifest {
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name, namespace: ns }, spec };
}

function np(ns: string, name: string, spec: unknown): Manifest {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec };
}

function identity(name: string, spec: unknown): Manifest {
  return { apiVersion: "palisade.dev/v1alpha1", kind: "PalisadeIdentity", metadata: { name }, spec };
}

/** A pod nowhere schedules (no node matches it), so its status is only what the row writes. */
function pod(ns: string, name: string, labels: Record<string, string>, ports: unknown[] = []): Manifest {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels },
    spec: { nodeSelector: { "palisade.dev/bad-input": "nowhere" }, containers: [{ name: "main", image: "none", ports }] },
  };
}

const refused = (field: string, message: RegExp): Outcome => ({ refused: { field, message } });

/** An ingress rule from one peer. */
const from = (peer: unknown): unknown => ({ selector: {}, ingress: [{ from: [peer] }] });
/** An ingress rule on one port. */
const port = (entry: unknown): unknown => ({ selector: {}, ingress: [{ ports: [entry] }] });
const many = <T>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i));
const labelsOf = (n: number): Record<string, string> => Object.fromEntries(many(n, (i) => [`k${i}`, "v"]));

/**
 * Objects the API server must refuse, each naming the field at fault. Label
 * mistakes come as EBPFNetworkPolicy and as NetworkPolicy: both name the
 * same field (the selector's path) with the value quoted.
 */
export function refusedRows({ bad }: RowContext): Row[] {
  const e = (name: string, spec: unknown, outcome: Outcome): Row => ({ name, object: ebpf(bad, `r-${name.replace(/[^a-z0-9]+/g, "-").slice(0, 40).replace(/-$/, "")}`, spec), outcome });
  const n = (name: string, spec: unknown, outcome: Outcome): Row => ({ name: `NetworkPolicy: ${name}`, object: np(bad, `r-${name.replace(/[^a-z0-9]+/g, "-").slice(0, 40).replace(/-$/, "")}`, spec), outcome });
  const valueRe = /should match '\^\(\(\[A-Za-z0-9\]/;
  return [
    // Labels, in every selector.
    e("label value with a space", { selector: { matchLabels: { app: "a b" } } }, refused("spec.selector.matchLabels.app", /Invalid value: "a b"/)),
    e("label value with a control character", { selector: { matchLabels: { app: "a\u0007b" } } }, refused("spec.selector.matchLabels.app", valueRe)),
    e("label value in unicode", { selector: { matchLabels: { app: "ünïcödé" } } }, refused("spec.selector.matchLabels.app", valueRe)),
    e("label value of 64 characters", { selector: { matchLabels: { app: long(64) } } }, refused("spec.selector.matchLabels.app", /Too long: may not be more than 63 bytes/)),
    e("label value ending in a dash", from({ podSelector: { matchLabels: { app: "web-" } } }), refused("spec.ingress[0].from[0].podSelector.matchLabels.app", valueRe)),
    e("label key with a space", from({ podSelector: { matchLabels: { "a b": "x" } } }), refused("spec.ingress[0].from[0].podSelector.matchLabels", /"a b": name part must consist of alphanumeric characters/)),
    e("label key with a bad prefix", { selector: {}, egress: [{ to: [{ namespaceSelector: { matchLabels: { "-x/y": "z" } } }] }] }, refused("spec.egress[0].to[0].namespaceSelector.matchLabels", /"-x\/y": prefix part a lowercase RFC 1123 subdomain/)),
    e("label key with an empty name", { selector: {}, egress: [{ to: [{ podSelector: { matchLabels: { "example.com/": "z" } } }] }] }, refused("spec.egress[0].to[0].podSelector.matchLabels", /"example.com\/": name part must be non-empty/)),
    e("label key name of 64 characters", from({ namespaceSelector: { matchLabels: { [`${name63}d`]: "z" } } }), refused("spec.ingress[0].from[0].namespaceSelector.matchLabels", /name part must be no more than 63 characters/)),
    e("expression key with a space", { selector: { matchExpressions: [{ key: "a b", operator: "Exists" }] } }, refused("spec.selector.matchExpressions[0].key", /Invalid value: "a b": .* should match/)),
    e("expression key prefix of 254 characters", { selector: { matchExpressions: [{ key: `${long(250)}.com/x`, operator: "Exists" }] } }, refused("spec.selector.matchExpressions[0].key", /prefix part must be no more than 253 characters/)),
    e("expression value with a slash", from({ namespaceSelector: { matchExpressions: [{ key: "team", operator: "In", values: ["a/b"] }] } }), refused("spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values[0]", valueRe)),
    e("Exists with values", { selector: { matchExpressions: [{ key: "app", operator: "Exists", values: ["x"] }] } }, refused("spec.selector.matchExpressions[0].values", /must be empty when operator is "Exists"/)),
    e("NotIn without values", { selector: { matchExpressions: [{ key: "app", operator: "NotIn" }] } }, refused("spec.selector.matchExpressions[0].values", /must not be empty when operator is "NotIn"/)),
    e("unknown selector operator", { selector: { matchExpressions: [{ key: "app", operator: "Matches", values: ["x"] }] } }, refused("spec.selector.matchExpressions[0].operator", /Unsupported value: "Matches"/)),
    e("33 labels in one matchLabels", { selector: { matchLabels: labelsOf(33) } }, refused("spec.selector.matchLabels", /Too many: 33: must have at most 32 items/)),
    // CIDRs.
    e("cidr with prefix 33", from({ ipBlock: { cidr: "10.0.0.0/33" } }), refused("spec.ingress[0].from[0].ipBlock.cidr", /"10.0.0.0\/33" is not a valid CIDR/)),
    e("cidr of an IPv4-mapped IPv6 address", from({ ipBlock: { cidr: "::ffff:1.2.3.4/128" } }), refused("spec.ingress[0].from[0].ipBlock.cidr", /"::ffff:1.2.3.4\/128" is not a valid CIDR/)),
    e("cidr with a leading zero", from({ ipBlock: { cidr: "010.0.0.0/8" } }), refused("spec.ingress[0].from[0].ipBlock.cidr", /"010.0.0.0\/8" is not a valid CIDR/)),
    e("cidr with an IPv6 zone", from({ ipBlock: { cidr: "fe80::1%eth0/64" } }), refused("spec.ingress[0].from[0].ipBlock.cidr", /is not a valid CIDR/)),
    e("cidr that is an address", from({ ipBlock: { cidr: "10.0.0.1" } }), refused("spec.ingress[0].from[0].ipBlock.cidr", /"10.0.0.1" is not a valid CIDR/)),
    e("cidr of 50 characters", from({ ipBlock: { cidr: `${long(46, "1")}/128` } }), refused("spec.ingress[0].from[0].ipBlock.cidr", /Too long: may not be more than 49 bytes/)),
    e("except outside cidr", from({ ipBlock: { cidr: "10.0.0.0/8", except: ["11.0.0.0/16"] } }), refused("spec.ingress[0].from[0].ipBlock.except", /"11.0.0.0\/16" is not strictly inside cidr "10.0.0.0\/8"/)),
    e("except equal to cidr", from({ ipBlock: { cidr: "10.0.0.1/8", except: ["10.0.0.0/8"] } }), refused("spec.ingress[0].from[0].ipBlock.except", /"10.0.0.0\/8" is not strictly inside cidr "10.0.0.1\/8"/)),
    e("except of the other family", from({ ipBlock: { cidr: "0.0.0.0/0", except: ["::/1"] } }), refused("spec.ingress[0].from[0].ipBlock.except", /"::\/1" is not strictly inside cidr "0.0.0.0\/0"/)),
    e("33 excepts", from({ ipBlock: { cidr: "10.0.0.0/8", except: many(33, (i) => `10.${i}.0.0/16`) } }), refused("spec.ingress[0].from[0].ipBlock.except", /Too many: 33: must have at most 32 items/)),
    e("ipBlock beside a podSelector", { selector: {}, egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }] }] }, refused("spec.egress[0].to[0]", /sets ipBlock together with podSelector: ipBlock must be the only peer field/)),
    e("empty peer", from({}), refused("spec.ingress[0].from[0]", /must set ipBlock, or podSelector and\/or namespaceSelector/)),
    // Ports.
    e("port 0", port({ port: 0 }), refused("spec.ingress[0].ports[0].port", /0 is not between 1 and 65535/)),
    e("port 65536", port({ port: 65536 }), refused("spec.ingress[0].ports[0].port", /65536 is not between 1 and 65535/)),
    e("negative port", port({ port: -80 }), refused("spec.ingress[0].ports[0].port", /-80 is not between 1 and 65535/)),
    e("endPort below port", port({ port: 80, endPort: 70 }), refused("spec.ingress[0].ports[0].endPort", /70 is below port 80/)),
    e("endPort 65536", port({ port: 80, endPort: 65536 }), refused("spec.ingress[0].ports[0].endPort", /should be less than or equal to 65535/)),
    e("endPort with a named port", port({ port: "http", endPort: 90 }), refused("spec.ingress[0].ports[0].endPort", /requires a numeric port, not the named port "http"/)),
    e("endPort without port", port({ endPort: 90 }), refused("spec.ingress[0].ports[0].endPort", /requires a numeric port/)),
    e("named port with a double dash and capitals", port({ port: "Bad--Name" }), refused("spec.ingress[0].ports[0].port", /"Bad--Name" is not a valid port name/)),
    e("named port of 16 characters", port({ port: long(16, "p") }), refused("spec.ingress[0].ports[0].port", /Too long: may not be more than 15 bytes/)),
    e("named port of digits only", port({ port: "8080" }), refused("spec.ingress[0].ports[0].port", /"8080" is not a valid port name/)),
    e("fractional port", port({ port: 80.5 }), refused("spec.ingress[0].ports[0].port", /must be of type integer,string/)),
    e("port as a boolean", port({ port: true }), refused("spec.ingress[0].ports[0].port", /must be of type integer,string/)),
    e("protocol ICMP", port({ protocol: "ICMP", port: 80 }), refused("spec.ingress[0].ports[0].protocol", /Unsupported value: "ICMP"/)),
    e("33 ports in a rule", { selector: {}, ingress: [{ ports: many(33, (i) => ({ port: i + 1 })) }] }, refused("spec.ingress[0].ports", /Too many: 33: must have at most 32 items/)),
    // The rest of the spec, and the object.
    e("action Maybe", { selector: {}, ingress: [{ action: "Maybe" }] }, refused("spec.ingress[0].action", /Unsupported value: "Maybe"/)),
    e("mode Off", { selector: {}, mode: "Off" }, refused("spec.mode", /Unsupported value: "Off"/)),
    e("tcp on a Deny rule", { selector: {}, ingress: [{ action: "Deny", tcp: { strict: true } }] }, refused("spec.ingress[0].tcp", /applies to Allow rules only/)),
    e("tcp beside a UDP port", { selector: {}, egress: [{ ports: [{ protocol: "UDP", port: 53 }], tcp: { strict: true } }] }, refused("spec.egress[0].ports", /lists a port of another protocol than TCP, but the rule sets tcp: its ports must all be TCP/)),
    e("tcp.strict yes", { selector: {}, ingress: [{ tcp: { strict: "yes" } }] }, refused("spec.ingress[0].tcp.strict", /must be of type boolean/)),
    e("connection limits on a Deny rule", { selector: {}, ingress: [{ action: "Deny", tcp: { maxConnectionsPerSource: 3 } }] }, refused("spec.ingress[0].tcp", /applies to Allow rules only: a Deny rule drops its traffic whatever its TCP flags or connections/)),
    e("connection rate beside a UDP port", { selector: {}, egress: [{ ports: [{ protocol: "UDP", port: 53 }], tcp: { newConnectionsPerSecond: { average: 1, burst: 1 } } }] }, refused("spec.egress[0].ports", /its ports must all be TCP/)),
    e("burst below average", { selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: 10, burst: 5 } } }] }, refused("spec.ingress[0].tcp.newConnectionsPerSecond.burst", /5 is below average 10: the bucket must hold at least one second of tokens/)),
    e("connection rate without burst", { selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: 10 } } }] }, refused("spec.ingress[0].tcp.newConnectionsPerSecond.burst", /Required value/)),
    e("maxConnectionsPerSource 0", { selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 0 } }] }, refused("spec.ingress[0].tcp.maxConnectionsPerSource", /should be greater than or equal to 1/)),
    e("maxConnectionsPerSource above the bound", { selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 1_000_001 } }] }, refused("spec.ingress[0].tcp.maxConnectionsPerSource", /should be less than or equal to 1000000/)),
    e("connection rate a fraction", { selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: 1.5, burst: 2 } } }] }, refused("spec.ingress[0].tcp.newConnectionsPerSecond.average", /must be of type integer/)),
    e("http without ports", { selector: {}, ingress: [{ http: [{ path: { prefix: "/a" } }] }] }, refused("spec.ingress[0].ports", /must list the TCP ports whose requests the rule's http entries judge/)),
    e("http beside a UDP port", { selector: {}, egress: [{ ports: [{ protocol: "UDP", port: 53 }], http: [{ method: "GET" }] }] }, refused("spec.egress[0].ports", /but the rule sets http: its ports must all be TCP/)),
    e("http path without a leading slash", { selector: {}, ingress: [{ ports: [{ port: 80 }], http: [{ path: { prefix: "admin" } }] }] }, refused("spec.ingress[0].http[0].path.prefix", /must start with "\/"/)),
    e("http header with two tests", { selector: {}, ingress: [{ ports: [{ port: 80 }], http: [{ headers: [{ name: "X-A", exact: "1", present: true }] }] }] }, refused("spec.ingress[0].http[0].headers[0]", /must set exactly one of exact, prefix, regex, present, absent/)),
    e("http method with a space", { selector: {}, ingress: [{ ports: [{ port: 80 }], http: [{ method: "GET X" }] }] }, refused("spec.ingress[0].http[0].method", /should match/)),
    e("empty http list", { selector: {}, ingress: [{ ports: [{ port: 80 }], http: [] }] }, refused("spec.ingress[0].http", /should have at least 1 items/)),
    e("tls without ports", { selector: {}, egress: [{ tls: { serverNames: ["api.stripe.com"] } }] }, refused("spec.egress[0].ports", /must list the TCP ports whose TLS connections the rule's tls judges/)),
    e("tls beside a UDP port", { selector: {}, egress: [{ ports: [{ protocol: "UDP", port: 443 }], tls: { serverNames: ["api.stripe.com"] } }] }, refused("spec.egress[0].ports", /but the rule sets tls: its ports must all be TCP/)),
    e("tls together with http without termination", { selector: {}, ingress: [{ ports: [{ port: 443 }], http: [{ method: "GET" }], tls: { serverNames: ["api.shop"] } }] }, refused("spec.ingress[0].tls", /is set together with http but without termination/)),
    e("tls without serverNames or termination", { selector: {}, ingress: [{ ports: [{ port: 443 }], tls: {} }] }, refused("spec.ingress[0].tls.serverNames", /is required unless tls.termination is set/)),
    e("clientCertificate without termination", { selector: {}, ingress: [{ ports: [{ port: 443 }], tls: { serverNames: ["api.shop"], clientCertificate: { ca: { configMapName: "ca", key: "ca.crt" }, subjectAltNames: ["spiffe://c/ns/a"] } } }] }, refused("spec.ingress[0].tls.clientCertificate", /requires tls.termination/)),
    e("termination on an egress rule", { selector: {}, egress: [{ ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "api-tls" } } } }] }, refused("spec.egress[0].tls.termination", /is not supported on egress rules/)),
    e("termination on a Deny rule", { selector: {}, ingress: [{ action: "Deny", ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "api-tls" } } } }] }, refused("spec.ingress[0].tls.termination", /applies to Allow rules only/)),
    e("upstream TLS without upstreamCA", { selector: {}, ingress: [{ ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "api-tls" }, upstream: "TLS" } } }] }, refused("spec.ingress[0].tls.termination.upstreamCA", /is required when upstream is TLS/)),
    e("termination alpn naming h3", { selector: {}, ingress: [{ ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "api-tls" }, alpn: ["h3"] } } }] }, refused("spec.ingress[0].tls.termination.alpn[0]", /Unsupported value: "h3"/)),
    e("certificate Secret name with capitals", { selector: {}, ingress: [{ ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "API-tls" } } } }] }, refused("spec.ingress[0].tls.termination.certificate.secretName", /should match/)),
    e("subjectAltName with a space", { selector: {}, ingress: [{ ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "api-tls" } }, clientCertificate: { ca: { configMapName: "ca", key: "ca.crt" }, subjectAltNames: ["spiffe://c/ns a"] } } }] }, refused("spec.ingress[0].tls.clientCertificate.subjectAltNames[0]", /should match/)),
    e("empty serverNames", { selector: {}, egress: [{ ports: [{ port: 443 }], tls: { serverNames: [] } }] }, refused("spec.egress[0].tls.serverNames", /should have at least 1 items/)),
    e("server name with a space", { selector: {}, egress: [{ ports: [{ port: 443 }], tls: { serverNames: ["api stripe.com"] } }] }, refused("spec.egress[0].tls.serverNames[0]", /should match/)),
    e("65 server names", { selector: {}, egress: [{ ports: [{ port: 443 }], tls: { serverNames: many(65, (i) => `s${i}.example`) } }] }, refused("spec.egress[0].tls.serverNames", /Too many: 65: must have at most 64 items/)),
    e("policyTypes listed twice", { selector: {}, policyTypes: ["Ingress", "Ingress"] }, refused("spec.policyTypes[1]", /Duplicate value: "Ingress"/)),
    e("policyTypes Both", { selector: {}, policyTypes: ["Both"] }, refused("spec.policyTypes[0]", /Unsupported value: "Both"/)),
    e("no selector", {}, refused("spec.selector", /Required value/)),
    e("selector as a list", { selector: [] }, refused("spec.selector", /must be of type object/)),
    e("ingress as a string", { selector: {}, ingress: "all" }, refused("spec.ingress", /must be of type array/)),
    e("33 ingress rules", { selector: {}, ingress: many(33, () => ({})) }, refused("spec.ingress", /Too many: 33: must have at most 32 items/)),
    e("33 peers in a rule", { selector: {}, egress: [{ to: many(33, (i) => ({ podSelector: { matchLabels: { i: String(i) } } })) }] }, refused("spec.egress[0].to", /Too many: 33: must have at most 32 items/)),
    e("unknown field", { selector: {}, allowEverything: true }, refused("spec.allowEverything", /unknown field "spec.allowEverything"/)),
    { name: "name with capitals", object: ebpf(bad, "Deny_All", { selector: {} }), outcome: refused("metadata.name", /Invalid value: "Deny_All": a lowercase RFC 1123 subdomain/) },
    { name: "name of 254 characters", object: ebpf(bad, long(254), { selector: {} }), outcome: refused("metadata.name", /must be no more than 253 characters/) },
    // The same mistakes as a NetworkPolicy: the API server names the same fields.
    n("label value with a space", { podSelector: { matchLabels: { app: "a b" } } }, refused("spec.podSelector.matchLabels", /Invalid value: "a b": a valid label must be an empty string/)),
    n("label key with a space", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { "a b": "x" } } }] }] }, refused("spec.ingress[0].from[0].podSelector.matchLabels", /Invalid value: "a b": name part must consist of alphanumeric characters/)),
    n("expression key with a space", { podSelector: { matchExpressions: [{ key: "a b", operator: "Exists" }] } }, refused("spec.podSelector.matchExpressions[0].key", /Invalid value: "a b": name part must consist/)),
    n("cidr with prefix 33", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] }] }, refused("spec.ingress[0].from[0].ipBlock.cidr", /Invalid value: "10.0.0.0\/33": must be a valid CIDR value/)),
    n("except equal to cidr", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.0.0.0/8"] } }] }] }, refused("spec.ingress[0].from[0].ipBlock.except[0]", /must be a strict subset of `cidr`/)),
    n("port 0", { podSelector: {}, ingress: [{ ports: [{ port: 0 }] }] }, refused("spec.ingress[0].ports[0].port", /Invalid value: 0: must be between 1 and 65535/)),
    n("endPort below port", { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 70 }] }] }, refused("spec.ingress[0].ports[0].endPort", /must be greater than or equal to `port`/)),
    n("named port with a double dash", { podSelector: {}, egress: [{ ports: [{ port: "web--ui" }] }] }, refused("spec.egress[0].ports[0].port", /must not contain consecutive hyphens/)),
    // Identities: only the operator writes them, and the CRD keeps them to what it writes.
    { name: "PalisadeIdentity named by a word", object: identity("web", { key: "k", kind: "pod" }), outcome: refused("<nil>", /metadata.name must be the identity number in decimal, from 256 to 4026531839/) },
    { name: "PalisadeIdentity numbered among a node's own numbers", object: identity("4026531840", { key: "k", kind: "pod" }), outcome: refused("<nil>", /metadata.name must be the identity number in decimal/) },
    { name: "PalisadeIdentity numbered below 256", object: identity("255", { key: "k", kind: "pod" }), outcome: refused("<nil>", /metadata.name must be the identity number in decimal/) },
    { name: "PalisadeIdentity numbered past 32 bits", object: identity("4294967296", { key: "k", kind: "pod" }), outcome: refused("<nil>", /metadata.name must be the identity number in decimal/) },
    { name: "PalisadeIdentity number with a leading zero", object: identity("0300", { key: "k", kind: "pod" }), outcome: refused("<nil>", /metadata.name must be the identity number in decimal/) },
    { name: "PalisadeIdentity of an unknown kind", object: identity("4000000001", { key: "k", kind: "service" }), outcome: refused("spec.kind", /Unsupported value: "service"/) },
    { name: "PalisadeIdentity with an empty key", object: identity("4000000002", { key: "", kind: "pod" }), outcome: refused("spec.key", /should be at least 1 chars long/) },
    { name: "PalisadeIdentity with a bad label value", object: identity("4000000003", { key: "k", kind: "pod", labels: { app: "a b" } }), outcome: refused("spec.labels.app", /Invalid value: "a b"/) },
    { name: "PalisadeIdentity with a bad label key", object: identity("4000000004", { key: "k", kind: "pod", namespaceLabels: { "a b": "x" } }), outcome: refused("spec.namespaceLabels", /"a b": name part must consist/) },
    { name: "PalisadeIdentity with a bad namespace", object: identity("4000000005", { key: "k", kind: "pod", namespace: "Shop" }), outcome: refused("spec.namespace", /Invalid value: "Shop"/) },
    { name: "PalisadeIdentity with port 0", object: identity("4000000006", { key: "k", kind: "pod", namedPorts: [{ name: "http", port: 0, protocol: "TCP" }] }), outcome: refused("spec.namedPorts[0].port", /should be greater than or equal to 1/) },
    // Pods and namespaces: the API server's own rules, which Palisade's match.
    { name: "Pod label value with a space", object: pod(bad, "r-pod-label", { app: "a b" }), outcome: refused("metadata.labels", /Invalid value: "a b": a valid label must be/) },
    { name: "Pod label value of 64 characters", object: pod(bad, "r-pod-long-label", { app: long(64) }), outcome: refused("metadata.labels", /must be no more than 63 characters/) },
    { name: "Pod port name with a double dash", object: pod(bad, "r-pod-port", { app: "x" }, [{ name: "web--ui", containerPort: 80 }]), outcome: refused("spec.containers[0].ports[0].name", /must not contain consecutive hyphens/) },
    { name: "Pod port 65536", object: pod(bad, "r-pod-port65536", { app: "x" }, [{ containerPort: 65536 }]), outcome: refused("spec.containers[0].ports[0].containerPort", /must be between 1 and 65535/) },
    { name: "Namespace with capitals", object: { apiVersion: "v1", kind: "Namespace", metadata: { name: "Bad_Namespace" } }, outcome: refused("metadata.name", /Invalid value: "Bad_Namespace": a lowercase RFC 1123 label/) },
    { name: "Namespace label key with a space", object: { apiVersion: "v1", kind: "Namespace", metadata: { name: `${bad}-labelled`, labels: { "a b": "x" } } }, outcome: refused("metadata.labels", /Invalid value: "a b": name part must consist/) },
  ];
}

/**
 * Objects the API server takes: policies stored before the CRD refused them
 * (the operator refuses them), NetworkPolicies the API server takes with a
 * warning that Palisade cannot read, odd but valid policies (enforced), and
 * pods at and past the limits of what Palisade reads.
 */
export function storedRows({ bad, x, addressOfA }: RowContext): Row[] {
  const older = (name: string, ns: string, spec: unknown, field: string, message: RegExp): Row => ({
    name: `stored before the CRD refused it: ${name}`,
    object: ebpf(ns, `s-${name.replace(/[^a-z0-9]+/g, "-").slice(0, 40).replace(/-$/, "")}`, spec),
    outcome: { invalid: { field, message } },
    olderSchema: true,
  });
  const ok = (name: string, spec: unknown): Row => ({ name, object: ebpf(bad, `s-${name.replace(/[^a-z0-9]+/g, "-").slice(0, 40).replace(/-$/, "")}`, spec), outcome: { programmed: true } });
  const withStatus = (name: string, object: Manifest, ips: string[], outcome: Outcome): Row => ({
    name,
    object,
    status: { phase: "Running", podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
    outcome,
  });
  const numbered = (object: Manifest): Outcome => ({ numbered: object.metadata.labels ?? {} });
  return [
    // Refused by the operator: in the matrix namespace, selecting pod b, so a refusal must leave b's enforcement alone.
    older("label value with a space, selecting pod b", x, { selector: { matchLabels: { app: "b" } }, ingress: [{ action: "Deny", from: [{ podSelector: { matchLabels: { app: "a b" } } }] }] }, `spec.ingress[0].from[0].podSelector.matchLabels["app"]`, /"a b" is not a valid label value/),
    older("label key with a space, selecting every pod", x, { selector: { matchLabels: { "a b": "x" } } }, "spec.selector.matchLabels", /key "a b" is not a valid label key/),
    older("expression key with unicode", bad, { selector: { matchExpressions: [{ key: "ünï", operator: "Exists" }] } }, "spec.selector.matchExpressions[0].key", /"ünï" is not a valid label key/),
    older("connection burst below average", bad, { selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: 10, burst: 5 } } }] }, "spec.ingress[0].tcp.newConnectionsPerSecond.burst", /5 is below average 10/),
    { name: "http regex that is not RE2", object: ebpf(x, "s-http-regex", { selector: { matchLabels: { app: "b" } }, ingress: [{ ports: [{ port: 80 }], http: [{ path: { regex: "(unclosed" } }] }] }), outcome: { invalid: { field: "spec.ingress[0].http[0].path.regex", message: /is not RE2 syntax/ } } },
    { name: "http path not in normalized form", object: ebpf(x, "s-http-dotdot", { selector: { matchLabels: { app: "b" } }, ingress: [{ ports: [{ port: 80 }], http: [{ path: { prefix: "/public/../admin" } }] }] }), outcome: { invalid: { field: "spec.ingress[0].http[0].path.prefix", message: /not in normalized form/ } } },
    { name: "tls server name that is an IP address", object: ebpf(x, "s-tls-ip", { selector: { matchLabels: { app: "b" } }, ingress: [{ ports: [{ port: 443 }], tls: { serverNames: ["10.0.0.1"] } }] }), outcome: { invalid: { field: "spec.ingress[0].tls.serverNames[0]", message: /is an IP address, which SNI may not carry/ } } },
    { name: "client certificate SAN wildcard over a top-level domain", object: ebpf(x, "s-tls-san-tld", { selector: { matchLabels: { app: "b" } }, ingress: [{ ports: [{ port: 443 }], tls: { termination: { certificate: { secretName: "api-tls" } }, clientCertificate: { ca: { configMapName: "ca", key: "ca.crt" }, subjectAltNames: ["*.com"] } } }] }), outcome: { invalid: { field: "spec.ingress[0].tls.clientCertificate.subjectAltNames[0]", message: /would match every name under a top-level domain/ } } },
    { name: "tls wildcard over a top-level domain", object: ebpf(x, "s-tls-tld", { selector: { matchLabels: { app: "b" } }, ingress: [{ ports: [{ port: 443 }], tls: { serverNames: ["*.com"] } }] }), outcome: { invalid: { field: "spec.ingress[0].tls.serverNames[0]", message: /would match every name under a top-level domain/ } } },
    older("expression value with a newline", bad, { selector: { matchExpressions: [{ key: "app", operator: "In", values: ["a\nb"] }] } }, "spec.selector.matchExpressions[0].values[0]", /is not a valid label value/),
    // NetworkPolicies the API server takes with a warning.
    {
      name: "NetworkPolicy cidr with a leading zero (the API server warns)",
      object: np(bad, "s-leading-zero", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "010.0.0.0/8" } }] }] }),
      outcome: { warned: { field: "spec.ingress[0].from[0].ipBlock.cidr", message: /"010.0.0.0\/8" is not a valid CIDR/, reason: "Invalid" } },
    },
    {
      name: "NetworkPolicy cidr of an IPv4-mapped address (the API server warns)",
      object: np(bad, "s-mapped", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "::ffff:1.2.3.4/128" } }] }] }),
      outcome: { warned: { field: "spec.ingress[0].from[0].ipBlock.cidr", message: /is an IPv4-mapped IPv6 prefix/, reason: "Invalid" } },
    },
    {
      name: "NetworkPolicy cidr with host bits set (the API server warns)",
      object: np(bad, "s-host-bits", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.1/8" } }] }] }),
      outcome: { listed: true },
    },
    // Odd but valid policies.
    ok("a namespace that does not exist", { selector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "no-such-namespace" } } }] }] }),
    ok("the same rule 32 times", { selector: {}, ingress: many(32, () => ({ from: [{ podSelector: { matchLabels: { app: "a" } } }], ports: [{ port: 80 }] })) }),
    ok("empty selectors everywhere", { selector: {}, ingress: [{ from: [{ podSelector: {} }, { namespaceSelector: {} }] }], egress: [{}] }),
    ok("label values at 63 characters", { selector: { matchLabels: { [`example.com/${name63}`]: name63 } }, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: `${"p".repeat(253)}/${name63}`, operator: "In", values: [name63, ""] }] } }] }] }),
    ok("every port range, both directions, audit mode", { selector: {}, mode: "Audit", ingress: [{ ports: [{ port: 1, endPort: 65535 }, { protocol: "UDP", port: 1, endPort: 65535 }, { protocol: "SCTP", port: 1, endPort: 65535 }] }], egress: [{ action: "Deny", to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["0.0.0.0/1"] } }, { ipBlock: { cidr: "::/0" } }] }] }),
    ok("32 rules of 32 peers of 32 port ranges", {
      selector: {},
      ingress: many(32, (r) => ({ from: many(32, (p) => ({ namespaceSelector: { matchLabels: { rule: String(r) } }, podSelector: { matchExpressions: [{ key: "peer", operator: "NotIn", values: [String(p)] }] } })), ports: many(32, (i) => ({ port: 1000 * (i + 1), endPort: 1000 * (i + 1) + 500 })) })),
    }),
    ok("32 CIDRs with 32 holes each", { selector: {}, egress: [{ to: many(32, (i) => ({ ipBlock: { cidr: `192.168.${i}.0/24`, except: many(32, (j) => `192.168.${i}.${j * 8}/29`) } })) }] }),
    // Pods at and past what Palisade reads (their addresses written as a kubelet would).
    ((object) => withStatus("Pod with label values at 63 characters", object, ["10.244.250.1"], numbered(object)))(pod(bad, "s-long-labels", { [`example.com/${name63}`]: name63, app: "long" })),
    withStatus("Pod with 300 labels", pod(bad, "s-many-labels", labelsOf(300)), ["10.244.250.2"], { warned: { field: "metadata.labels", message: /has 300 labels, more than the 256 a PalisadeIdentity holds/, reason: "NodeLocalIdentity" } }),
    ((object) => withStatus("Pod at an IPv4-mapped IPv6 address", object, ["::ffff:10.244.250.3"], numbered(object)))(pod(bad, "s-mapped-ip", { app: "mapped" })),
    withStatus("Pod at an address with a leading zero", pod(bad, "s-leading-zero-ip", { app: "zero" }), ["010.244.250.4"], { warned: { field: "status.podIPs[0].ip", message: /"010.244.250.4" is not a valid IP address/, reason: "Invalid" } }),
    ((object) => withStatus("Pod at the broadcast address", object, ["255.255.255.255"], numbered(object)))(pod(bad, "s-broadcast", { app: "broadcast" })),
    ((object) => withStatus("Pod at loopback addresses", object, ["127.0.0.1", "::1"], numbered(object)))(pod(bad, "s-loopback", { app: "loopback" })),
    withStatus("Pod claiming pod a's address", pod(bad, "s-impostor", { app: "a" }), [addressOfA], {
      warned: { field: "status.podIPs[0].ip", message: new RegExp(`"${addressOfA.replace(/\./g, "\\.")}" is already the address of pod ".*/a", created before it`), reason: "Invalid" },
    }),
  ];
}

/**
 * PalisadeIdentity objects a user forges past RBAC: the operator is the only
 * allocator, so a forged number for a key is either a duplicate (collected
 * once the grace period passes) or junk no address ever asks for (collected
 * likewise); edits are refused; a deleted identity in use is created again.
 */
export function identityRows({ keyOfA }: RowContext): Row[] {
  return [
    { name: "forged identity with a key no address has", object: identity("3999999001", { key: '["pod","nowhere",[],[],[],null]', kind: "pod", namespace: "nowhere" }), outcome: { collected: true } },
    { name: "forged identity with a key that is not JSON", object: identity("3999999002", { key: "} not json {", kind: "pod" }), outcome: { collected: true } },
    { name: "forged second number for pod a's key", object: identity("3999999003", { key: keyOfA, kind: "pod" }), outcome: { collected: true } },
  ];
}
