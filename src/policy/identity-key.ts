/**
 * The identity-key codec: what an identity stands for (the attributes of an
 * address policy can ask about) written as the key that names it — JSON
 * such as `["pod", namespace, namespace labels, pod labels, named ports,
 * class]`, `["host", class]` or `["cidr", prefix]` — and read back. Keys are
 * stored in PalisadeIdentity objects and compared by every node, so their
 * text never changes for equal attributes: labels sorted by key, named ports
 * sorted, CIDRs canonical.
 *
 * @module
 */
import { formatCidr } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import { canonicalLabels } from "./selector.ts";
import type { Labels } from "./selector.ts";
import type { NamedPort } from "./world.ts";

/** What an identity stands for. */
export interface IdentityAttributes {
  kind: "pod" | "host" | "cidr";
  /** A pod identity's namespace; `""` for the other kinds. */
  namespace: string;
  /** A pod identity's namespace labels; none for the other kinds. */
  namespaceLabels: Labels;
  /** A pod identity's pod labels; none for the other kinds. */
  podLabels: Labels;
  /** A pod identity's named ports, in {@link canonicalNamedPorts} order; none for the other kinds. */
  namedPorts: readonly NamedPort[];
  /** The CIDR class of a pod or host identity (the longest policy prefix containing its addresses), or a cidr identity's prefix. */
  cls: Cidr | undefined;
}

/** The readable parts of an identity key: what {@link identityKeyFields} reads back. */
export interface IdentityKeyFields {
  kind: "pod" | "host" | "cidr";
  /** A pod identity's namespace. */
  namespace?: string;
  /** A pod identity's namespace labels. */
  namespaceLabels?: Labels;
  /** A pod identity's pod labels. */
  labels?: Labels;
  /** A pod identity's named ports. */
  namedPorts?: NamedPort[];
  /** The CIDR class of a pod or host identity (absent outside every policy prefix), or a cidr identity's prefix. */
  cidr?: string;
}

/** An identity key that {@link identityKey} cannot have built. */
export class IdentityKeyError extends Error {
  override name = "IdentityKeyError";
}

/**
 * Named ports in the order identity keys list them: by name, protocol, port.
 *
 * @example
 * ```ts
 * canonicalNamedPorts([{ name: "web", port: 80, protocol: "TCP" }, { name: "dns", port: 53, protocol: "UDP" }]); // dns first
 * ```
 */
export function canonicalNamedPorts(ports: readonly NamedPort[]): NamedPort[] {
  return [...ports].map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })).sort(comparePorts);
}

function comparePorts(a: NamedPort, b: NamedPort): number {
  return a.name.localeCompare(b.name) || a.protocol.localeCompare(b.protocol) || a.port - b.port;
}

/**
 * Whether `ports` are as {@link canonicalNamedPorts} gives them, so they can be kept rather than copied: in its
 * order, each with its name, port and protocol only, in that order (identity keys spell each port out).
 *
 * @example
 * ```ts
 * inCanonicalOrder([{ name: "dns", port: 53, protocol: "UDP" }, { name: "web", port: 80, protocol: "TCP" }]); // true
 * ```
 */
export function inCanonicalOrder(ports: readonly NamedPort[]): boolean {
  return ports.every((p, i) => {
    const fields = Object.keys(p);
    const previous = ports[i - 1];
    return fields.length === 3 && fields[0] === "name" && fields[1] === "port" && fields[2] === "protocol" && (previous === undefined || comparePorts(previous, p) <= 0);
  });
}

/**
 * The attributes of pod addresses. `namedPorts` must be in
 * {@link canonicalNamedPorts} order already.
 *
 * @example
 * ```ts
 * podIdentity("shop", { "kubernetes.io/metadata.name": "shop" }, { app: "api" }, [], undefined);
 * ```
 */
export function podIdentity(namespace: string, namespaceLabels: Labels, podLabels: Labels, namedPorts: readonly NamedPort[], cls: Cidr | undefined): IdentityAttributes {
  return { kind: "pod", namespace, namespaceLabels, podLabels, namedPorts, cls };
}

// Shared by every address-derived identity (there may be 100k of them): frozen, so no reader can change them.
/** The namespace and pod labels of every identity other than a pod's. */
export const NO_LABELS: Labels = Object.freeze({});
/** The named ports of every identity other than a pod's. */
export const NO_PORTS: readonly NamedPort[] = Object.freeze([]);

/**
 * The attributes of a node's addresses inside class `cls` (none: outside every policy prefix).
 *
 * @example
 * ```ts
 * identityKey(hostIdentity(undefined)); // '["host",null]'
 * ```
 */
export function hostIdentity(cls: Cidr | undefined): IdentityAttributes {
  return { kind: "host", namespace: "", namespaceLabels: NO_LABELS, podLabels: NO_LABELS, namedPorts: NO_PORTS, cls };
}

/**
 * The attributes of a policy prefix's own ipcache entry.
 *
 * @example
 * ```ts
 * identityKey(cidrIdentity(parseCidr("10.0.0.0/8"))); // '["cidr","10.0.0.0/8"]'
 * ```
 */
export function cidrIdentity(prefix: Cidr): IdentityAttributes {
  return { kind: "cidr", namespace: "", namespaceLabels: NO_LABELS, podLabels: NO_LABELS, namedPorts: NO_PORTS, cls: prefix };
}

