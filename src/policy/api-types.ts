/**
 * The policy APIs Palisade accepts, as TypeScript types: the Kubernetes
 * `networking.k8s.io/v1` NetworkPolicy and Palisade's own
 * `palisade.dev/v1alpha1` EBPFNetworkPolicy, a superset of it. These types are
 * the single source the CRD schema is generated from.
 *
 * @module
 */

/** A Kubernetes label selector. `{}` selects everything; an absent selector selects nothing where the API says so. */
export interface LabelSelector {
  /** Labels a pod or namespace must carry, each with exactly this value. */
  matchLabels?: Record<string, string>;
  /** Requirements a pod or namespace must meet, all of them (ANDed with `matchLabels`). */
  matchExpressions?: LabelSelectorRequirement[];
}

/** One requirement of a label selector. */
export interface LabelSelectorRequirement {
  /** The label key the requirement is about. */
  key: string;
  /** In and NotIn compare the label's value with `values`; Exists and DoesNotExist test whether the label is there. */
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  /** The values In and NotIn compare with: at least one for them, none for Exists and DoesNotExist. */
  values?: string[];
}

/** An IP block: a CIDR and holes cut out of it. */
export interface IPBlock {
  /** The block, e.g. `10.0.0.0/8` or `fd00::/8`; host bits may be set (`10.0.0.1/8` is `10.0.0.0/8`). */
  cidr: string;
  /** Blocks cut out of `cidr`; each must lie strictly inside it (same family, longer prefix). */
  except?: string[];
}

/** A peer of a rule: pods by selectors, or addresses by CIDR. */
export interface PolicyPeer {
  /** Pods with these labels: in the policy's namespace, or in the namespaces `namespaceSelector` matches when both are set. */
  podSelector?: LabelSelector;
  /** Every pod of the namespaces with these labels (`{}` = every namespace), narrowed by `podSelector` when both are set. */
  namespaceSelector?: LabelSelector;
  /** Addresses inside a CIDR, pod addresses included; must be the only field of its peer. */
  ipBlock?: IPBlock;
}

/** L4 protocols a policy port can name. */
export type PolicyProtocol = "TCP" | "UDP" | "SCTP";

/** A port of a rule: numeric or named, optionally a range up to `endPort`. */
export interface PolicyPort {
  /**
   * The L4 protocol. Defaults to TCP.
   *
   * @default "TCP"
   */
  protocol?: PolicyProtocol;
  /** A number from 1 to 65535, or the name of a container port of the destination pod. Absent = every port. */
  port?: number | string;
  /**
   * Last port of a range starting at `port`; needs a numeric `port` and is not below it.
   *
   * @asType integer
   * @minimum 1
   * @maximum 65535
   */
  endPort?: number;
}

/** Policy directions. */
export type PolicyType = "Ingress" | "Egress";

/** An ingress rule of a NetworkPolicy. */
export interface NetworkPolicyIngressRule {
  /** Sources the rule matches, any of them; absent or empty = every source. */
  from?: PolicyPeer[];
  /** Destination ports the rule matches, any of them; absent or empty = every protocol and port. */
  ports?: PolicyPort[];
}

/** An egress rule of a NetworkPolicy. */
export interface NetworkPolicyEgressRule {
  /** Destinations the rule matches, any of them; absent or empty = every destination. */
  to?: PolicyPeer[];
  /** Destination ports the rule matches, any of them; absent or empty = every protocol and port. */
  ports?: PolicyPort[];
}

/** Kubernetes object metadata, the part Palisade reads. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  generation?: number;
  uid?: string;
  resourceVersion?: string;
}

/** `networking.k8s.io/v1` NetworkPolicy. */
export interface NetworkPolicy {
  apiVersion: "networking.k8s.io/v1";
  kind: "NetworkPolicy";
  metadata: ObjectMeta;
  spec: {
    podSelector: LabelSelector;
    policyTypes?: PolicyType[];
    ingress?: NetworkPolicyIngressRule[];
    egress?: NetworkPolicyEgressRule[];
  };
}

/** What a rule of an EBPFNetworkPolicy does with the traffic it matches. Deny beats any Allow of either API. */
export type RuleAction = "Allow" | "Deny";

/** Enforce drops what the policy denies; Audit only reports what it would deny. */
export type PolicyMode = "Enforce" | "Audit";

