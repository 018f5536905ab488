/**
 * Validation of the objects policy input is made of: NetworkPolicy and
 * EBPFNetworkPolicy (everything the Kubernetes API server checks for
 * NetworkPolicy, plus the CRD rules of EBPFNetworkPolicy), and the Namespace
 * and Pod fields policy reads. Input is untrusted parsed YAML/JSON, so every
 * type is checked too. Unknown fields are ignored, as `kubectl apply` does
 * after a schema warning; `null` counts as absent, as in Go's JSON decoding.
 *
 * @module
 */
import { canonicalIp, cidrContains, ipFamily, IpParseError, isIpv4MappedPrefix, parseCidr } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import { validateHttpRules } from "./http-rule.ts";
import { validateSubjectAltNames } from "./tls-client-certificate.ts";
import { validateServerNames } from "./tls-server-name.ts";

/** One problem with an object: the field it is about and what is wrong with it. */
export interface ValidationIssue {
  /** Path of the field, e.g. `spec.ingress[0].ports[1].endPort`; `""` for the object itself. */
  field: string;
  /** What is wrong, written to follow the field name, e.g. `70 is below port 80`. */
  message: string;
}

/** What {@link PolicyError} says about the object it is about. */
export interface PolicyErrorOptions {
  /** The object's kind, or `"object"` when it has none. */
  kind: string;
  namespace?: string;
  name?: string;
  /** Field path inside the object, `""` for the whole object. */
  field: string;
  detail: string;
  /** Where the object came from, e.g. `demo.yaml document 3`. */
  source?: string;
  cause?: unknown;
}

/**
 * An object of policy input that cannot be loaded: a policy, or a Pod or
 * Namespace policy is evaluated against.
 *
 * @example
 * ```ts
 * new PolicyError({ kind: "EBPFNetworkPolicy", namespace: "ns", name: "web", field: "spec.ingress[0].ports[1].endPort", detail: "70 is below port 80" }).message;
 * // 'Cannot load EBPFNetworkPolicy "ns/web": spec.ingress[0].ports[1].endPort 70 is below port 80'
 * ```
 */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly objectName: string | undefined;
  readonly field: string;
  readonly detail: string;
  readonly source: string | undefined;

  constructor(options: PolicyErrorOptions) {
    const { kind, namespace, name, field, detail, source, cause } = options;
    const ref = name === undefined ? "(unnamed)" : JSON.stringify(namespace === undefined ? name : `${namespace}/${name}`);
    const where = source === undefined ? "" : ` (${source})`;
    super(`Cannot load ${kind} ${ref}${where}: ${field === "" ? "" : `${field} `}${detail}`, { cause });
    this.kind = kind;
    this.namespace = namespace;
    this.objectName = name;
    this.field = field;
    this.detail = detail;
    this.source = source;
  }
}

/** API version of each kind policy input may hold. */
export const API_VERSIONS = {
  Namespace: "v1",
  Pod: "v1",
  NetworkPolicy: "networking.k8s.io/v1",
  EBPFNetworkPolicy: "palisade.dev/v1alpha1",
} as const;

/** Kinds policy input may hold, besides lists of them. */
export type ObjectKind = keyof typeof API_VERSIONS;

const PROTOCOLS = ["TCP", "UDP", "SCTP"];
const POLICY_TYPES = ["Ingress", "Egress"];
const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"];

/**
 * Checks a NetworkPolicy or EBPFNetworkPolicy.
 *
 * @example
 * ```ts
 * validatePolicy({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "x", namespace: "ns" }, spec: { podSelector: {} } });
 * // []
 * ```
 */
export function validatePolicy(obj: unknown): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const root = objectAt(obj, "", issues, "item");
  if (root === undefined) return issues;
  const kind = stringAt(root, "kind", "kind", issues, true);
  if (kind === undefined) return issues;
  if (kind !== "NetworkPolicy" && kind !== "EBPFNetworkPolicy") {
    issues.push({ field: "kind", message: `${JSON.stringify(kind)} is not a policy kind: expected "NetworkPolicy" or "EBPFNetworkPolicy"` });
    return issues;
  }
  checkPolicy(root, kind, issues);
  return issues;
}

/**
 * Checks any object policy input may hold: a Namespace, a Pod, or either
 * policy kind. Other kinds are reported at the `kind` field.
 *
 * @example
 * ```ts
 * validateObject({ apiVersion: "v1", kind: "Namespace", metadata: { name: "Shop" } });
 * // [{ field: "metadata.name", message: '"Shop" is not a DNS-1123 label: ...' }]
 * ```
 */
