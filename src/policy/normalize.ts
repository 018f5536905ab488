/**
 * From manifests to the {@link World}: takes already-parsed objects
 * (Namespaces, Pods, policies of both APIs, and Lists of them), validates
 * each, and fills in what the API server and kubelet would have: default
 * namespaces, the automatic namespace name label, pod IPs in canonical form,
 * named ports. Pure: no file I/O, the caller parses the YAML.
 *
 * @module
 */
import type { AnyPolicy, ConfigMapKeyReference, HttpRule, LabelSelector, Namespace, Pod, PolicyPeer, PolicyPort, PolicyProtocol, TcpRule, TlsRule } from "./api-types.ts";
import { canonicalIp, ipFamily } from "./ip.ts";
import { PolicyError, validateObject } from "./validate.ts";
import type { NamespaceInfo, PodInfo, World } from "./world.ts";
import { podKey } from "./world.ts";

/** An object that could not be loaded into the world; it names the object's kind, namespace/name, field and source. */
export type LoadError = PolicyError;

/** The label the API server puts on every namespace, holding its name. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** The namespace a Pod without `metadata.namespace` lands in, as with `kubectl apply`. */
export const DEFAULT_NAMESPACE = "default";

/** Options of {@link buildWorld}. */
export interface BuildWorldOptions {
  /** Says where the object at `index` of the input came from, for error messages (e.g. `demo.yaml document 3`). */
  source?: (index: number) => string;
  /** Addresses of the node(s), besides those learned from host-network pods. */
  hostIPs?: string[];
}

/** What {@link buildWorld} made: the world of every valid object, and one error per problem with the others. */
export interface BuiltWorld {
  world: World;
  errors: LoadError[];
}

/**
 * Builds the world from parsed manifests. Invalid objects are left out and
 * reported; the others still make up the world, so one bad object never
 * hides the rest.
 *
 * Pods: namespace defaults to `default`; IPs come from `status.podIPs`, else
 * `status.podIP`; a host-network pod's IPs are its node's, so they go to
 * `hostIPs` and the pod itself gets none; a pod that has finished (phase
 * Succeeded or Failed) has released its IPs and gets none. Two pods claiming
 * one IP is an error on the second.
 *
 * @example
 * ```ts
 * const { world, errors } = buildWorld(parseAllDocuments(text).map((d) => d.toJS()), { source: (i) => `demo.yaml document ${i + 1}` });
 * ```
 */
export function buildWorld(objects: unknown[], options: BuildWorldOptions = {}): BuiltWorld {
  const errors: PolicyError[] = [];
  const namespaces = new Map<string, NamespaceInfo>();
  const pods = new Map<string, PodInfo>();
  const policies: AnyPolicy[] = [];
  const hostIPs = new Set((options.hostIPs ?? []).map(hostIp));
  const referencedNamespaces: string[] = [];
  const firstSource = new Map<string, string | undefined>();
  const ipOwner = new Map<string, string>();

  for (const located of flatten(objects, options.source)) {
    if (located instanceof PolicyError) {
      errors.push(located);
      continue;
    }
    const { object, source } = located;
    const identity = identify(object);
    const fail = (field: string, detail: string): void => {
      errors.push(new PolicyError({ ...identity, field, detail, source }));
    };
    const issues = validateObject(object);
    if (issues.length > 0) {
      for (const issue of issues) fail(issue.field, issue.message);
      continue;
    }
    const valid = withoutNulls(object) as Namespace | Pod | AnyPolicy;
    const name = valid.metadata.name;
    const isDuplicate = (key: string): boolean => {
      if (!firstSource.has(key)) return false;
      const first = firstSource.get(key);
      fail("metadata.name", `${JSON.stringify(name)} is taken by an earlier ${valid.kind}${first === undefined ? "" : ` (${first})`}`);
      return true;
    };
    if (valid.kind === "Namespace") {
      if (isDuplicate(`Namespace ${name}`)) continue;
      namespaces.set(name, { name, labels: { ...valid.metadata.labels, [NAMESPACE_NAME_LABEL]: name } });
      firstSource.set(`Namespace ${name}`, source);
      continue;
    }
    const namespace = valid.metadata.namespace ?? DEFAULT_NAMESPACE;
    const key = `${valid.kind} ${namespace}/${name}`;
    if (isDuplicate(key)) continue;
    if (valid.kind === "Pod") {
      const pod = podInfo(valid, namespace);
      const taken = pod.ips.findIndex((ip) => ipOwner.has(ip));
      if (taken >= 0) {
        const ip = pod.ips[taken] ?? "";
        const field = valid.status?.podIPs === undefined ? "status.podIP" : `status.podIPs[${taken}].ip`;
        fail(field, `${JSON.stringify(ip)} is already the address of pod ${JSON.stringify(ipOwner.get(ip))}`);
        continue;
      }
      for (const ip of pod.ips) ipOwner.set(ip, podKey(namespace, name));
      if (valid.spec.hostNetwork === true) for (const ip of statusIps(valid)) hostIPs.add(ip);
      pods.set(podKey(namespace, name), pod);
    } else {
      policies.push(knownPolicyFields(valid));
    }
    referencedNamespaces.push(namespace);
    firstSource.set(key, source);
  }
  for (const name of referencedNamespaces) {
    if (!namespaces.has(name)) namespaces.set(name, { name, labels: { [NAMESPACE_NAME_LABEL]: name } });
  }
  return { world: { namespaces, pods, policies, hostIPs: [...hostIPs] }, errors };
}

