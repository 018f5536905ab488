import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ValidationIssue } from "./validate.ts";
import { PolicyError, portNameProblem, validateObject, validatePolicy } from "./validate.ts";

type Fields = Record<string, unknown>;

function np(spec: unknown, metadata: Fields = { name: "web", namespace: "shop" }): Fields {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata, spec };
}

function ebpf(spec: unknown): Fields {
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "web", namespace: "shop" }, spec };
}

/** A NetworkPolicy whose only ingress rule has the given peer. */
function withPeer(peer: unknown): Fields {
  return np({ podSelector: {}, ingress: [{ from: [peer] }] });
}

/** A NetworkPolicy whose only ingress rule has the given port. */
function withPort(port: unknown): Fields {
  return np({ podSelector: {}, ingress: [{ ports: [port] }] });
}

function withSelector(selector: unknown): Fields {
  return np({ podSelector: selector });
}

function pod(overrides: { metadata?: Fields; spec?: unknown; status?: unknown } = {}): Fields {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: overrides.metadata ?? { name: "api", namespace: "shop", labels: { app: "api" } },
    spec: overrides.spec ?? { containers: [{ name: "api", ports: [{ name: "http", containerPort: 8080 }] }] },
    ...(overrides.status === undefined ? {} : { status: overrides.status }),
  };
}

/** One invalid input and the issue it must raise (the message may hold more than `message`). */
interface Bad {
  name: string;
  input: unknown;
  field: string;
  message: string;
}

function assertIssue(issues: ValidationIssue[], field: string, message: string): void {
  assert.ok(
    issues.some((issue) => issue.field === field && issue.message.includes(message)),
    `expected an issue at ${field} containing ${JSON.stringify(message)}, got ${JSON.stringify(issues)}`,
  );
}

const goodPolicies: [string, unknown][] = [
  ["minimal NetworkPolicy", np({ podSelector: {} })],
  ["NetworkPolicy without spec: defaults to selecting every pod", np(undefined)],
  ["NetworkPolicy without podSelector", np({ policyTypes: ["Ingress"] })],
  ["null fields count as absent", np({ podSelector: { matchLabels: null }, ingress: null, egress: [{ to: null, ports: null }] })],
  [
    "a full NetworkPolicy",
    np({
      podSelector: { matchLabels: { app: "api" }, matchExpressions: [{ key: "tier", operator: "In", values: ["web", "api"] }, { key: "example.com/canary", operator: "DoesNotExist" }] },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: "frontend" } } }, { namespaceSelector: { matchLabels: { team: "shop" } }, podSelector: {} }], ports: [{ port: "http" }, { protocol: "UDP", port: 53 }] },
        { from: [{ ipBlock: { cidr: "10.0.0.1/8", except: ["10.1.0.0/16", "10.2.3.4/32"] } }], ports: [{ protocol: "SCTP", port: 30000, endPort: 32767 }] },
        {},
      ],
      egress: [{ to: [{ ipBlock: { cidr: "fd00::/8", except: ["fd00:1::/32"] } }, { namespaceSelector: {} }], ports: [{ protocol: "TCP" }, { port: 65535, endPort: 65535 }] }],
    }),
  ],
  ["0.0.0.0/0 and ::/0", np({ ingress: [{ from: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }] }] })],
  ["named port at the length limit", withPort({ port: "abcdefghij-1234" })],
  ["unknown fields are ignored", { ...np({ podSelector: {}, somethingNew: 1, ingress: [{ action: "Deny" }] }), status: {} }],
  [
    "a full EBPFNetworkPolicy",
    ebpf({ selector: {}, mode: "Audit", ingress: [{ action: "Deny", from: [{ podSelector: {} }] }, { action: "Allow" }, {}], egress: [{ action: "Deny", ports: [{ port: 22 }] }] }),
  ],
  ["EBPFNetworkPolicy with Enforce mode", ebpf({ selector: { matchLabels: { app: "db" } }, mode: "Enforce" })],
  ["tcp.strict on an Allow rule of TCP ports", ebpf({ selector: {}, ingress: [{ ports: [{ port: 5432 }, { protocol: "TCP", port: 6432 }], tcp: { strict: true } }] })],
  ["tcp on an Allow rule without ports", ebpf({ selector: {}, egress: [{ action: "Allow", tcp: { strict: false } }] })],
  [
    "connection limits at their bounds",
    ebpf({
      selector: {},
      ingress: [
        { ports: [{ port: 5432 }], tcp: { maxConnectionsPerSource: 1, newConnectionsPerSecond: { average: 1, burst: 1 } } },
        { tcp: { strict: true, maxConnectionsPerSource: 1_000_000, newConnectionsPerSecond: { average: 1_000_000, burst: 1_000_000 } } },
      ],
    }),
  ],
];