export function validateObject(obj: unknown): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const root = objectAt(obj, "", issues, "item");
  if (root === undefined) return issues;
  const kind = stringAt(root, "kind", "kind", issues, true);
  if (kind === undefined) return issues;
  switch (kind) {
    case "NetworkPolicy":
    case "EBPFNetworkPolicy":
      checkPolicy(root, kind, issues);
      break;
    case "Pod":
      checkPod(root, issues);
      break;
    case "Namespace":
      checkApiVersion(root, kind, issues);
      checkMetadata(root, issues, { name: "label", namespace: "ignored" });
      break;
    default:
      issues.push({ field: "kind", message: `${JSON.stringify(kind)} is not one of ${quoteList(Object.keys(API_VERSIONS))}` });
  }
  return issues;
}

/** Whether `inner` lies strictly inside `outer`: same family, longer prefix, and inside it. */
function strictlyInside(inner: Cidr, outer: Cidr): boolean {
  return inner.prefixLen > outer.prefixLen && cidrContains(outer, inner);
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Why `text` is not a DNS-1123 label (namespace names), or undefined when it is one. */
export function dns1123LabelProblem(text: string): string | undefined {
  if (text.length <= 63 && DNS1123_LABEL.test(text)) return undefined;
  return `${JSON.stringify(text)} is not a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit`;
}

/** Why `text` is not a DNS-1123 subdomain (object names), or undefined when it is one. */
export function dns1123SubdomainProblem(text: string): string | undefined {
  if (text.length <= 253 && DNS1123_SUBDOMAIN.test(text)) return undefined;
  return `${JSON.stringify(text)} is not a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit`;
}

/** Why `text` is not a valid label key (`[prefix/]name`), or undefined when it is one. */
export function labelKeyProblem(text: string): string | undefined {
  const parts = text.split("/");
  if (parts.length > 2) return `${JSON.stringify(text)} is not a valid label key: at most one '/'`;
  const name = parts.length === 2 ? (parts[1] ?? "") : text;
  if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    if (prefix === "" || dns1123SubdomainProblem(prefix) !== undefined) {
      return `${JSON.stringify(text)} is not a valid label key: prefix ${JSON.stringify(prefix)} must be a DNS-1123 subdomain`;
    }
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `${JSON.stringify(text)} is not a valid label key: the name part must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Why `text` is not a valid label value, or undefined when it is one. */
export function labelValueProblem(text: string): string | undefined {
  if (text === "" || (text.length <= 63 && LABEL_NAME.test(text))) return undefined;
  return `${JSON.stringify(text)} is not a valid label value: empty, or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
}

/** Why `text` is not a valid IANA_SVC_NAME (named ports), or undefined when it is one. */
export function portNameProblem(text: string): string | undefined {
  const reasons: string[] = [];
  if (text.length < 1 || text.length > 15) reasons.push("must be 1 to 15 characters");
  if (!/^[-a-z0-9]*$/.test(text)) reasons.push("may hold only lowercase letters, digits and '-'");
  if (!/[a-z]/.test(text)) reasons.push("must contain at least one letter");
  if (text.includes("--")) reasons.push("may not contain '--'");
  if (text.startsWith("-") || text.endsWith("-")) reasons.push("may not start or end with '-'");
  return reasons.length === 0 ? undefined : `${JSON.stringify(text)} is not a valid port name: ${reasons.join(", ")}`;
}

type Fields = Record<string, unknown>;

function checkPolicy(root: Fields, kind: "NetworkPolicy" | "EBPFNetworkPolicy", issues: ValidationIssue[]): void {
  checkApiVersion(root, kind, issues);
  checkMetadata(root, issues, { name: "subdomain", namespace: "required" });
  const ebpf = kind === "EBPFNetworkPolicy";
  // NetworkPolicy's spec and podSelector may be omitted: they default to {} (select every pod of the namespace).
  const spec = objectAt(root.spec, "spec", issues, ebpf ? "required" : "optional");
  if (spec === undefined) return;
  const selectorField = ebpf ? "selector" : "podSelector";
  checkSelector(spec[selectorField], `spec.${selectorField}`, issues, ebpf);
  checkEnumSet(spec.policyTypes, "spec.policyTypes", POLICY_TYPES, issues);
  for (const [direction, peersKey] of [["ingress", "from"], ["egress", "to"]] as const) {
    listAt(spec[direction], `spec.${direction}`, issues)?.forEach((rule, i) => {
      checkRule(rule, `spec.${direction}[${i}]`, peersKey, ebpf, issues);
    });
  }
  if (ebpf) checkEnum(spec.mode, "spec.mode", ["Enforce", "Audit"], issues);
}

function checkRule(value: unknown, path: string, peersKey: "from" | "to", ebpf: boolean, issues: ValidationIssue[]): void {
  const rule = objectAt(value, path, issues, "item");
  if (rule === undefined) return;
  listAt(rule[peersKey], `${path}.${peersKey}`, issues)?.forEach((peer, i) => checkPeer(peer, `${path}.${peersKey}[${i}]`, issues));
  listAt(rule.ports, `${path}.ports`, issues)?.forEach((port, i) => checkPort(port, `${path}.ports[${i}]`, issues));
  if (!ebpf) return;
  const action = checkEnum(rule.action, `${path}.action`, ["Allow", "Deny"], issues);
  checkTcp(rule, action, path, issues);
  checkHttp(rule, path, issues);
  checkTls(rule, path, action, peersKey === "to", issues);
}

/** `tcp` narrows what an Allow rule admits of TCP: on a Deny rule, or beside ports of other protocols, it would mean nothing. */
function checkTcp(rule: Fields, action: string | undefined, path: string, issues: ValidationIssue[]): void {
  const tcp = objectAt(rule.tcp, `${path}.tcp`, issues, "optional");
  if (tcp === undefined) return;
  if (tcp.strict !== undefined && tcp.strict !== null && typeof tcp.strict !== "boolean") {
    issues.push({ field: `${path}.tcp.strict`, message: `must be true or false, not ${describe(tcp.strict)}` });
  }
  limitAt(tcp.maxConnectionsPerSource, `${path}.tcp.maxConnectionsPerSource`, issues);
  const rate = objectAt(tcp.newConnectionsPerSecond, `${path}.tcp.newConnectionsPerSecond`, issues, "optional");
  if (rate !== undefined) {
    const ratePath = `${path}.tcp.newConnectionsPerSecond`;
    const average = limitAt(rate.average, `${ratePath}.average`, issues, true);
    const burst = limitAt(rate.burst, `${ratePath}.burst`, issues, true);
    if (average !== undefined && burst !== undefined && burst < average) {
      issues.push({ field: `${ratePath}.burst`, message: `${burst} is below average ${average}: the bucket must hold at least one second of tokens` });
    }
  }
  if (action === "Deny") issues.push({ field: `${path}.tcp`, message: TCP_ON_DENY });
  checkTcpPorts(rule, path, "tcp", issues);
}

/** A rule setting `field` (tcp, http) is about TCP: each port it lists must be TCP (the default protocol). */
function checkTcpPorts(rule: Fields, path: string, field: string, issues: ValidationIssue[]): void {
  listAt(rule.ports, `${path}.ports`, issues)?.forEach((port, i) => {
    const protocol = (port as Fields | null)?.protocol;
    if (typeof protocol === "string" && protocol !== "TCP") {
      issues.push({ field: `${path}.ports[${i}].protocol`, message: `is ${JSON.stringify(protocol)}, but the rule sets ${field}: its ports must all be TCP` });
    }
  });
}

/**
 * `http` judges the requests of the rule's TCP ports: it needs ports (without them the rule covers every
 * protocol, and a UDP or ICMP packet has no request to judge), all TCP; its entries are checked by
 * validateHttpRules, whose messages start with the field they are about.
 */
function checkHttp(rule: Fields, path: string, issues: ValidationIssue[]): void {
  if (rule.http === undefined || rule.http === null) return;
  for (const message of validateHttpRules(rule.http, `${path}.http`)) {
    const at = message.indexOf(": ");
    issues.push({ field: message.slice(0, at), message: message.slice(at + 2) });
  }
  if (!Array.isArray(rule.ports) || rule.ports.length === 0) issues.push({ field: `${path}.ports`, message: HTTP_WITHOUT_PORTS });
  checkTcpPorts(rule, path, "http", issues);
}

/**
 * `tls` judges the TLS connections of the rule's TCP ports: like `http`, it needs ports, all TCP. Without
 * termination it reads the ClientHello only, so it needs `serverNames` and cannot judge requests (`http`).
 * Termination and client certificates are for ingress Allow rules: the certificate is presented to the
 * rule's clients, and a Deny rule admits nothing to terminate.
 */
function checkTls(rule: Fields, path: string, action: string | undefined, egress: boolean, issues: ValidationIssue[]): void {
  const tls = objectAt(rule.tls, `${path}.tls`, issues, "optional");
  if (tls === undefined) return;
  for (const key of Object.keys(tls)) {
    if (!["serverNames", "termination", "clientCertificate"].includes(key)) issues.push({ field: `${path}.tls.${key}`, message: 'is not a field of tls: expected "serverNames", "termination" or "clientCertificate"' });
  }
  const termination = objectAt(tls.termination, `${path}.tls.termination`, issues, "optional");
  const present = (value: unknown): boolean => value !== undefined && value !== null;
  if (!present(tls.serverNames)) {
    if (termination === undefined) issues.push({ field: `${path}.tls.serverNames`, message: TLS_WITHOUT_SERVER_NAMES });
  } else {
    for (const message of validateServerNames(tls.serverNames, `${path}.tls.serverNames`)) issues.push(issueOf(message));
  }
  if (termination !== undefined) {
    const certificate = objectAt(termination.certificate, `${path}.tls.termination.certificate`, issues, "required");
    if (certificate !== undefined) objectNameAt(certificate, "secretName", `${path}.tls.termination.certificate.secretName`, issues);
    const upstream = checkEnum(termination.upstream, `${path}.tls.termination.upstream`, ["Plain", "TLS"], issues);
    if (upstream === "TLS") configMapKeyAt(termination.upstreamCA, `${path}.tls.termination.upstreamCA`, issues, "required");
    else if (present(termination.upstreamCA)) issues.push({ field: `${path}.tls.termination.upstreamCA`, message: UPSTREAM_CA_WITHOUT_TLS });
    checkEnumSet(termination.alpn, `${path}.tls.termination.alpn`, ["h2", "http/1.1"], issues);
    if (Array.isArray(termination.alpn) && termination.alpn.length === 0) issues.push({ field: `${path}.tls.termination.alpn`, message: "must name at least one protocol (or be left out)" });
    if (action === "Deny") issues.push({ field: `${path}.tls.termination`, message: TERMINATION_ON_DENY });
    if (egress) issues.push({ field: `${path}.tls.termination`, message: TERMINATION_ON_EGRESS });
  }
  const client = objectAt(tls.clientCertificate, `${path}.tls.clientCertificate`, issues, "optional");
  if (client !== undefined) {
    configMapKeyAt(client.ca, `${path}.tls.clientCertificate.ca`, issues, "required");
    if (!present(client.subjectAltNames)) issues.push({ field: `${path}.tls.clientCertificate.subjectAltNames`, message: "is required" });
    else for (const message of validateSubjectAltNames(client.subjectAltNames, `${path}.tls.clientCertificate.subjectAltNames`)) issues.push(issueOf(message));
    if (termination === undefined) issues.push({ field: `${path}.tls.clientCertificate`, message: CLIENT_CERTIFICATE_WITHOUT_TERMINATION });
  }
  if (!Array.isArray(rule.ports) || rule.ports.length === 0) issues.push({ field: `${path}.ports`, message: TLS_WITHOUT_PORTS });
  checkTcpPorts(rule, path, "tls", issues);
  if (present(rule.http) && termination === undefined) issues.push({ field: `${path}.tls`, message: TLS_WITH_HTTP });
}

/** A message of the policy layer's list validators (`field: what`) as an issue. */
function issueOf(message: string): ValidationIssue {
  const at = message.indexOf(": ");
  return { field: message.slice(0, at), message: message.slice(at + 2) };
}

/** The name of an object of the policy's namespace: a DNS-1123 subdomain. */
function objectNameAt(obj: Fields, key: string, path: string, issues: ValidationIssue[]): void {
  const name = stringAt(obj, key, path, issues, true);
  const problem = name === undefined ? undefined : dns1123SubdomainProblem(name);
  if (problem !== undefined) issues.push({ field: path, message: problem });
}

/** A ConfigMap key's allowed characters (as the API server checks them). */
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/;

/** A `{configMapName, key}` reference. */
function configMapKeyAt(value: unknown, path: string, issues: ValidationIssue[], presence: Presence): void {
  const ref = objectAt(value, path, issues, presence);
  if (ref === undefined) return;
  objectNameAt(ref, "configMapName", `${path}.configMapName`, issues);
  const key = stringAt(ref, "key", `${path}.key`, issues, true);
  if (key !== undefined && (key.length > 253 || !CONFIG_MAP_KEY.test(key) || key === "." || key === "..")) {
    issues.push({ field: `${path}.key`, message: `${JSON.stringify(key)} is not a ConfigMap key: at most 253 letters, digits, '-', '_' and '.', not "." or ".."` });
  }
}

/** What `tls` without `serverNames` nor `termination` is refused with, here and by the CRD. */
export const TLS_WITHOUT_SERVER_NAMES = "is required unless tls.termination is set: without termination a rule judges TLS connections by their server name only";

/** What `clientCertificate` without `termination` is refused with, here and by the CRD. */
export const CLIENT_CERTIFICATE_WITHOUT_TERMINATION = "requires tls.termination: a client certificate is judged in a handshake with the proxy (in TLS 1.3 it is encrypted)";

/** What `termination` on a Deny rule is refused with, here and by the CRD. */
export const TERMINATION_ON_DENY = "applies to Allow rules only: a Deny rule admits no connection to terminate";

/** What `termination` on an egress rule is refused with, here and by the CRD. */
export const TERMINATION_ON_EGRESS = "is not supported on egress rules: the proxy terminates TLS for the servers a policy selects (ingress rules)";

/** What `upstreamCA` without `upstream: TLS` is refused with, here and by the CRD. */
export const UPSTREAM_CA_WITHOUT_TLS = "is set, but upstream is not TLS: the CA verifies the pod's certificate when the proxy re-encrypts to it";

/** What `tls` on a rule without ports is refused with, here and by the CRD. */
export const TLS_WITHOUT_PORTS = "must list the TCP ports whose TLS connections the rule's tls judges";

/** What a rule with both `http` and `tls` is refused with, here and by the CRD. */
export const TLS_WITH_HTTP = "is set together with http but without termination: requests inside TLS can be judged only when the proxy terminates it (tls.termination); otherwise put http and tls in separate rules";

/** What `http` on a rule without ports is refused with, here and by the CRD. */
export const HTTP_WITHOUT_PORTS = "must list the TCP ports whose requests the rule's http entries judge";

/** What `tcp` on a Deny rule is refused with, here and by the CRD. */
export const TCP_ON_DENY = "applies to Allow rules only: a Deny rule drops its traffic whatever its TCP flags or connections";

/** The largest connection count and rate a TCP limit takes (`maxConnectionsPerSource`, `average`, `burst`). */
export const MAX_TCP_LIMIT = 1_000_000;

/** A TCP limit: an integer from 1 to {@link MAX_TCP_LIMIT}; absent (or null) is no limit unless `required`. */
function limitAt(value: unknown, path: string, issues: ValidationIssue[], required = false): number | undefined {
  if (value === undefined || value === null) {
    if (required) issues.push({ field: path, message: "is required" });
    return undefined;
  }
  if (typeof value !== "number" || !Number.isInteger(value)) {
    issues.push({ field: path, message: `must be a whole number, not ${describe(value)}` });
    return undefined;
  }
  if (value < 1 || value > MAX_TCP_LIMIT) {
    issues.push({ field: path, message: `${value} is not between 1 and ${MAX_TCP_LIMIT}` });
    return undefined;
  }
  return value;
}

function checkPeer(value: unknown, path: string, issues: ValidationIssue[]): void {
  const peer = objectAt(value, path, issues, "item");
  if (peer === undefined) return;
  const has = (key: string): boolean => peer[key] !== undefined && peer[key] !== null;
  if (!has("ipBlock") && !has("podSelector") && !has("namespaceSelector")) {
    issues.push({ field: path, message: "must set ipBlock, or podSelector and/or namespaceSelector" });
    return;
  }
  if (has("ipBlock") && (has("podSelector") || has("namespaceSelector"))) {
    issues.push({ field: path, message: `sets ipBlock together with ${has("podSelector") ? "podSelector" : "namespaceSelector"}: ipBlock must be the only peer field` });
  }
  checkSelector(peer.podSelector, `${path}.podSelector`, issues, false);
  checkSelector(peer.namespaceSelector, `${path}.namespaceSelector`, issues, false);
  checkIpBlock(peer.ipBlock, `${path}.ipBlock`, issues);
}

function checkIpBlock(value: unknown, path: string, issues: ValidationIssue[]): void {
  const block = objectAt(value, path, issues, "optional");
  if (block === undefined) return;
  const cidrText = stringAt(block, "cidr", `${path}.cidr`, issues, true);
  const cidr = cidrText === undefined ? undefined : cidrAt(cidrText, `${path}.cidr`, issues);
  listAt(block.except, `${path}.except`, issues)?.forEach((item, i) => {
    const itemPath = `${path}.except[${i}]`;
    const text = stringValue(item, itemPath, issues);
    const except = text === undefined ? undefined : cidrAt(text, itemPath, issues);
    if (except === undefined || cidr === undefined || cidrText === undefined || text === undefined) return;
    if (!strictlyInside(except, cidr)) issues.push({ field: itemPath, message: `${JSON.stringify(text)} is not strictly inside cidr ${JSON.stringify(cidrText)}` });
  });
}

function cidrAt(text: string, path: string, issues: ValidationIssue[]): Cidr | undefined {
  try {
    const cidr = parseCidr(text);
    if (isIpv4MappedPrefix(cidr)) {
      // Two readings of one text: Kubernetes (Go) takes it for the IPv4 CIDR of the mapped addresses.
      issues.push({ field: path, message: `${JSON.stringify(text)} is not a valid CIDR: is an IPv4-mapped IPv6 prefix, which some readers take for an IPv4 CIDR; write the IPv4 CIDR` });
      return undefined;
    }
    return cidr;
  } catch (error) {
    if (!(error instanceof IpParseError)) throw error;
    issues.push({ field: path, message: `${JSON.stringify(text)} is not a valid CIDR: ${error.reason}` });
    return undefined;
  }
}

function checkPort(value: unknown, path: string, issues: ValidationIssue[]): void {
  const entry = objectAt(value, path, issues, "item");
  if (entry === undefined) return;
  checkEnum(entry.protocol, `${path}.protocol`, PROTOCOLS, issues);
  const port = entry.port ?? undefined;
  const endPort = entry.endPort ?? undefined;
  const endPortNumber = endPort === undefined ? undefined : portNumberAt(endPort, `${path}.endPort`, issues);
  if (port === undefined) {
    if (endPort !== undefined) issues.push({ field: `${path}.endPort`, message: "requires a numeric port" });
    return;
  }
  if (typeof port === "string") {
    const problem = portNameProblem(port);
    if (problem !== undefined) issues.push({ field: `${path}.port`, message: problem });
    if (endPort !== undefined) issues.push({ field: `${path}.endPort`, message: `requires a numeric port, not the named port ${JSON.stringify(port)}` });
    return;
  }
  const portNumber = portNumberAt(port, `${path}.port`, issues, "a port number or a port name");
  if (portNumber !== undefined && endPortNumber !== undefined && endPortNumber < portNumber) {
    issues.push({ field: `${path}.endPort`, message: `${endPortNumber} is below port ${portNumber}` });
  }
}

function portNumberAt(value: unknown, path: string, issues: ValidationIssue[], expected = "a port number"): number | undefined {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    issues.push({ field: path, message: `must be ${expected}, not ${describe(value)}` });
    return undefined;
  }
  if (value < 1 || value > 65535) {
    issues.push({ field: path, message: `${value} is not between 1 and 65535` });
    return undefined;
  }
  return value;
}

