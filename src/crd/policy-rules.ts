/**
 * The CEL rules and bounds of the EBPFNetworkPolicy CRD: the checks of
 * `src/policy/validate.ts` the API server can make itself, so bad input is
 * refused where it enters, with the field named. Messages follow the field
 * path the API server prints before them (`spec.ingress[0].ports[0].endPort:
 * Invalid value: "object": 70 is below port 80`).
 *
 * List bounds exist for the CEL cost estimate: without them the API server
 * assumes lists as long as a whole request allows and refuses the rules as too
 * expensive. They are far above what a real policy holds.
 *
 * @module
 */
import { LABEL_KEY_SCHEMA, LABEL_VALUE_SCHEMA, labelMapRefinements } from "./label-rules.ts";
import type { SchemaRefinement } from "./refinements.ts";
import { HTTP_RULE_LIMITS } from "../policy/http-rule.ts";
import { MAX_SUBJECT_ALT_NAME_LENGTH, MAX_SUBJECT_ALT_NAMES, URI_SUBJECT_ALT_NAME } from "../policy/tls-client-certificate.ts";
import { MAX_SERVER_NAMES } from "../policy/tls-server-name.ts";
import {
  CLIENT_CERTIFICATE_WITHOUT_TERMINATION,
  HTTP_WITHOUT_PORTS,
  TCP_ON_DENY,
  TERMINATION_ON_DENY,
  TERMINATION_ON_EGRESS,
  TLS_WITH_HTTP,
  TLS_WITHOUT_PORTS,
  TLS_WITHOUT_SERVER_NAMES,
  UPSTREAM_CA_WITHOUT_TLS,
} from "../policy/validate.ts";

/** The longest CIDR text: a full IPv6 address with an embedded IPv4 one and a 3-digit prefix. */
const MAX_CIDR_LENGTH = 49;
/** Rules per direction, peers per rule, ports per rule: policies are additive, so more rules go in another policy. */
const MAX_RULE_ITEMS = 32;
/** Holes cut out of one ipBlock. */
const MAX_EXCEPT = 32;
/** Label requirements of one selector, labels of one matchLabels, values of one requirement. */
const MAX_SELECTOR_ITEMS = 32;
/** The longest port name (IANA_SVC_NAME). */
const MAX_PORT_NAME_LENGTH = 15;

const IN_CIDR = "cidr(self.cidr).containsCIDR(e) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()";

/** `tcp` narrows what an Allow rule admits of TCP: refused on a Deny rule and beside ports of other protocols. */
const TCP_RULE_VALIDATIONS = [
  {
    rule: "!has(self.tcp) || !has(self.action) || self.action == 'Allow'",
    message: TCP_ON_DENY,
    fieldPath: ".tcp",
  },
  {
    rule: "!has(self.tcp) || !has(self.ports) || self.ports.all(p, !has(p.protocol) || p.protocol == 'TCP')",
    // A static message: one naming the protocol found costs the API server's estimate 100 times its budget.
    message: "lists a port of another protocol than TCP, but the rule sets tcp: its ports must all be TCP",
    fieldPath: ".ports",
  },
];

/** `http` judges the requests of the rule's TCP ports: it needs them listed, all TCP. */
const HTTP_RULE_VALIDATIONS = [
  { rule: "!has(self.http) || (has(self.ports) && size(self.ports) > 0)", message: HTTP_WITHOUT_PORTS, fieldPath: ".ports" },
  {
    rule: "!has(self.http) || !has(self.ports) || self.ports.all(p, !has(p.protocol) || p.protocol == 'TCP')",
    message: "lists a port of another protocol than TCP, but the rule sets http: its ports must all be TCP",
    fieldPath: ".ports",
  },
];

/** `tls` judges the TLS connections of the rule's TCP ports: it needs them listed, all TCP, and no `http` beside it. */
const TLS_RULE_VALIDATIONS = [
  { rule: "!has(self.tls) || (has(self.ports) && size(self.ports) > 0)", message: TLS_WITHOUT_PORTS, fieldPath: ".ports" },
  {
    rule: "!has(self.tls) || !has(self.ports) || self.ports.all(p, !has(p.protocol) || p.protocol == 'TCP')",
    message: "lists a port of another protocol than TCP, but the rule sets tls: its ports must all be TCP",
    fieldPath: ".ports",
  },
  { rule: "!has(self.tls) || !has(self.http) || has(self.tls.termination)", message: TLS_WITH_HTTP, fieldPath: ".tls" },
  {
    rule: "!has(self.tls) || !has(self.tls.termination) || !has(self.action) || self.action == 'Allow'",
    message: TERMINATION_ON_DENY,
    fieldPath: ".tls.termination",
  },
];