const badPolicies: Bad[] = [
  {
    name: "tcp on a Deny rule",
    input: ebpf({ selector: {}, ingress: [{ action: "Deny", tcp: { strict: true } }] }),
    field: "spec.ingress[0].tcp",
    message: "applies to Allow rules only: a Deny rule drops its traffic whatever its TCP flags or connections",
  },
  {
    name: "tcp beside a UDP port",
    input: ebpf({ selector: {}, egress: [{ ports: [{ port: 53 }, { protocol: "UDP", port: 53 }], tcp: { strict: true } }] }),
    field: "spec.egress[0].ports[1].protocol",
    message: 'is "UDP", but the rule sets tcp: its ports must all be TCP',
  },
  {
    name: "burst below average",
    input: ebpf({ selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: 10, burst: 5 } } }] }),
    field: "spec.ingress[0].tcp.newConnectionsPerSecond.burst",
    message: "5 is below average 10: the bucket must hold at least one second of tokens",
  },
  {
    name: "connection limits on a Deny rule",
    input: ebpf({ selector: {}, egress: [{ action: "Deny", tcp: { maxConnectionsPerSource: 3 } }] }),
    field: "spec.egress[0].tcp",
    message: "applies to Allow rules only: a Deny rule drops its traffic whatever its TCP flags or connections",
  },
  {
    name: "connection limits beside a UDP port",
    input: ebpf({ selector: {}, ingress: [{ ports: [{ protocol: "UDP", port: 53 }], tcp: { newConnectionsPerSecond: { average: 1, burst: 1 } } }] }),
    field: "spec.ingress[0].ports[0].protocol",
    message: 'is "UDP", but the rule sets tcp: its ports must all be TCP',
  },
  { name: "maxConnectionsPerSource 0", input: ebpf({ selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 0 } }] }), field: "spec.ingress[0].tcp.maxConnectionsPerSource", message: "0 is not between 1 and 1000000" },
  { name: "maxConnectionsPerSource above the bound", input: ebpf({ selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 1_000_001 } }] }), field: "spec.ingress[0].tcp.maxConnectionsPerSource", message: "1000001 is not between 1 and 1000000" },
  { name: "maxConnectionsPerSource a fraction", input: ebpf({ selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 2.5 } }] }), field: "spec.ingress[0].tcp.maxConnectionsPerSource", message: "must be a whole number, not the fraction 2.5" },
  { name: "rate without burst", input: ebpf({ selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: 3 } } }] }), field: "spec.ingress[0].tcp.newConnectionsPerSecond.burst", message: "is required" },
  { name: "rate average a string", input: ebpf({ selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: { average: "3", burst: 3 } } }] }), field: "spec.ingress[0].tcp.newConnectionsPerSecond.average", message: 'must be a whole number, not the string "3"' },
  { name: "rate not an object", input: ebpf({ selector: {}, ingress: [{ tcp: { newConnectionsPerSecond: 3 } }] }), field: "spec.ingress[0].tcp.newConnectionsPerSecond", message: "must be an object, not the number 3" },
  { name: "tcp.strict not a boolean", input: ebpf({ selector: {}, ingress: [{ tcp: { strict: "yes" } }] }), field: "spec.ingress[0].tcp.strict", message: 'must be true or false, not the string "yes"' },
  { name: "tcp not an object", input: ebpf({ selector: {}, ingress: [{ tcp: true }] }), field: "spec.ingress[0].tcp", message: "must be an object, not true" },
  { name: "not an object", input: "kind: NetworkPolicy", field: "", message: 'must be an object, not the string "kind: NetworkPolicy"' },
  { name: "null", input: null, field: "", message: "must be an object, not null" },
  { name: "a list", input: [], field: "", message: "must be an object, not a list" },
  { name: "kind missing", input: { apiVersion: "networking.k8s.io/v1", metadata: { name: "x", namespace: "y" } }, field: "kind", message: "is required" },
  { name: "kind not a policy", input: { ...np({}), kind: "Pod" }, field: "kind", message: '"Pod" is not a policy kind' },
  { name: "kind not a string", input: { ...np({}), kind: 7 }, field: "kind", message: "must be a string, not the number 7" },
  { name: "apiVersion of another group", input: { ...np({}), apiVersion: "extensions/v1beta1" }, field: "apiVersion", message: '"extensions/v1beta1" is not "networking.k8s.io/v1"' },
  { name: "apiVersion missing", input: { ...ebpf({ selector: {} }), apiVersion: undefined }, field: "apiVersion", message: "is required" },
  { name: "EBPF apiVersion", input: { ...ebpf({ selector: {} }), apiVersion: "networking.k8s.io/v1" }, field: "apiVersion", message: '"networking.k8s.io/v1" is not "palisade.dev/v1alpha1"' },
  { name: "metadata missing", input: { ...np({}), metadata: undefined }, field: "metadata", message: "is required" },
  { name: "name missing", input: np({}, { namespace: "shop" }), field: "metadata.name", message: "is required" },
  { name: "name empty", input: np({}, { name: "", namespace: "shop" }), field: "metadata.name", message: "must not be empty" },
  { name: "name with capitals", input: np({}, { name: "Web", namespace: "shop" }), field: "metadata.name", message: '"Web" is not a DNS-1123 subdomain' },
  { name: "name with underscore", input: np({}, { name: "web_1", namespace: "shop" }), field: "metadata.name", message: "is not a DNS-1123 subdomain" },
  { name: "name ending in a dot", input: np({}, { name: "web.", namespace: "shop" }), field: "metadata.name", message: "is not a DNS-1123 subdomain" },
  { name: "name too long", input: np({}, { name: "a".repeat(254), namespace: "shop" }), field: "metadata.name", message: "is not a DNS-1123 subdomain" },
  { name: "namespace missing", input: np({}, { name: "web" }), field: "metadata.namespace", message: "is required" },
  { name: "namespace with a dot", input: np({}, { name: "web", namespace: "shop.eu" }), field: "metadata.namespace", message: '"shop.eu" is not a DNS-1123 label' },
  { name: "namespace too long", input: np({}, { name: "web", namespace: "a".repeat(64) }), field: "metadata.namespace", message: "is not a DNS-1123 label" },
  { name: "label key with two slashes", input: np({}, { name: "web", namespace: "shop", labels: { "a/b/c": "x" } }), field: "metadata.labels", message: 'key "a/b/c" is not a valid label key: at most one' },
  { name: "label key with a bad prefix", input: np({}, { name: "web", namespace: "shop", labels: { "Example.com/app": "x" } }), field: "metadata.labels", message: "prefix \"Example.com\" must be a DNS-1123 subdomain" },
  { name: "label value with a space", input: np({}, { name: "web", namespace: "shop", labels: { app: "my app" } }), field: 'metadata.labels["app"]', message: '"my app" is not a valid label value' },
  { name: "label value not a string", input: np({}, { name: "web", namespace: "shop", labels: { replicas: 3 } }), field: 'metadata.labels["replicas"]', message: "must be a string, not the number 3" },
  { name: "spec not an object", input: np("all"), field: "spec", message: 'must be an object, not the string "all"' },
  { name: "podSelector not an object", input: withSelector([]), field: "spec.podSelector", message: "must be an object, not a list" },
  { name: "EBPF spec missing", input: ebpf(undefined), field: "spec", message: "is required" },
  { name: "EBPF selector missing", input: ebpf({ mode: "Enforce" }), field: "spec.selector", message: "is required" },
  // Selectors.
  { name: "matchLabels not an object", input: withSelector({ matchLabels: "app=web" }), field: "spec.podSelector.matchLabels", message: "must be an object" },
  { name: "matchLabels value not a string", input: withSelector({ matchLabels: { enabled: true } }), field: 'spec.podSelector.matchLabels["enabled"]', message: "must be a string, not true" },
  { name: "matchLabels bad key", input: withSelector({ matchLabels: { "-app": "web" } }), field: "spec.podSelector.matchLabels", message: 'key "-app" is not a valid label key' },
  { name: "matchLabels key too long", input: withSelector({ matchLabels: { ["k".repeat(64)]: "v" } }), field: "spec.podSelector.matchLabels", message: "is not a valid label key" },
  { name: "matchLabels bad value", input: withSelector({ matchLabels: { app: "web-" } }), field: 'spec.podSelector.matchLabels["app"]', message: '"web-" is not a valid label value' },
  { name: "In without values", input: withSelector({ matchExpressions: [{ key: "app", operator: "In" }] }), field: "spec.podSelector.matchExpressions[0].values", message: 'must not be empty when operator is "In"' },
  { name: "NotIn with empty values", input: withSelector({ matchExpressions: [{ key: "app", operator: "NotIn", values: [] }] }), field: "spec.podSelector.matchExpressions[0].values", message: 'must not be empty when operator is "NotIn"' },
  { name: "Exists with values", input: withSelector({ matchExpressions: [{ key: "app", operator: "Exists", values: ["web"] }] }), field: "spec.podSelector.matchExpressions[0].values", message: 'must be empty when operator is "Exists"' },
  { name: "DoesNotExist with values", input: withSelector({ matchExpressions: [{ key: "app", operator: "DoesNotExist", values: ["web"] }] }), field: "spec.podSelector.matchExpressions[0].values", message: 'must be empty when operator is "DoesNotExist"' },
  { name: "unknown operator", input: withSelector({ matchExpressions: [{ key: "app", operator: "Equals", values: ["web"] }] }), field: "spec.podSelector.matchExpressions[0].operator", message: '"Equals" is not one of "In", "NotIn", "Exists", "DoesNotExist"' },
  { name: "operator missing", input: withSelector({ matchExpressions: [{ key: "app" }] }), field: "spec.podSelector.matchExpressions[0].operator", message: "is required" },
  { name: "expression key missing", input: withSelector({ matchExpressions: [{ operator: "Exists" }] }), field: "spec.podSelector.matchExpressions[0].key", message: "is required" },
  { name: "expression key invalid", input: withSelector({ matchExpressions: [{ key: "a b", operator: "Exists" }] }), field: "spec.podSelector.matchExpressions[0].key", message: '"a b" is not a valid label key' },
  { name: "expression value invalid", input: withSelector({ matchExpressions: [{ key: "app", operator: "In", values: ["ok", "not ok"] }] }), field: "spec.podSelector.matchExpressions[0].values[1]", message: '"not ok" is not a valid label value' },
  { name: "expression values not a list", input: withSelector({ matchExpressions: [{ key: "app", operator: "In", values: "web" }] }), field: "spec.podSelector.matchExpressions[0].values", message: "must be a list" },
  { name: "EBPF selector checked too", input: ebpf({ selector: { matchExpressions: [{ key: "app", operator: "In" }] } }), field: "spec.selector.matchExpressions[0].values", message: "must not be empty" },
  // Rules and peers.
  { name: "ingress not a list", input: np({ ingress: { from: [] } }), field: "spec.ingress", message: "must be a list, not an object" },
  { name: "ingress rule null", input: np({ ingress: [null] }), field: "spec.ingress[0]", message: "must be an object, not null" },
  { name: "from not a list", input: np({ ingress: [{ from: "everyone" }] }), field: "spec.ingress[0].from", message: "must be a list" },
  { name: "empty peer", input: withPeer({}), field: "spec.ingress[0].from[0]", message: "must set ipBlock, or podSelector and/or namespaceSelector" },
  { name: "peer with only null fields", input: withPeer({ podSelector: null }), field: "spec.ingress[0].from[0]", message: "must set ipBlock" },
  { name: "ipBlock with podSelector", input: withPeer({ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }), field: "spec.ingress[0].from[0]", message: "sets ipBlock together with podSelector" },
  { name: "ipBlock with namespaceSelector", input: withPeer({ ipBlock: { cidr: "10.0.0.0/8" }, namespaceSelector: {} }), field: "spec.ingress[0].from[0]", message: "sets ipBlock together with namespaceSelector" },
  { name: "egress peer checked at to", input: np({ egress: [{ to: [{}] }] }), field: "spec.egress[0].to[0]", message: "must set ipBlock" },
  { name: "peer podSelector checked", input: withPeer({ podSelector: { matchExpressions: [{ key: "app", operator: "In" }] } }), field: "spec.ingress[0].from[0].podSelector.matchExpressions[0].values", message: "must not be empty" },
  { name: "peer namespaceSelector checked", input: withPeer({ namespaceSelector: "all" }), field: "spec.ingress[0].from[0].namespaceSelector", message: "must be an object" },
  // ipBlock.
  { name: "cidr missing", input: withPeer({ ipBlock: {} }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "is required" },
  { name: "cidr empty", input: withPeer({ ipBlock: { cidr: "" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "must not be empty" },
  { name: "cidr without prefix", input: withPeer({ ipBlock: { cidr: "10.0.0.0" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: '"10.0.0.0" is not a valid CIDR' },
  { name: "cidr with leading zeros", input: withPeer({ ipBlock: { cidr: "010.0.0.0/8" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: 'address "010.0.0.0" is not a valid IPv4 or IPv6 address' },
  { name: "cidr prefix with leading zero", input: withPeer({ ipBlock: { cidr: "10.0.0.0/08" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: 'prefix length "08" is not a number without leading zeros' },
  { name: "cidr prefix too long v4", input: withPeer({ ipBlock: { cidr: "10.0.0.0/33" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "prefix length 33 is above 32" },
  { name: "cidr prefix too long v6", input: withPeer({ ipBlock: { cidr: "fd00::/129" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "prefix length 129 is above 128" },
  { name: "cidr of IPv4-mapped addresses", input: withPeer({ ipBlock: { cidr: "::ffff:10.0.0.0/104" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "is an IPv4-mapped IPv6 prefix" },
  { name: "cidr with a zone", input: withPeer({ ipBlock: { cidr: "fe80::1%eth0/64" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "is not a valid IPv4 or IPv6 address" },
  { name: "cidr a hostname", input: withPeer({ ipBlock: { cidr: "example.com/32" } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "is not a valid CIDR" },
  { name: "cidr not a string", input: withPeer({ ipBlock: { cidr: 10 } }), field: "spec.ingress[0].from[0].ipBlock.cidr", message: "must be a string" },
  { name: "except not a list", input: withPeer({ ipBlock: { cidr: "10.0.0.0/8", except: "10.1.0.0/16" } }), field: "spec.ingress[0].from[0].ipBlock.except", message: "must be a list" },
  { name: "except invalid", input: withPeer({ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.1.0.0"] } }), field: "spec.ingress[0].from[0].ipBlock.except[1]", message: '"10.1.0.0" is not a valid CIDR' },
  { name: "except outside cidr", input: withPeer({ ipBlock: { cidr: "10.0.0.0/8", except: ["11.0.0.0/16"] } }), field: "spec.ingress[0].from[0].ipBlock.except[0]", message: '"11.0.0.0/16" is not strictly inside cidr "10.0.0.0/8"' },
  { name: "except equal to cidr", input: withPeer({ ipBlock: { cidr: "10.0.0.0/8", except: ["10.0.0.0/8"] } }), field: "spec.ingress[0].from[0].ipBlock.except[0]", message: "is not strictly inside" },
  { name: "except wider than cidr", input: withPeer({ ipBlock: { cidr: "10.1.0.0/16", except: ["10.0.0.0/8"] } }), field: "spec.ingress[0].from[0].ipBlock.except[0]", message: "is not strictly inside" },
  { name: "except of another family", input: withPeer({ ipBlock: { cidr: "::/0", except: ["10.0.0.0/8"] } }), field: "spec.ingress[0].from[0].ipBlock.except[0]", message: "is not strictly inside" },
  { name: "except outside an IPv6 cidr", input: withPeer({ ipBlock: { cidr: "fd00::/16", except: ["fd01::/32"] } }), field: "spec.ingress[0].from[0].ipBlock.except[0]", message: "is not strictly inside" },
  // Ports.
  { name: "ports not a list", input: np({ ingress: [{ ports: 80 }] }), field: "spec.ingress[0].ports", message: "must be a list, not the number 80" },
  { name: "protocol ICMP", input: withPort({ protocol: "ICMP" }), field: "spec.ingress[0].ports[0].protocol", message: '"ICMP" is not one of "TCP", "UDP", "SCTP"' },
  { name: "protocol lowercase", input: withPort({ protocol: "tcp", port: 80 }), field: "spec.ingress[0].ports[0].protocol", message: '"tcp" is not one of' },
  { name: "port 0", input: withPort({ port: 0 }), field: "spec.ingress[0].ports[0].port", message: "0 is not between 1 and 65535" },
  { name: "port 65536", input: withPort({ port: 65536 }), field: "spec.ingress[0].ports[0].port", message: "65536 is not between 1 and 65535" },
  { name: "port a fraction", input: withPort({ port: 80.5 }), field: "spec.ingress[0].ports[0].port", message: "must be a port number or a port name, not the fraction 80.5" },
  { name: "port a boolean", input: withPort({ port: true }), field: "spec.ingress[0].ports[0].port", message: "must be a port number or a port name, not true" },
  { name: "port a quoted number is a name without letters", input: withPort({ port: "80" }), field: "spec.ingress[0].ports[0].port", message: '"80" is not a valid port name: must contain at least one letter' },
  { name: "port name uppercase", input: withPort({ port: "HTTP" }), field: "spec.ingress[0].ports[0].port", message: "may hold only lowercase letters, digits and '-'" },
  { name: "port name with --", input: withPort({ port: "web--1" }), field: "spec.ingress[0].ports[0].port", message: "may not contain '--'" },
  { name: "port name with leading -", input: withPort({ port: "-web" }), field: "spec.ingress[0].ports[0].port", message: "may not start or end with '-'" },
  { name: "port name with trailing -", input: withPort({ port: "web-" }), field: "spec.ingress[0].ports[0].port", message: "may not start or end with '-'" },
  { name: "port name too long", input: withPort({ port: "abcdefghij-12345" }), field: "spec.ingress[0].ports[0].port", message: "must be 1 to 15 characters" },
  { name: "port name empty", input: withPort({ port: "" }), field: "spec.ingress[0].ports[0].port", message: "must be 1 to 15 characters" },
  { name: "endPort below port", input: withPort({ port: 80, endPort: 70 }), field: "spec.ingress[0].ports[0].endPort", message: "70 is below port 80" },
  { name: "endPort above 65535", input: withPort({ port: 80, endPort: 65536 }), field: "spec.ingress[0].ports[0].endPort", message: "65536 is not between 1 and 65535" },
  { name: "endPort without port", input: withPort({ endPort: 90 }), field: "spec.ingress[0].ports[0].endPort", message: "requires a numeric port" },
  { name: "endPort with a named port", input: withPort({ port: "http", endPort: 90 }), field: "spec.ingress[0].ports[0].endPort", message: 'requires a numeric port, not the named port "http"' },
  { name: "endPort a string", input: withPort({ port: 80, endPort: "90" }), field: "spec.ingress[0].ports[0].endPort", message: 'must be a port number, not the string "90"' },
  { name: "egress port checked", input: np({ egress: [{ ports: [{ port: 70000 }] }] }), field: "spec.egress[0].ports[0].port", message: "70000 is not between 1 and 65535" },
  // policyTypes.
  { name: "policyTypes not a list", input: np({ policyTypes: "Ingress" }), field: "spec.policyTypes", message: "must be a list" },
  { name: "policyTypes unknown", input: np({ policyTypes: ["Ingress", "Both"] }), field: "spec.policyTypes[1]", message: '"Both" is not one of "Ingress", "Egress"' },
  { name: "policyTypes lowercase", input: np({ policyTypes: ["ingress"] }), field: "spec.policyTypes[0]", message: '"ingress" is not one of' },
  { name: "policyTypes duplicate", input: np({ policyTypes: ["Egress", "Ingress", "Egress"] }), field: "spec.policyTypes[2]", message: '"Egress" is listed twice' },
  { name: "policyTypes item not a string", input: np({ policyTypes: [{ type: "Ingress" }] }), field: "spec.policyTypes[0]", message: "must be a string, not an object" },
  // EBPFNetworkPolicy additions.
  { name: "action unknown", input: ebpf({ selector: {}, ingress: [{ action: "Reject" }] }), field: "spec.ingress[0].action", message: '"Reject" is not one of "Allow", "Deny"' },
  { name: "egress action unknown", input: ebpf({ selector: {}, egress: [{ action: "deny" }] }), field: "spec.egress[0].action", message: '"deny" is not one of "Allow", "Deny"' },
  { name: "mode unknown", input: ebpf({ selector: {}, mode: "Permissive" }), field: "spec.mode", message: '"Permissive" is not one of "Enforce", "Audit"' },
  { name: "mode not a string", input: ebpf({ selector: {}, mode: true }), field: "spec.mode", message: "must be a string, not true" },
  { name: "EBPF peers checked", input: ebpf({ selector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.0.0.0/4"] } }] }] }), field: "spec.ingress[0].from[0].ipBlock.except[0]", message: "is not strictly inside" },
];

describe("validatePolicy", () => {
  for (const [name, input] of goodPolicies) {
    test(`accepts ${name}`, () => assert.deepEqual(validatePolicy(input), []));
  }
  for (const bad of badPolicies) {
    test(`refuses ${bad.name}`, () => assertIssue(validatePolicy(bad.input), bad.field, bad.message));
  }

  test("reports every problem, not only the first", () => {
    const issues = validatePolicy(np({ podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 70 }, { protocol: "ICMP" }] }], policyTypes: ["Sideways"] }, { name: "Web" }));
    assert.deepEqual(issues.map((i) => i.field).sort(), [
      "metadata.name",
      "metadata.namespace",
      "spec.ingress[0].ports[0].endPort",
      "spec.ingress[0].ports[1].protocol",
      "spec.policyTypes[0]",
    ]);
  });

  test("NetworkPolicy has no action or mode: they are unknown fields there", () => {
    assert.deepEqual(validatePolicy(np({ podSelector: {}, mode: "Bogus", ingress: [{ action: "Bogus" }] })), []);
  });
});

const goodObjects: [string, unknown][] = [
  ["a Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { team: "shop" } } }],
  ["a Pod", pod()],
  ["a Pod without namespace", pod({ metadata: { name: "api" } })],
  ["a Pod with dual-stack IPs", pod({ status: { phase: "Running", podIP: "10.244.1.2", podIPs: [{ ip: "10.244.1.2" }, { ip: "fd00:10:244:1::2" }] } })],
  ["a Pod with only podIP", pod({ status: { podIP: "fd00::2" } })],
  ["a host-network Pod on a node", pod({ spec: { nodeName: "node-1", hostNetwork: true, containers: [{ name: "agent" }] } })],
  ["a Pod reusing a port name in another container", pod({ spec: { containers: [{ name: "a", ports: [{ name: "http", containerPort: 80 }] }, { name: "b", ports: [{ name: "http", containerPort: 81 }] }] } })],
  ["a Pod with an unnamed UDP port", pod({ spec: { containers: [{ name: "dns", ports: [{ containerPort: 53, protocol: "UDP" }] }] } })],
  ["a policy, through validateObject", np({ podSelector: {} })],
];

const badObjects: Bad[] = [
  { name: "an unknown kind", input: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }, field: "kind", message: '"ConfigMap" is not one of "Namespace", "Pod", "NetworkPolicy", "EBPFNetworkPolicy"' },
  { name: "a Namespace of the wrong apiVersion", input: { apiVersion: "apps/v1", kind: "Namespace", metadata: { name: "shop" } }, field: "apiVersion", message: '"apps/v1" is not "v1", the API version of Namespace' },
  { name: "a Namespace named like a subdomain", input: { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop.eu" } }, field: "metadata.name", message: '"shop.eu" is not a DNS-1123 label' },
  { name: "a Namespace with a bad label", input: { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { team: "a b" } } }, field: 'metadata.labels["team"]', message: "is not a valid label value" },
  { name: "a Pod with a capitalised name", input: pod({ metadata: { name: "API" } }), field: "metadata.name", message: '"API" is not a DNS-1123 subdomain' },
  { name: "a Pod without spec", input: { ...pod(), spec: undefined }, field: "spec", message: "is required" },
  { name: "a Pod without containers", input: pod({ spec: {} }), field: "spec.containers", message: "must list at least one container" },
  { name: "a Pod with an empty container list", input: pod({ spec: { containers: [] } }), field: "spec.containers", message: "must list at least one container" },
  { name: "a container without name", input: pod({ spec: { containers: [{ ports: [] }] } }), field: "spec.containers[0].name", message: "is required" },
  { name: "a container with a bad name", input: pod({ spec: { containers: [{ name: "Main" }] } }), field: "spec.containers[0].name", message: '"Main" is not a DNS-1123 label' },
  { name: "a port without number", input: pod({ spec: { containers: [{ name: "a", ports: [{ name: "http" }] }] } }), field: "spec.containers[0].ports[0].containerPort", message: "is required" },
  { name: "a port number too big", input: pod({ spec: { containers: [{ name: "a", ports: [{ containerPort: 70000 }] }] } }), field: "spec.containers[0].ports[0].containerPort", message: "70000 is not between 1 and 65535" },
  { name: "a port number as a string", input: pod({ spec: { containers: [{ name: "a", ports: [{ containerPort: "80" }] }] } }), field: "spec.containers[0].ports[0].containerPort", message: 'must be a port number, not the string "80"' },
  { name: "a port with a bad name", input: pod({ spec: { containers: [{ name: "a", ports: [{ name: "Http", containerPort: 80 }] }] } }), field: "spec.containers[0].ports[0].name", message: '"Http" is not a valid port name' },
  { name: "a port name twice in a container", input: pod({ spec: { containers: [{ name: "a", ports: [{ name: "http", containerPort: 80 }, { name: "http", containerPort: 81 }] }] } }), field: "spec.containers[0].ports[1].name", message: '"http" is already the name of another port of this container' },
  { name: "a port protocol ICMP", input: pod({ spec: { containers: [{ name: "a", ports: [{ containerPort: 80, protocol: "ICMP" }] }] } }), field: "spec.containers[0].ports[0].protocol", message: '"ICMP" is not one of' },
  { name: "hostNetwork not a boolean", input: pod({ spec: { hostNetwork: "yes", containers: [{ name: "a" }] } }), field: "spec.hostNetwork", message: 'must be true or false, not the string "yes"' },
  { name: "an invalid podIP", input: pod({ status: { podIP: "10.244.1.256" } }), field: "status.podIP", message: '"10.244.1.256" is not a valid IP address' },
  { name: "a podIP with leading zeros", input: pod({ status: { podIPs: [{ ip: "10.244.01.2" }] } }), field: "status.podIPs[0].ip", message: "is not a valid IP address" },
  { name: "podIPs entry without ip", input: pod({ status: { podIPs: [{}] } }), field: "status.podIPs[0].ip", message: "is required" },
  { name: "podIPs listing one address twice", input: pod({ status: { podIPs: [{ ip: "fd00::2" }, { ip: "FD00:0::2" }] } }), field: "status.podIPs[1].ip", message: '"FD00:0::2" is listed twice' },
  { name: "podIPs with two IPv4 addresses", input: pod({ status: { podIPs: [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }] } }), field: "status.podIPs[1].ip", message: "is a second IPv4 address" },
  { name: "podIPs[0] differing from podIP", input: pod({ status: { podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.2" }] } }), field: "status.podIPs[0].ip", message: '"10.0.0.2" differs from status.podIP "10.0.0.1"' },
];

describe("validateObject", () => {
  for (const [name, input] of goodObjects) {
    test(`accepts ${name}`, () => assert.deepEqual(validateObject(input), []));
  }
  for (const bad of badObjects) {
    test(`refuses ${bad.name}`, () => assertIssue(validateObject(bad.input), bad.field, bad.message));
  }
});

describe("PolicyError", () => {
  test("names kind, namespace/name, field and detail", () => {
    const error = new PolicyError({ kind: "EBPFNetworkPolicy", namespace: "ns", name: "name", field: "spec.ingress[0].ports[1].endPort", detail: "70 is below port 80" });
    assert.equal(error.message, 'Cannot load EBPFNetworkPolicy "ns/name": spec.ingress[0].ports[1].endPort 70 is below port 80');
    assert.equal(error.name, "PolicyError");
    assert.ok(error instanceof Error);
    assert.deepEqual([error.kind, error.namespace, error.objectName, error.field, error.detail], ["EBPFNetworkPolicy", "ns", "name", "spec.ingress[0].ports[1].endPort", "70 is below port 80"]);
  });

  test("says where the object came from, and handles cluster-scoped and unnamed objects", () => {
    assert.equal(new PolicyError({ kind: "Namespace", name: "shop", field: "metadata.name", detail: "x", source: "demo.yaml document 2" }).message, 'Cannot load Namespace "shop" (demo.yaml document 2): metadata.name x');
    assert.equal(new PolicyError({ kind: "object", field: "kind", detail: "is required" }).message, "Cannot load object (unnamed): kind is required");
    assert.equal(new PolicyError({ kind: "object", field: "", detail: "must be an object, not null" }).message, "Cannot load object (unnamed): must be an object, not null");
  });

  test("carries its cause", () => {
    const cause = new Error("parse failure");
    assert.equal(new PolicyError({ kind: "Pod", field: "", detail: "x", cause }).cause, cause);
  });
});

describe("field helpers", () => {
  test("portNameProblem lists every reason", () => {
    assert.equal(portNameProblem("http"), undefined);
    assert.equal(portNameProblem("-A--"), `"-A--" is not a valid port name: may hold only lowercase letters, digits and '-', must contain at least one letter, may not contain '--', may not start or end with '-'`);
  });
});