function checkSelector(value: unknown, path: string, issues: ValidationIssue[], required: boolean): void {
  const selector = objectAt(value, path, issues, required ? "required" : "optional");
  if (selector === undefined) return;
  checkLabels(selector.matchLabels, `${path}.matchLabels`, issues);
  listAt(selector.matchExpressions, `${path}.matchExpressions`, issues)?.forEach((item, i) => {
    const itemPath = `${path}.matchExpressions[${i}]`;
    const requirement = objectAt(item, itemPath, issues, "item");
    if (requirement === undefined) return;
    const key = stringAt(requirement, "key", `${itemPath}.key`, issues, true);
    if (key !== undefined) {
      const problem = labelKeyProblem(key);
      if (problem !== undefined) issues.push({ field: `${itemPath}.key`, message: problem });
    }
    const operator = checkEnum(requirement.operator, `${itemPath}.operator`, OPERATORS, issues, true);
    const values = listAt(requirement.values, `${itemPath}.values`, issues) ?? [];
    values.forEach((v, j) => {
      const text = stringValue(v, `${itemPath}.values[${j}]`, issues);
      const problem = text === undefined ? undefined : labelValueProblem(text);
      if (problem !== undefined) issues.push({ field: `${itemPath}.values[${j}]`, message: problem });
    });
    if ((operator === "In" || operator === "NotIn") && values.length === 0) {
      issues.push({ field: `${itemPath}.values`, message: `must not be empty when operator is ${JSON.stringify(operator)}` });
    }
    if ((operator === "Exists" || operator === "DoesNotExist") && values.length > 0) {
      issues.push({ field: `${itemPath}.values`, message: `must be empty when operator is ${JSON.stringify(operator)}` });
    }
  });
}