/** A pod as {@link worldFromParts} takes it: the fields policy reads, flat. */
export interface PodParts {
  /** Defaults to `default`. */
  namespace?: string;
  name: string;
  labels?: Record<string, string>;
  ips?: string[];
  namedPorts?: { name: string; port: number; protocol?: PolicyProtocol }[];
  nodeName?: string;
  hostNetwork?: boolean;
}

/** A world described briefly, for tests and examples. */
export interface WorldParts {
  /** Namespace name to its labels (the automatic name label is added). */
  namespaces?: Record<string, Record<string, string>>;
  pods?: PodParts[];
  /** Policy manifests of either API. */
  policies?: unknown[];
  hostIPs?: string[];
}

/**
 * Builds a world from brief parts, through the same validation as
 * {@link buildWorld}; throws an AggregateError of {@link LoadError}s if any
 * part is invalid.
 *
 * @example
 * ```ts
 * const world = worldFromParts({
 *   namespaces: { shop: { team: "shop" } },
 *   pods: [{ namespace: "shop", name: "api", labels: { app: "api" }, ips: ["10.244.1.2"] }],
 * });
 * ```
 */
export function worldFromParts(parts: WorldParts): World {
  const objects: unknown[] = [
    ...Object.entries(parts.namespaces ?? {}).map(([name, labels]) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels } })),
    ...(parts.pods ?? []).map(podManifest),
    ...(parts.policies ?? []),
  ];
  const { world, errors } = buildWorld(objects, { hostIPs: parts.hostIPs ?? [] });
  if (errors.length > 0) throw new AggregateError(errors, `Cannot build world from parts: ${errors.map((e) => e.message).join("; ")}`);
  return world;
}

function podManifest(parts: PodParts): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: parts.name, namespace: parts.namespace ?? DEFAULT_NAMESPACE, labels: parts.labels ?? {} },
    spec: {
      nodeName: parts.nodeName,
      hostNetwork: parts.hostNetwork,
      containers: [{ name: "main", ports: (parts.namedPorts ?? []).map((p) => ({ name: p.name, containerPort: p.port, protocol: p.protocol })) }],
    },
    status: { podIPs: (parts.ips ?? []).map((ip) => ({ ip })) },
  };
}

/**
 * The policy with only the fields its type declares, as the API server
 * stores it after dropping unknown fields: a stray `action` in a
 * NetworkPolicy rule must not turn into a Deny further down.
 */
