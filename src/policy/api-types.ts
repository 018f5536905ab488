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
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** One requirement of a label selector. */
export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

/** An IP block: a CIDR and holes cut out of it. */
export interface IPBlock {
  cidr: string;
  except?: string[];
}

/** A peer of a rule: pods by selectors, or addresses by CIDR. */
export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

/** L4 protocols a policy port can name. */
export type PolicyProtocol = "TCP" | "UDP" | "SCTP";

/** A port of a rule: numeric or named, optionally a range up to `endPort`. */
export interface PolicyPort {
  /** Defaults to TCP. */
  protocol?: PolicyProtocol;
  /** A number, or the name of a container port of the destination pod. Absent = every port. */
  port?: number | string;
  /** Last port of a range starting at `port`; needs a numeric `port`. */
  endPort?: number;
}

/** Policy directions. */
export type PolicyType = "Ingress" | "Egress";

/** An ingress rule of a NetworkPolicy. */
export interface NetworkPolicyIngressRule {
  from?: PolicyPeer[];
  ports?: PolicyPort[];
}

/** An egress rule of a NetworkPolicy. */
export interface NetworkPolicyEgressRule {
  to?: PolicyPeer[];
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

/** An ingress rule of an EBPFNetworkPolicy. */
export interface EBPFIngressRule extends NetworkPolicyIngressRule {
  /** Defaults to Allow. */
  action?: RuleAction;
}

/** An egress rule of an EBPFNetworkPolicy. */
export interface EBPFEgressRule extends NetworkPolicyEgressRule {
  /** Defaults to Allow. */
  action?: RuleAction;
}

/** `palisade.dev/v1alpha1` EBPFNetworkPolicy. */
export interface EBPFNetworkPolicy {
  apiVersion: "palisade.dev/v1alpha1";
  kind: "EBPFNetworkPolicy";
  metadata: ObjectMeta;
  spec: {
    /** The pods of this namespace the policy applies to; `{}` = all of them. */
    selector: LabelSelector;
    policyTypes?: PolicyType[];
    ingress?: EBPFIngressRule[];
    egress?: EBPFEgressRule[];
    /** Defaults to Enforce. */
    mode?: PolicyMode;
  };
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