function checkLabels(value: unknown, path: string, issues: ValidationIssue[]): void {
  const labels = objectAt(value, path, issues, "optional");
  if (labels === undefined) return;
  for (const [key, v] of Object.entries(labels)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) issues.push({ field: path, message: `key ${keyProblem}` });
    const itemPath = `${path}[${JSON.stringify(key)}]`;
    if (typeof v !== "string") {
      issues.push({ field: itemPath, message: `must be a string, not ${describe(v)}` });
      continue;
    }
    const valueProblem = labelValueProblem(v);
    if (valueProblem !== undefined) issues.push({ field: itemPath, message: valueProblem });
  }
}

function checkApiVersion(root: Fields, kind: ObjectKind, issues: ValidationIssue[]): void {
  const apiVersion = stringAt(root, "apiVersion", "apiVersion", issues, true);
  const expected = API_VERSIONS[kind];
  if (apiVersion !== undefined && apiVersion !== expected) {
    issues.push({ field: "apiVersion", message: `${JSON.stringify(apiVersion)} is not ${JSON.stringify(expected)}, the API version of ${kind}` });
  }
}

interface MetadataRules {
  name: "label" | "subdomain";
  namespace: "required" | "optional" | "ignored";
}

function checkMetadata(root: Fields, issues: ValidationIssue[], rules: MetadataRules): void {
  const meta = objectAt(root.metadata, "metadata", issues, "required");
  if (meta === undefined) return;
  const name = stringAt(meta, "name", "metadata.name", issues, true);
  if (name !== undefined) {
    const problem = rules.name === "label" ? dns1123LabelProblem(name) : dns1123SubdomainProblem(name);
    if (problem !== undefined) issues.push({ field: "metadata.name", message: problem });
  }
  if (rules.namespace !== "ignored") {
    const namespace = stringAt(meta, "namespace", "metadata.namespace", issues, rules.namespace === "required");
    const problem = namespace === undefined ? undefined : dns1123LabelProblem(namespace);
    if (problem !== undefined) issues.push({ field: "metadata.namespace", message: problem });
  }
  checkLabels(meta.labels, "metadata.labels", issues);
}