/** Conditions an Allow rule puts on the TCP flows it admits, enforced in the kernel. */
export interface TcpRule {
  /**
   * Admit a new TCP flow only by a SYN without ACK, FIN or RST (a mid-stream packet of a flow the node does
   * not track is dropped), and drop packets of an admitted flow whose flags never go together (SYN with FIN
   * or RST, FIN without ACK, no flags). Such drops have the reason `tcp-invalid`. Defaults to false.
   *
   * @default false
   */
  strict?: boolean;
  /**
   * The most TCP connections one source address may hold open at once through this rule, on the node
   * that enforces it (for ingress the remote peer, for egress the selected pod itself; every pod the
   * policy selects on that node counts toward one total). A SYN over it is dropped with the reason
   * `tcp-limit`. When several rules allow the same traffic, it is limited only if all of them are, and
   * the one that decides it is charged. Absent = no limit.
   *
   * @asType integer
   * @minimum 1
   * @maximum 1000000
   */
  maxConnectionsPerSource?: number;
  /**
   * A token bucket of new TCP connections per source address through this rule, on the node that
   * enforces it: it holds `burst` tokens, starts full, refills `average` per second, and each new
   * connection takes one; a SYN finding it empty is dropped with the reason `tcp-limit`. Absent = no limit.
   */
  newConnectionsPerSecond?: TcpConnectionRate;
}

/** A rate of new connections: `average` per second, up to `burst` at once. */
export interface TcpConnectionRate {
  /**
   * Tokens added per second.
   *
   * @asType integer
   * @minimum 1
   * @maximum 1000000
   */
  average: number;
  /**
   * Tokens the bucket holds (and starts with): connections that may open at once after a quiet time.
   * Not below `average`.
   *
   * @asType integer
   * @minimum 1
   * @maximum 1000000
   */
  burst: number;
}

/**
 * Which paths an HTTP rule admits: exactly one of `exact`, `prefix` and `regex`, compared with the
 * request's normalized path (RFC 3986: percent-encoded unreserved characters decoded, `.` and `..`
 * segments resolved, `//` kept), so `/public/../admin` is `/admin`; Deny rules also match it with repeated slashes
 * merged and `;` parameters dropped (`//admin` and `/;x/admin` as `/admin`). Literals must be normalized already.
 */
export interface HttpPathMatch {
  /** The whole path, e.g. `/orders`. */
  exact?: string;
  /** The path's beginning, e.g. `/public/` (which `/public` does not match: write `/public` for both). */
  prefix?: string;
  /** An RE2 regex that must match the whole path. */
  regex?: string;
}

/**
 * Which hosts an HTTP rule admits: exactly one of `exact`, `suffix` and `regex`, compared with the
 * request's host (`Host`, or `:authority` in HTTP/2) without its port, case-insensitively.
 */
export interface HttpHostMatch {
  /** The whole host, e.g. `api.shop`. */
  exact?: string;
  /** Whole trailing labels: `shop.example` matches `shop.example` and `api.shop.example`, never `evilshop.example`. */
  suffix?: string;
  /** An RE2 regex that must match the whole host (case-insensitive). */
  regex?: string;
}

/**
 * A header an HTTP rule requires: its name (case-insensitive) and exactly one test. A field sent on several
 * lines is compared as one value, the lines joined by `, ` (`; ` for Cookie).
 */
export interface HttpHeaderMatch {
  /** The field name, e.g. `X-Tenant`. */
  name: string;
  /** The whole value. */
  exact?: string;
  /** The value's beginning. */
  prefix?: string;
  /** An RE2 regex that must match the whole value. */
  regex?: string;
  /** `true`: the request has the field (any value, even empty). */
  present?: boolean;
  /** `true`: the request does not have the field. */
  absent?: boolean;
}

/** One entry of a rule's `http` list: a request matches it when every field it sets holds. */
export interface HttpRule {
  /** The request method, exactly (case-sensitive); absent = any method. */
  method?: string;
  /**
   * Compared with the request's normalized path (RFC 3986: unreserved escapes decoded, `.` and `..` segments
   * resolved, `//` kept); on a Deny rule, also with repeated slashes merged and `;` parameters dropped, as
   * nginx, Apache and Tomcat serve it (`//admin` and `/;x/admin` are `/admin`). Absent = any path.
   */
  path?: HttpPathMatch;
  /** Absent = any host, or none. */
  host?: HttpHostMatch;
  /** All must hold; absent = any headers. */
  headers?: HttpHeaderMatch[];
}

/**
 * What a rule asks of TLS connections, judged by the node's proxy: by the server name of the ClientHello
 * alone (`serverNames`; the connection is then passed on unchanged), or with TLS ending at the proxy
 * (`termination`), which can then ask for a client certificate and judge the requests inside by the rule's
 * `http`.
 */