/** Egress rules cannot terminate TLS. */
const EGRESS_TLS_VALIDATIONS = [
  { rule: "!has(self.tls) || !has(self.tls.termination)", message: TERMINATION_ON_EGRESS, fieldPath: ".tls.termination" },
];

/**
 * A `serverNames` entry: a host name of labels of letters, digits and '-' (1 to 63, not starting or ending
 * with '-'), optionally behind one leading "*." label; at most 253 characters after it. IP addresses and
 * wildcards over a top-level domain are left to the operator.
 */
const SERVER_NAME_PATTERN = "^(\\*\\.)?[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$";

/** A subjectAltNames entry: a URI (a scheme, ':', RFC 3986 characters) or a server-name pattern. */
const SUBJECT_ALT_NAME_PATTERN = `^(${URI_SUBJECT_ALT_NAME.source.slice(1, -1)}|${SERVER_NAME_PATTERN.slice(1, -1)})$`;

/** A DNS-1123 subdomain: the name of a Secret or ConfigMap. */
const OBJECT_NAME_SCHEMA = { maxLength: 253, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" };

const TLS_REFINEMENTS: SchemaRefinement[] = [
  { type: "TlsRule", path: ["serverNames"], add: { minItems: 1, maxItems: MAX_SERVER_NAMES } },
  { type: "TlsRule", path: ["serverNames", "[]"], add: { maxLength: 255, pattern: SERVER_NAME_PATTERN } },
  {
    type: "TlsRule",
    path: [],
    add: {
      "x-kubernetes-validations": [
        { rule: "has(self.serverNames) || has(self.termination)", message: TLS_WITHOUT_SERVER_NAMES, fieldPath: ".serverNames" },
        { rule: "!has(self.clientCertificate) || has(self.termination)", message: CLIENT_CERTIFICATE_WITHOUT_TERMINATION, fieldPath: ".clientCertificate" },
      ],
    },
  },
  {
    type: "TlsTermination",
    path: [],
    add: {
      "x-kubernetes-validations": [
        { rule: "!has(self.upstream) || self.upstream != 'TLS' || has(self.upstreamCA)", message: "is required when upstream is TLS", fieldPath: ".upstreamCA" },
        { rule: "!has(self.upstreamCA) || (has(self.upstream) && self.upstream == 'TLS')", message: UPSTREAM_CA_WITHOUT_TLS, fieldPath: ".upstreamCA" },
      ],
    },
  },
  { type: "TlsTermination", path: ["alpn"], add: { minItems: 1, maxItems: 2, "x-kubernetes-list-type": "set" } },
  { type: "TlsClientCertificate", path: ["subjectAltNames"], add: { minItems: 1, maxItems: MAX_SUBJECT_ALT_NAMES } },
  { type: "TlsClientCertificate", path: ["subjectAltNames", "[]"], add: { maxLength: MAX_SUBJECT_ALT_NAME_LENGTH, pattern: SUBJECT_ALT_NAME_PATTERN } },
  { type: "SecretReference", path: ["secretName"], add: OBJECT_NAME_SCHEMA },
  { type: "ConfigMapKeyReference", path: ["configMapName"], add: OBJECT_NAME_SCHEMA },
  { type: "ConfigMapKeyReference", path: ["key"], add: { minLength: 1, maxLength: 253, pattern: "^[-._a-zA-Z0-9]+$" } },
];

/** A match object of `http` sets exactly one of its tests. */
function exactlyOneOf(keys: string[]) {
  return {
    rule: `[${keys.map((key) => `has(self.${key})`).join(", ")}].filter(x, x).size() == 1`,
    message: `must set exactly one of ${keys.join(", ")}`,
  };
}

/** An RFC 9110 token (methods, field names). */
const TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/** The refinements of the HTTP rule types: the checks of validateHttpRules the API server can make (regex syntax and path normal form are left to the operator). */
const HTTP_REFINEMENTS: SchemaRefinement[] = [
  ...(["EBPFIngressRule", "EBPFEgressRule"] as const).map((type) => ({ type, path: ["http"], add: { minItems: 1, maxItems: HTTP_RULE_LIMITS.rules } })),
  { type: "HttpRule", path: ["method"], add: { maxLength: HTTP_RULE_LIMITS.methodLength, pattern: TOKEN_PATTERN } },
  { type: "HttpRule", path: ["headers"], add: { maxItems: HTTP_RULE_LIMITS.headersPerRule } },
  {
    type: "HttpPathMatch",
    path: [],
    add: {
      "x-kubernetes-validations": [
        exactlyOneOf(["exact", "prefix", "regex"]),
        { rule: "!has(self.exact) || self.exact.startsWith('/')", message: "must start with \"/\": it could never match a path", fieldPath: ".exact" },
        { rule: "!has(self.prefix) || self.prefix.startsWith('/')", message: "must start with \"/\": it could never match a path", fieldPath: ".prefix" },
      ],
    },
  },
  { type: "HttpHostMatch", path: [], add: { "x-kubernetes-validations": [exactlyOneOf(["exact", "suffix", "regex"])] } },
  {
    type: "HttpHeaderMatch",
    path: [],
    add: {
      "x-kubernetes-validations": [
        exactlyOneOf(["exact", "prefix", "regex", "present", "absent"]),
        { rule: "!has(self.present) || self.present", message: "must be true", fieldPath: ".present" },
        { rule: "!has(self.absent) || self.absent", message: "must be true", fieldPath: ".absent" },
      ],
    },
  },
  { type: "HttpHeaderMatch", path: ["name"], add: { maxLength: HTTP_RULE_LIMITS.headerNameLength, pattern: TOKEN_PATTERN } },
  ...(["HttpPathMatch", "HttpHostMatch", "HttpHeaderMatch"] as const).flatMap((type) =>
    (type === "HttpHostMatch" ? ["exact", "suffix"] : ["exact", "prefix"]).map((key) => ({ type, path: [key], add: { maxLength: HTTP_RULE_LIMITS.valueLength } })),
  ),
  ...(["HttpPathMatch", "HttpHostMatch", "HttpHeaderMatch"] as const).map((type) => ({ type, path: ["regex"], add: { maxLength: HTTP_RULE_LIMITS.regexLength } })),
];

/**
 * Refinements of the EBPFNetworkPolicy schema, by API type.
 *
 * @example
 * ```ts
 * applyRefinements(definitions, EBPF_NETWORK_POLICY_REFINEMENTS);
 * ```
 */
export const EBPF_NETWORK_POLICY_REFINEMENTS: readonly SchemaRefinement[] = [
  {
    type: "EBPFNetworkPolicy",
    path: ["spec", "policyTypes"],
    add: { maxItems: 2, "x-kubernetes-list-type": "set" },
  },
  { type: "EBPFNetworkPolicy", path: ["spec", "ingress"], add: { maxItems: MAX_RULE_ITEMS } },
  { type: "EBPFNetworkPolicy", path: ["spec", "egress"], add: { maxItems: MAX_RULE_ITEMS } },
  { type: "EBPFIngressRule", path: [], add: { "x-kubernetes-validations": [...TCP_RULE_VALIDATIONS, ...HTTP_RULE_VALIDATIONS, ...TLS_RULE_VALIDATIONS] } },
  { type: "EBPFEgressRule", path: [], add: { "x-kubernetes-validations": [...TCP_RULE_VALIDATIONS, ...HTTP_RULE_VALIDATIONS, ...TLS_RULE_VALIDATIONS, ...EGRESS_TLS_VALIDATIONS] } },
  ...HTTP_REFINEMENTS,
  ...TLS_REFINEMENTS,
  {
    type: "TcpConnectionRate",
    path: [],
    add: {
      "x-kubernetes-validations": [
        {
          rule: "self.burst >= self.average",
          // dyn(): the cost estimate gives string() of an integer field no size bound, and would refuse the rule.
          messageExpression: "string(dyn(self.burst)) + ' is below average ' + string(dyn(self.average)) + ': the bucket must hold at least one second of tokens'",
          fieldPath: ".burst",
        },
      ],
    },
  },
  { type: "EBPFIngressRule", path: ["from"], add: { maxItems: MAX_RULE_ITEMS } },
  { type: "EBPFIngressRule", path: ["ports"], add: { maxItems: MAX_RULE_ITEMS } },
  { type: "EBPFEgressRule", path: ["to"], add: { maxItems: MAX_RULE_ITEMS } },
  { type: "EBPFEgressRule", path: ["ports"], add: { maxItems: MAX_RULE_ITEMS } },
  {
    type: "PolicyPeer",
    path: [],
    add: {
      "x-kubernetes-validations": [
        {
          rule: "has(self.ipBlock) || has(self.podSelector) || has(self.namespaceSelector)",
          message: "must set ipBlock, or podSelector and/or namespaceSelector",
        },
        {
          rule: "!has(self.ipBlock) || !(has(self.podSelector) || has(self.namespaceSelector))",
          messageExpression: "'sets ipBlock together with ' + (has(self.podSelector) ? 'podSelector' : 'namespaceSelector') + ': ipBlock must be the only peer field'",
        },
      ],
    },
  },
  {
    type: "IPBlock",
    path: [],
    add: {
      "x-kubernetes-validations": [
        {
          rule: `!isCIDR(self.cidr) || !has(self.except) || self.except.all(e, !isCIDR(e) || (${IN_CIDR}))`,
          messageExpression: `'"' + self.except.filter(e, isCIDR(e) && !(${IN_CIDR}))[0] + '" is not strictly inside cidr "' + self.cidr + '"'`,
          fieldPath: ".except",
        },
      ],
    },
  },
  {
    type: "IPBlock",
    path: ["cidr"],
    add: {
      maxLength: MAX_CIDR_LENGTH,
      "x-kubernetes-validations": [{ rule: "isCIDR(self)", messageExpression: `'"' + self + '" is not a valid CIDR'` }],
    },
  },
  { type: "IPBlock", path: ["except"], add: { maxItems: MAX_EXCEPT } },
  {
    type: "IPBlock",
    path: ["except", "[]"],
    add: {
      maxLength: MAX_CIDR_LENGTH,
      "x-kubernetes-validations": [{ rule: "isCIDR(self)", messageExpression: `'"' + self + '" is not a valid CIDR'` }],
    },
  },
  {
    type: "PolicyPort",
    path: [],
    add: {
      "x-kubernetes-validations": [
        {
          rule: "!has(self.endPort) || (has(self.port) && type(self.port) == int)",
          messageExpression: `has(self.port) ? 'requires a numeric port, not the named port "' + string(self.port) + '"' : 'requires a numeric port'`,
          fieldPath: ".endPort",
        },
        {
          rule: "!has(self.endPort) || !has(self.port) || type(self.port) != int || self.endPort >= self.port",
          // dyn(): the cost estimate gives string() of an integer field no size bound, and would refuse the rule.
          messageExpression: "string(dyn(self.endPort)) + ' is below port ' + string(self.port)",
          fieldPath: ".endPort",
        },
      ],
    },
  },
  {
    type: "PolicyPort",
    path: ["port"],
    add: {
      maxLength: MAX_PORT_NAME_LENGTH,
      "x-kubernetes-validations": [
        {
          rule: "type(self) != int || (self >= 1 && self <= 65535)",
          messageExpression: "string(self) + ' is not between 1 and 65535'",
        },
        {
          rule: "type(self) == int || (self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.matches('[a-z]') && !self.contains('--'))",
          messageExpression: `'"' + string(self) + '" is not a valid port name: lowercase letters, digits and \\'-\\', with a letter, no \\'--\\', not starting or ending with \\'-\\''`,
        },
      ],
    },
  },
  ...labelMapRefinements("LabelSelector", ["matchLabels"], MAX_SELECTOR_ITEMS),
  { type: "LabelSelector", path: ["matchExpressions"], add: { maxItems: MAX_SELECTOR_ITEMS } },
  { type: "LabelSelectorRequirement", path: ["key"], add: LABEL_KEY_SCHEMA },
  { type: "LabelSelectorRequirement", path: ["values"], add: { maxItems: MAX_SELECTOR_ITEMS } },
  { type: "LabelSelectorRequirement", path: ["values", "[]"], add: LABEL_VALUE_SCHEMA },
  {
    type: "LabelSelectorRequirement",
    path: [],
    add: {
      "x-kubernetes-validations": [
        {
          rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
          messageExpression: `'must not be empty when operator is "' + self.operator + '"'`,
          fieldPath: ".values",
        },
        {
          rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
          messageExpression: `'must be empty when operator is "' + self.operator + '"'`,
          fieldPath: ".values",
        },
      ],
    },
  },
];

/**
 * Refinements of the EBPFNetworkPolicy status schema: conditions are a map
 * keyed by type, as every Kubernetes API's are, so server-side apply merges them.
 */
export const EBPF_NETWORK_POLICY_STATUS_REFINEMENTS: readonly SchemaRefinement[] = [
  {
    type: "EBPFNetworkPolicyStatus",
    path: ["conditions"],
    add: { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
  },
];