function checkPod(root: Fields, issues: ValidationIssue[]): void {
  checkApiVersion(root, "Pod", issues);
  checkMetadata(root, issues, { name: "subdomain", namespace: "optional" });
  const spec = objectAt(root.spec, "spec", issues, "required");
  if (spec !== undefined) {
    stringAt(spec, "nodeName", "spec.nodeName", issues, false);
    if (spec.hostNetwork !== undefined && spec.hostNetwork !== null && typeof spec.hostNetwork !== "boolean") {
      issues.push({ field: "spec.hostNetwork", message: `must be true or false, not ${describe(spec.hostNetwork)}` });
    }
    const containers = listAt(spec.containers, "spec.containers", issues);
    if (containers === undefined || containers.length === 0) issues.push({ field: "spec.containers", message: "must list at least one container" });
    containers?.forEach((item, i) => checkContainer(item, `spec.containers[${i}]`, issues));
  }
  const status = objectAt(root.status, "status", issues, "optional");
  if (status === undefined) return;
  stringAt(status, "phase", "status.phase", issues, false);
  const podIP = stringAt(status, "podIP", "status.podIP", issues, false);
  if (podIP !== undefined && ipFamily(podIP) === 0) issues.push({ field: "status.podIP", message: `${JSON.stringify(podIP)} is not a valid IP address` });
  const seen: string[] = [];
  listAt(status.podIPs, "status.podIPs", issues)?.forEach((item, i) => {
    const path = `status.podIPs[${i}].ip`;
    const entry = objectAt(item, `status.podIPs[${i}]`, issues, "item");
    const ip = entry === undefined ? undefined : stringAt(entry, "ip", path, issues, true);
    if (ip === undefined) return;
    const family = ipFamily(ip);
    if (family === 0) {
      issues.push({ field: path, message: `${JSON.stringify(ip)} is not a valid IP address` });
      return;
    }
    const canonical = canonicalIp(ip);
    if (seen.some((other) => canonicalIp(other) === canonical)) issues.push({ field: path, message: `${JSON.stringify(ip)} is listed twice` });
    else if (seen.some((other) => ipFamily(other) === family)) issues.push({ field: path, message: `${JSON.stringify(ip)} is a second IPv${family} address: a pod has at most one per family` });
    else if (i === 0 && podIP !== undefined && ipFamily(podIP) !== 0 && canonicalIp(podIP) !== canonical) {
      issues.push({ field: path, message: `${JSON.stringify(ip)} differs from status.podIP ${JSON.stringify(podIP)}` });
    }
    seen.push(ip);
  });
}