export interface TlsRule {
  /**
   * The server names (SNI) a ClientHello may ask for: a host name, matched exactly and case-insensitively,
   * or `*.` and a host name, matching exactly one more label (`*.github.com` matches `api.github.com`, not
   * `github.com` nor `a.b.github.com`). No IP addresses, no trailing dot, no wildcard over a top-level
   * domain; 1 to 64 names. Required without `termination`; with it, optional (absent: any server name, or
   * none), and when set a ClientHello without a server name is refused. With `termination`, where the proxy
   * reads the requests inside (the rule has `http`, or a Deny rule with `http` covers the connection), each
   * request's host (`Host` or `:authority`, port dropped) must also be one of these names, or of another
   * rule that admitted the connection, matched the same way; otherwise it is answered 421 Misdirected
   * Request, before any `http` entry, and the connection goes on.
   */
  serverNames?: string[];
  /**
   * TLS ends at the node's proxy, with the certificate of a Secret of the policy's namespace; the requests
   * inside are judged by the rule's `http` (none: every request), and sent on to the pod in plain text or
   * re-encrypted. Ingress rules with action Allow only. Every Allow rule of a server that admits one
   * connection by termination must name the same certificate and upstream, or the connection is reset.
   */
  termination?: TlsTermination;
  /**
   * A client certificate the connection must present, judged by the proxy during the handshake (so it needs
   * `termination`: a TLS 1.3 client certificate is encrypted): it must chain to `ca`, be valid now, and carry
   * one of `subjectAltNames`; otherwise the rule does not admit the connection.
   */
  clientCertificate?: TlsClientCertificate;
}

/** How a rule's TLS termination ends TLS at the proxy and reaches the pod. */
export interface TlsTermination {
  /**
   * The `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) of the policy's namespace the proxy presents. While
   * it is missing or malformed, the connections the rule would terminate are reset.
   */
  certificate: SecretReference;
  /**
   * How the proxy reaches the pod: `Plain` (the pod serves plain text on the port) or `TLS` (re-encrypted,
   * the pod's certificate verified with `upstreamCA` for the ClientHello's server name, or the pod's address
   * without one). Defaults to Plain.
   *
   * @default "Plain"
   */
  upstream?: "Plain" | "TLS";
  /** The CA bundle (PEM) the pod's certificate must chain to; required when, and only when, `upstream` is TLS. */
  upstreamCA?: ConfigMapKeyReference;
  /**
   * The application protocols the proxy offers clients by ALPN (RFC 7301), in order of preference. `h2` only
   * where the pod serves HTTP/2 (cleartext h2c when `upstream` is Plain), since the requests go on to it in
   * the protocol the client chose; gRPC clients need it. A client offering none of them fails the
   * handshake. Without it: `http/1.1` where rules judge the requests, no protocol negotiated where they
   * pass the stream on.
   */
  alpn?: ("h2" | "http/1.1")[];
}

/** What a client certificate must be for a rule to admit the connection. */
export interface TlsClientCertificate {
  /** The CA bundle (PEM) the client's certificate must chain to. */
  ca: ConfigMapKeyReference;
  /**
   * Subject alternative names, one of which the certificate must carry: a URI (with a scheme, e.g.
   * `spiffe://cluster.local/ns/shop/sa/frontend`), matched exactly; or a DNS name, matched case-insensitively,
   * exactly or as `*.` and a name matching exactly one more label. 1 to 64 names.
   */
  subjectAltNames: string[];
}

/** A Secret of the policy's namespace. */
export interface SecretReference {
  /** The Secret's name. */
  secretName: string;
}

/** A key of a ConfigMap of the policy's namespace. */
export interface ConfigMapKeyReference {
  /** The ConfigMap's name. */
  configMapName: string;
  /** The key whose value is used, e.g. `ca.crt`. */
  key: string;
}

