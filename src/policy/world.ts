/**
 * The world policy is evaluated against: namespaces, pods and policies, as
 * plain data. Both the compiler and the reference evaluator read this shape;
 * the compiler also receives it change by change.
 *
 * @module
 */
import type { AnyPolicy, PolicyProtocol } from "./api-types.ts";

/** A named container port of a pod, as a named port in a rule resolves against it. */
export interface NamedPort {
  name: string;
  port: number;
  protocol: PolicyProtocol;
}

/** A namespace: its name and labels. */
export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/** A pod: where it lives, its labels, addresses and named container ports. */
export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Pod IPs, IPv4 and/or IPv6, in canonical text form. */
  ips: string[];
  /** Container ports that have a name. */
  namedPorts: NamedPort[];
  nodeName?: string;
}

/** Everything policy semantics depend on. Keys of `pods` are `namespace/name`. */
export interface World {
  namespaces: Map<string, NamespaceInfo>;
  pods: Map<string, PodInfo>;
  /** Validated policies of both APIs. */
  policies: AnyPolicy[];
  /** Addresses of the node(s): ingress from them is always allowed, as the spec says a pod cannot block its node. */
  hostIPs: string[];
}

/** Transport protocols a packet can carry, as policy sees them. */
export type PacketProtocol = PolicyProtocol | "ICMP";

/** One end of a packet: an address, which may belong to a pod or the host. */
export interface PacketEnd {
  ip: string;
}

/**
 * A packet's policy-relevant headers: the first packet of a flow from `src`
 * to `dst`. `port` is the destination port (0 for ICMP).
 */
export interface Packet {
  src: PacketEnd;
  dst: PacketEnd;
  protocol: PacketProtocol;
  port: number;
}

/** The key of a pod in `World.pods`: one flat string, as `policyObjectKey` makes (~16 bytes less per key than a concatenation). */
export function podKey(namespace: string, name: string): string {
  return [namespace, name].join("/");
}