function checkContainer(value: unknown, path: string, issues: ValidationIssue[]): void {
  const container = objectAt(value, path, issues, "item");
  if (container === undefined) return;
  const name = stringAt(container, "name", `${path}.name`, issues, true);
  const nameProblem = name === undefined ? undefined : dns1123LabelProblem(name);
  if (nameProblem !== undefined) issues.push({ field: `${path}.name`, message: nameProblem });
  const portNames = new Set<string>();
  listAt(container.ports, `${path}.ports`, issues)?.forEach((item, i) => {
    const portPath = `${path}.ports[${i}]`;
    const port = objectAt(item, portPath, issues, "item");
    if (port === undefined) return;
    if (port.containerPort === undefined || port.containerPort === null) issues.push({ field: `${portPath}.containerPort`, message: "is required" });
    else portNumberAt(port.containerPort, `${portPath}.containerPort`, issues);
    checkEnum(port.protocol, `${portPath}.protocol`, PROTOCOLS, issues);
    const portName = stringAt(port, "name", `${portPath}.name`, issues, false);
    if (portName === undefined) return;
    const problem = portNameProblem(portName);
    if (problem !== undefined) issues.push({ field: `${portPath}.name`, message: problem });
    else if (portNames.has(portName)) issues.push({ field: `${portPath}.name`, message: `${JSON.stringify(portName)} is already the name of another port of this container` });
    portNames.add(portName);
  });
}