/** An ingress rule of an EBPFNetworkPolicy. */
export interface EBPFIngressRule extends NetworkPolicyIngressRule {
  /**
   * Allow admits what the rule matches; Deny drops it, whatever else allows it. Defaults to Allow.
   *
   * @default "Allow"
   */
  action?: RuleAction;
  /**
   * Conditions on the TCP flows the rule admits (an Allow rule only; its ports, if it lists any, all TCP).
   * Traffic another Allow rule admits without them is admitted as that rule says: rules add up.
   */
  tcp?: TcpRule;
  /**
   * The HTTP requests the rule covers on its TCP ports (which it must list): on an Allow rule, a request
   * must match one entry or is refused with 403; on a Deny rule, a request matching an entry is refused
   * with 403 (and other traffic of the rule is not dropped). Requests are judged by the node's proxy,
   * HTTP/1.1 and HTTP/2 cleartext with prior knowledge; bytes that are not HTTP close the connection.
   * Traffic another Allow rule admits without `http` is admitted whatever its requests: rules add up.
   */
  http?: HttpRule[];
  /**
   * The TLS connections the rule covers on its TCP ports (which it must list), by the server name their
   * ClientHello asks for (SNI), judged by the node's proxy (or, with termination, by its handshake and requests): on an Allow rule, a
   * connection must be TLS and name one of `serverNames`, or it is reset (no SNI, a malformed ClientHello
   * and bytes that are not TLS included); on a Deny rule, a TLS connection naming one of them is reset (and
   * other traffic of the rule is not dropped). An allowed connection is passed on unchanged. Traffic another
   * Allow rule admits without `http` or `tls` is admitted whatever it carries: rules add up. Where the allow
   * rules of a flow mix `http` and `tls`, a connection whose first byte is a TLS handshake record is judged
   * by the `tls` rules, any other by the `http` rules, request by request; a Deny rule with `http` covering
   * the flow resets its TLS connections, whose requests it cannot see, except the connections terminated
   * (`tls.termination`), whose requests it judges. With `tls.termination`, the rule's `http` judges the
   * requests inside the terminated connections; without it a rule sets `http` or `tls`, not both.
   */
  tls?: TlsRule;
}

/** An egress rule of an EBPFNetworkPolicy. */
export interface EBPFEgressRule extends NetworkPolicyEgressRule {
  /**
   * Allow admits what the rule matches; Deny drops it, whatever else allows it. Defaults to Allow.
   *
   * @default "Allow"
   */
  action?: RuleAction;
  /**
   * Conditions on the TCP flows the rule admits (an Allow rule only; its ports, if it lists any, all TCP).
   * Traffic another Allow rule admits without them is admitted as that rule says: rules add up.
   */
  tcp?: TcpRule;
  /**
   * The HTTP requests the rule covers on its TCP ports (which it must list): on an Allow rule, a request
   * must match one entry or is refused with 403; on a Deny rule, a request matching an entry is refused
   * with 403 (and other traffic of the rule is not dropped). Requests are judged by the node's proxy,
   * HTTP/1.1 and HTTP/2 cleartext with prior knowledge; bytes that are not HTTP close the connection.
   * Traffic another Allow rule admits without `http` is admitted whatever its requests: rules add up.
   */
  http?: HttpRule[];
  /**
   * The TLS connections the rule covers on its TCP ports (which it must list), by the server name their
   * ClientHello asks for (SNI), judged by the node's proxy without terminating TLS: on an Allow rule, a
   * connection must be TLS and name one of `serverNames`, or it is reset (no SNI, a malformed ClientHello
   * and bytes that are not TLS included); on a Deny rule, a TLS connection naming one of them is reset (and
   * other traffic of the rule is not dropped). An allowed connection is passed on unchanged. Traffic another
   * Allow rule admits without `http` or `tls` is admitted whatever it carries: rules add up. Where the allow
   * rules of a flow mix `http` and `tls`, a connection whose first byte is a TLS handshake record is judged
   * by the `tls` rules, any other by the `http` rules, request by request; a Deny rule with `http` covering
   * the flow resets its TLS connections, whose requests it cannot see. A rule sets `http` or `tls`, not
   * both, and egress rules cannot terminate TLS (`tls.termination`, `tls.clientCertificate`: ingress only).
   */
  tls?: TlsRule;
}

/**
 * `palisade.dev/v1alpha1` EBPFNetworkPolicy: a NetworkPolicy with Deny rules and an audit mode. The
 * selected pods, peers and ports mean what they mean in NetworkPolicy.
 */
export interface EBPFNetworkPolicy {
  apiVersion: "palisade.dev/v1alpha1";
  kind: "EBPFNetworkPolicy";
  metadata: ObjectMeta;
  /** The pods the policy applies to, and the traffic it allows or denies them. */
  spec: {
    /** The pods of this namespace the policy applies to; `{}` = all of them. */
    selector: LabelSelector;
    /**
     * Directions the policy isolates the selected pods in. Absent or empty: Ingress, plus Egress when
     * `egress` has a rule.
     */
    policyTypes?: PolicyType[];
    /** Rules for traffic to the selected pods, matched in any order (a matching Deny beats every Allow). */
    ingress?: EBPFIngressRule[];
    /** Rules for traffic from the selected pods, matched in any order (a matching Deny beats every Allow). */
    egress?: EBPFEgressRule[];
    /**
     * Enforce drops what the policy denies; Audit only reports it as flow events. Defaults to Enforce.
     *
     * @default "Enforce"
     */
    mode?: PolicyMode;
  };
}