function labelPairs(labels: Labels): [string, string][] {
  return Object.keys(labels)
    .sort()
    .map((key) => [key, labels[key] as string]);
}

/**
 * Whether two label sets are equal.
 *
 * @example
 * ```ts
 * sameLabels({ a: "1", b: "2" }, { b: "2", a: "1" }); // true
 * ```
 */
export function sameLabels(a: Labels, b: Labels): boolean {
  return JSON.stringify(labelPairs(a)) === JSON.stringify(labelPairs(b));
}

/**
 * The key that names an identity.
 *
 * @example
 * ```ts
 * identityKey(cidrIdentity(parseCidr("10.0.0.0/8"))); // '["cidr","10.0.0.0/8"]'
 * ```
 */
export function identityKey(attributes: IdentityAttributes): string {
  const cls = attributes.cls ? formatCidr(attributes.cls) : null;
  switch (attributes.kind) {
    case "cidr":
      // A cidr identity always has its prefix as class.
      return cidrIdentityKey(cls as string);
    case "host":
      return JSON.stringify(["host", cls]);
    case "pod":
      return JSON.stringify(["pod", attributes.namespace, labelPairs(attributes.namespaceLabels), labelPairs(attributes.podLabels), attributes.namedPorts, cls]);
  }
}

/**
 * The key of a policy prefix's identity from the prefix's canonical text (as `formatCidr` writes it), without
 * parsing it: a restarted agent names the 100k prefixes of its pinned ipcache this way.
 *
 * @example
 * ```ts
 * cidrIdentityKey("10.0.0.0/8") === identityKey(cidrIdentity(parseCidr("10.0.0.0/8"))); // true
 * ```
 */
export function cidrIdentityKey(prefix: string): string {
  return JSON.stringify(["cidr", prefix]);
}

/**
 * Whether an identity key stands for addresses alone (a policy prefix, a
 * node's addresses in a class), not for labels. Nothing but the node that
 * enforces such an identity needs its number (packets carry addresses, and
 * each node maps them itself), so each agent numbers these keys on its own
 * and the cluster keeps no object per CIDR: only label-derived identities
 * are cluster-wide.
 *
 * @example
 * ```ts
 * isAddressDerivedKey('["cidr","10.0.0.0/8"]'); // true
 * ```
 */
export function isAddressDerivedKey(key: string): boolean {
  return key.startsWith('["cidr",') || key.startsWith('["host",');
}

/**
 * What an identity stands for, for people (`explain`, flow logs).
 *
 * @example
 * ```ts
 * describeIdentity(hostIdentity(undefined)); // "host addresses, no cidr class"
 * ```
 */
export function describeIdentity(attributes: IdentityAttributes): string {
  if (attributes.kind === "cidr") return `cidr ${formatCidr(attributes.cls as Cidr)}`;
  const cls = attributes.cls ? `cidr class ${formatCidr(attributes.cls)}` : "no cidr class";
  switch (attributes.kind) {
    case "host":
      return `host addresses, ${cls}`;
    case "pod": {
      const ports = attributes.namedPorts.map((p) => `${p.name}=${p.port}/${p.protocol}`).join(",");
      return (
        `pods of namespace "${attributes.namespace}" labelled {${canonicalLabels(attributes.podLabels)}}, ` +
        `namespace labels {${canonicalLabels(attributes.namespaceLabels)}}, named ports [${ports}], ${cls}`
      );
    }
  }
}

/**
 * Parses an identity key back into what it stands for.
 *
 * @throws {IdentityKeyError} when `key` is not a key {@link identityKey} builds.
 * @example
 * ```ts
 * identityKeyFields('["cidr","10.0.0.0/8"]'); // { kind: "cidr", cidr: "10.0.0.0/8" }
 * ```
 */
export function identityKeyFields(key: string): IdentityKeyFields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(key);
  } catch (cause) {
    throw new IdentityKeyError(`Cannot read identity key ${JSON.stringify(key)}: it is not JSON`, { cause });
  }
  const bad = (): IdentityKeyError => new IdentityKeyError(`Cannot read identity key ${JSON.stringify(key)}: it is not a pod, host or cidr key`);
  if (!Array.isArray(parsed)) throw bad();
  const cidr = (value: unknown): { cidr?: string } => {
    if (value === null) return {};
    if (typeof value !== "string") throw bad();
    return { cidr: value };
  };
  const labels = (value: unknown): Labels => {
    if (!Array.isArray(value) || !value.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((p) => typeof p === "string"))) throw bad();
    return Object.fromEntries(value as [string, string][]);
  };
  const [kind, ...rest] = parsed as unknown[];
  if (kind === "cidr" && rest.length === 1 && typeof rest[0] === "string") return { kind, cidr: rest[0] };
  if (kind === "host" && rest.length === 1) return { kind, ...cidr(rest[0]) };
  if (kind === "pod" && rest.length === 5 && typeof rest[0] === "string" && Array.isArray(rest[3])) {
    return {
      kind,
      namespace: rest[0],
      namespaceLabels: labels(rest[1]),
      labels: labels(rest[2]),
      namedPorts: rest[3] as NamedPort[],
      ...cidr(rest[4]),
    };
  }
  throw bad();
}