function knownPolicyFields(policy: AnyPolicy): AnyPolicy {
  const { name, namespace, labels, generation, uid, resourceVersion } = policy.metadata;
  const metadata = defined({ name, namespace, labels, generation, uid, resourceVersion });
  if (policy.kind === "NetworkPolicy") {
    // spec and podSelector may be omitted: the API server then selects every pod of the namespace.
    const spec = policy.spec ?? { podSelector: {} };
    return {
      apiVersion: policy.apiVersion,
      kind: policy.kind,
      metadata,
      spec: defined({
        podSelector: knownSelectorFields(spec.podSelector ?? {}),
        policyTypes: spec.policyTypes,
        ingress: spec.ingress?.map((rule) => defined({ from: rule.from?.map(knownPeerFields), ports: rule.ports?.map(knownPortFields) })),
        egress: spec.egress?.map((rule) => defined({ to: rule.to?.map(knownPeerFields), ports: rule.ports?.map(knownPortFields) })),
      }),
    };
  }
  const spec = policy.spec;
  return {
    apiVersion: policy.apiVersion,
    kind: policy.kind,
    metadata,
    spec: defined({
      selector: knownSelectorFields(spec.selector),
      policyTypes: spec.policyTypes,
      ingress: spec.ingress?.map((rule) => defined({ from: rule.from?.map(knownPeerFields), ports: rule.ports?.map(knownPortFields), action: rule.action, tcp: knownTcpFields(rule.tcp), http: rule.http?.map(knownHttpFields), tls: knownTlsFields(rule.tls) })),
      egress: spec.egress?.map((rule) => defined({ to: rule.to?.map(knownPeerFields), ports: rule.ports?.map(knownPortFields), action: rule.action, tcp: knownTcpFields(rule.tcp), http: rule.http?.map(knownHttpFields), tls: knownTlsFields(rule.tls) })),
      mode: spec.mode,
    }),
  };
}

function knownHttpFields(rule: HttpRule): HttpRule {
  return defined({
    method: rule.method,
    path: rule.path && defined({ exact: rule.path.exact, prefix: rule.path.prefix, regex: rule.path.regex }),
    host: rule.host && defined({ exact: rule.host.exact, suffix: rule.host.suffix, regex: rule.host.regex }),
    headers: rule.headers?.map((header) =>
      defined({ name: header.name, exact: header.exact, prefix: header.prefix, regex: header.regex, present: header.present, absent: header.absent }),
    ),
  });
}

function knownTlsFields(tls: TlsRule | undefined): TlsRule | undefined {
  if (!tls) return undefined;
  const { termination, clientCertificate } = tls;
  const configMapKey = (ref: ConfigMapKeyReference | undefined) => ref && { configMapName: ref.configMapName, key: ref.key };
  return defined({
    serverNames: tls.serverNames,
    termination: termination && defined({ certificate: { secretName: termination.certificate.secretName }, upstream: termination.upstream, upstreamCA: configMapKey(termination.upstreamCA), alpn: termination.alpn }),
    clientCertificate: clientCertificate && { ca: { configMapName: clientCertificate.ca.configMapName, key: clientCertificate.ca.key }, subjectAltNames: clientCertificate.subjectAltNames },
  });
}

function knownTcpFields(tcp: TcpRule | undefined): TcpRule | undefined {
  return (
    tcp &&
    defined({
      strict: tcp.strict,
      maxConnectionsPerSource: tcp.maxConnectionsPerSource,
      newConnectionsPerSecond: tcp.newConnectionsPerSecond && defined({ average: tcp.newConnectionsPerSecond.average, burst: tcp.newConnectionsPerSecond.burst }),
    })
  );
}

function knownSelectorFields(selector: LabelSelector): LabelSelector {
  return defined({
    matchLabels: selector.matchLabels,
    matchExpressions: selector.matchExpressions?.map(({ key, operator, values }) => defined({ key, operator, values })),
  });
}

function knownPeerFields(peer: PolicyPeer): PolicyPeer {
  return defined({
    podSelector: peer.podSelector && knownSelectorFields(peer.podSelector),
    namespaceSelector: peer.namespaceSelector && knownSelectorFields(peer.namespaceSelector),
    ipBlock: peer.ipBlock && defined({ cidr: peer.ipBlock.cidr, except: peer.ipBlock.except }),
  });
}