/**
 * A standard Kubernetes condition, as in `metav1.Condition`.
 */
export interface PolicyCondition {
  /** The aspect the condition is about, e.g. `Accepted` or `Programmed`. */
  type: string;
  /** Whether the condition holds. */
  status: "True" | "False" | "Unknown";
  /** Why it holds or not, in CamelCase, e.g. `InvalidSpec` or `AllNodesProgrammed`. */
  reason: string;
  /** What a human needs to know, e.g. the field a refused policy gets wrong. */
  message: string;
  /**
   * The `metadata.generation` of the policy the condition was computed for.
   *
   * @asType integer
   * @minimum 0
   */
  observedGeneration?: number;
  /**
   * When `status` last changed (RFC 3339).
   *
   * @format date-time
   */
  lastTransitionTime: string;
}

/** What the operator observed of an EBPFNetworkPolicy: the `status` subresource. */
export interface EBPFNetworkPolicyStatus {
  /**
   * `Accepted`: the policy passed the operator's checks; `Programmed`: every node's agent enforces
   * this generation.
   */
  conditions?: PolicyCondition[];
  /**
   * Running pods the policy selects.
   *
   * @asType integer
   * @minimum 0
   */
  selectedPods?: number;
  /**
   * Nodes whose agent enforces this generation of the policy.
   *
   * @asType integer
   * @minimum 0
   */
  programmedNodes?: number;
  /**
   * Nodes with an agent.
   *
   * @asType integer
   * @minimum 0
   */
  totalNodes?: number;
  /** `programmedNodes/totalNodes`, e.g. `2/2`, for `kubectl get`. */
  programmed?: string;
  /**
   * The `metadata.generation` this status describes.
   *
   * @asType integer
   * @minimum 0
   */
  observedGeneration?: number;
}

/** Either policy API. */
export type AnyPolicy = NetworkPolicy | EBPFNetworkPolicy;

/** Container port of a pod, the part policy reads (named ports). */
export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: PolicyProtocol;
}

/** A Pod, the part policy reads. */
export interface Pod {
  apiVersion: "v1";
  kind: "Pod";
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    hostNetwork?: boolean;
    containers: { name: string; ports?: ContainerPort[] }[];
  };
  status?: {
    podIP?: string;
    podIPs?: { ip: string }[];
    phase?: string;
  };
}

/** A Namespace, the part policy reads. */
export interface Namespace {
  apiVersion: "v1";
  kind: "Namespace";
  metadata: ObjectMeta;
}

/** A named port of the pods of a pod identity. */
export interface IdentityNamedPort {
  /** The port's name, as a policy's `ports[].port` names it. */
  name: string;
  /** The port number. */
  port: number;
  /** The port's protocol. */
  protocol: PolicyProtocol;
}

/**
 * What a security identity stands for. Written once by the operator when it
 * allocates the number; never changed (a changed key is a new identity).
 */
export interface PalisadeIdentitySpec {
  /**
   * The identity key exactly as the policy compiler builds it (JSON): every
   * attribute of an address that policy can ask about. Agents look numbers
   * up by this key; the other fields only repeat it readably.
   */
  key: string;
  /** What kind of addresses carry the identity: pod IPs, node (host) IPs, or a policy CIDR prefix. */
  kind: "pod" | "host" | "cidr";
  /** The namespace of the pods (pod identities only). */
  namespace?: string;
  /** The labels of the pods' namespace (pod identities only). */
  namespaceLabels?: Record<string, string>;
  /** The labels of the pods (pod identities only). */
  labels?: Record<string, string>;
  /** The pods' named ports (pod identities only). */
  namedPorts?: IdentityNamedPort[];
  /**
   * For a cidr identity its prefix; for a pod or host identity the longest
   * policy CIDR containing its addresses (its class), absent when none does.
   */
  cidr?: string;
}

/**
 * `palisade.dev/v1alpha1` PalisadeIdentity (cluster-scoped): one security
 * identity, named by its decimal number, allocated by the operator so that
 * every node uses the same number for the same key. The operator deletes it
 * once no address has used the key for a grace period.
 */
export interface PalisadeIdentity {
  apiVersion: "palisade.dev/v1alpha1";
  kind: "PalisadeIdentity";
  metadata: ObjectMeta;
  /** The identity key and its readable parts; immutable. */
  spec: PalisadeIdentitySpec;
}