function checkEnum(value: unknown, path: string, allowed: string[], issues: ValidationIssue[], required = false): string | undefined {
  if (value === undefined || value === null) {
    if (required) issues.push({ field: path, message: "is required" });
    return undefined;
  }
  const text = stringValue(value, path, issues);
  if (text === undefined) return undefined;
  if (!allowed.includes(text)) {
    issues.push({ field: path, message: `${JSON.stringify(text)} is not one of ${quoteList(allowed)}` });
    return undefined;
  }
  return text;
}

/** How a value must be present: a field that may be absent, a field that must be present, or an item of a list (never null). */
type Presence = "optional" | "required" | "item";

function objectAt(value: unknown, path: string, issues: ValidationIssue[], presence: Presence): Fields | undefined {
  if (value === undefined || (value === null && presence !== "item")) {
    if (presence === "required") issues.push({ field: path, message: "is required" });
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    issues.push({ field: path, message: `must be an object, not ${describe(value)}` });
    return undefined;
  }
  return value as Fields;
}

/** A list of distinct values of `allowed` (a set): each entry checked, a repeated one refused. */
function checkEnumSet(value: unknown, path: string, allowed: string[], issues: ValidationIssue[]): void {
  const list = listAt(value, path, issues);
  list?.forEach((entry, i) => {
    const text = checkEnum(entry, `${path}[${i}]`, allowed, issues, true);
    if (text !== undefined && list.indexOf(entry) !== i) issues.push({ field: `${path}[${i}]`, message: `${JSON.stringify(text)} is listed twice` });
  });
}

function listAt(value: unknown, path: string, issues: ValidationIssue[]): unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    issues.push({ field: path, message: `must be a list, not ${describe(value)}` });
    return undefined;
  }
  return value;
}

function stringAt(obj: Fields, key: string, path: string, issues: ValidationIssue[], required: boolean): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) {
    if (required) issues.push({ field: path, message: "is required" });
    return undefined;
  }
  const text = stringValue(value, path, issues);
  if (text === "" && required) {
    issues.push({ field: path, message: "must not be empty" });
    return undefined;
  }
  return text;
}

function stringValue(value: unknown, path: string, issues: ValidationIssue[]): string | undefined {
  if (typeof value === "string") return value;
  issues.push({ field: path, message: `must be a string, not ${describe(value)}` });
  return undefined;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return `the string ${JSON.stringify(value)}`;
    case "number":
      return Number.isInteger(value) ? `the number ${value}` : `the fraction ${value}`;
    case "boolean":
      return `${value}`;
    case "object":
      return "an object";
    default:
      return `a ${typeof value}`;
  }
}

function quoteList(items: readonly string[]): string {
  return items.map((item) => JSON.stringify(item)).join(", ");
}