function knownPortFields({ protocol, port, endPort }: PolicyPort): PolicyPort {
  return defined({ protocol, port, endPort });
}

/** The object without its undefined fields, so that `"field" in object` means the field was given. */
function defined<T extends object>(fields: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) {
    const value = (fields as Record<string, unknown>)[key];
    if (value !== undefined) setOwn(out, key, value);
  }
  return out as T;
}

/** Sets an own field, `__proto__` included (JSON may name one; assigning it would set the prototype). */
function setOwn(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  else object[key] = value;
}

function podInfo(pod: Pod, namespace: string): PodInfo {
  // A host-network pod has its node's addresses, and a finished pod has released its own.
  const released = pod.spec.hostNetwork === true || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
  const info: PodInfo = {
    namespace,
    name: pod.metadata.name,
    labels: { ...pod.metadata.labels },
    ips: released ? [] : statusIps(pod),
    namedPorts: pod.spec.containers.flatMap((container) =>
      (container.ports ?? []).flatMap((port) => (port.name === undefined ? [] : [{ name: port.name, port: port.containerPort, protocol: port.protocol ?? "TCP" }])),
    ),
  };
  if (pod.spec.nodeName !== undefined) info.nodeName = pod.spec.nodeName;
  return info;
}

function statusIps(pod: Pod): string[] {
  const listed = pod.status?.podIPs?.map((entry) => entry.ip) ?? (pod.status?.podIP === undefined ? [] : [pod.status.podIP]);
  return listed.map(canonicalIp);
}

function hostIp(ip: string): string {
  if (ipFamily(ip) === 0) throw new TypeError(`Cannot build world: host IP ${JSON.stringify(ip)} is not a valid IP address`);
  return canonicalIp(ip);
}

interface Located {
  object: unknown;
  source: string | undefined;
}

/** Replaces every List (kind `List` or `*List`) by its items, each located as `source, items[i]`; a List without an item list becomes an error in its place. */
function flatten(objects: unknown[], source: ((index: number) => string) | undefined): (Located | PolicyError)[] {
  const out: (Located | PolicyError)[] = [];
  const add = (object: unknown, where: string | undefined): void => {
    const kind = isRecord(object) ? object.kind : undefined;
    if (typeof kind !== "string" || !kind.endsWith("List") || !isRecord(object)) {
      out.push({ object, source: where });
      return;
    }
    const items = object.items ?? [];
    if (!Array.isArray(items)) {
      out.push(new PolicyError({ ...identify(object), field: "items", detail: "must be a list", source: where }));
      return;
    }
    items.forEach((item, i) => add(item, where === undefined ? `items[${i}]` : `${where}, items[${i}]`));
  };
  objects.forEach((object, index) => add(object, source?.(index)));
  return out;
}

/** What an object, valid or not, says about itself, for error messages. */
function identify(object: unknown): { kind: string; namespace?: string; name?: string } {
  const fields = isRecord(object) ? object : {};
  const meta = isRecord(fields.metadata) ? fields.metadata : {};
  const kind = typeof fields.kind === "string" && fields.kind !== "" ? fields.kind : "object";
  const name = typeof meta.name === "string" ? meta.name : undefined;
  const declared = typeof meta.namespace === "string" ? meta.namespace : undefined;
  const namespace = kind === "Namespace" ? undefined : kind === "Pod" ? (declared ?? DEFAULT_NAMESPACE) : declared;
  return { kind, ...(namespace === undefined ? {} : { namespace }), ...(name === undefined ? {} : { name }) };
}

/** A deep copy without null fields: null means absent in Kubernetes manifests (Go's JSON decoding). */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isRecord(value)) return value;
  // A loop rather than entries → fromEntries: this copies every object the agent converts (100k ipBlocks at scale).
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const field = value[key];
    if (field !== null) setOwn(out, key, withoutNulls(field));
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
