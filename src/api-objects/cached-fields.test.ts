import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, objectKey } from "../k8s/cache.ts";
import { creationTime } from "../policy/pod-address-claims.ts";
import { canonicalNamedPorts, identityKey, podIdentity } from "../policy/identity-key.ts";
import { IDENTITY_KEY_INDEX, identityKeyIndex, identityObject, lowestIdentityNumber } from "../policy/identity-object.ts";
import { normalizePolicy } from "../policy/normalized-policy.ts";
import { identityFields, namespaceFields, podFields, policyFields } from "./cached-fields.ts";
import { cachedPod } from "./cached-pod.ts";
import { cachedPolicy } from "./cached-policy.ts";
import { namespaceFromObject, podFromObject, policyFromObject } from "./convert.ts";
import type { Converted, ConvertedPod } from "./convert.ts";
import { isolationOfRefused } from "./refused-policy.ts";

// Objects as the API server sends them: defaults filled in, status written, annotations of the tools that made them.
const NAMESPACE = {
  apiVersion: "v1",
  kind: "Namespace",
  metadata: {
    name: "shop",
    uid: "6c1b1f5e-0c8a-4c1e-9d43-5c3b1c2f9a10",
    resourceVersion: "4711",
    creationTimestamp: "2026-12-01T10:00:00Z",
    labels: { "kubernetes.io/metadata.name": "shop", team: "a", env: "prod" },
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1","kind":"Namespace"}' },
  },
  spec: { finalizers: ["kubernetes"] },
  status: { phase: "Active" },
};

const POD = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "web-7d4b9c",
    generateName: "web-",
    namespace: "shop",
    uid: "0f5e2a77-61c1-4a4b-b0a8-3b4d3c9e1f00",
    resourceVersion: "5120",
    creationTimestamp: "2026-12-01T10:01:00Z",
    labels: { app: "web", "pod-template-hash": "7d4b9c" },
    annotations: { "kubernetes.io/psp": "restricted", "prometheus.io/port": "9090" },
    ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-7d4b9c", uid: "aa", controller: true, blockOwnerDeletion: true }],
    finalizers: ["example.com/hold"],
  },
  spec: {
    nodeName: "node-1",
    hostNetwork: false,
    serviceAccountName: "default",
    restartPolicy: "Always",
    dnsPolicy: "ClusterFirst",
    schedulerName: "default-scheduler",
    terminationGracePeriodSeconds: 30,
    securityContext: {},
    tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }],
    volumes: [{ name: "token", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3607 } }] } }],
    initContainers: [{ name: "init", image: "busybox", ports: [{ name: "init-port", containerPort: 7000 }] }],
    containers: [
      {
        name: "web",
        image: "nginx:1.27",
        imagePullPolicy: "IfNotPresent",
        env: [{ name: "MODE", value: "production" }],
        ports: [
          { name: "http", containerPort: 8080, protocol: "TCP" },
          { containerPort: 9090, protocol: "TCP" },
        ],
        resources: { requests: { cpu: "100m", memory: "64Mi" } },
        readinessProbe: { httpGet: { path: "/ready", port: 8080, scheme: "HTTP" }, periodSeconds: 10 },
        volumeMounts: [{ name: "token", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true }],
        terminationMessagePath: "/dev/termination-log",
      },
      { name: "metrics", image: "exporter", ports: [{ name: "metrics", containerPort: 9100, protocol: "UDP" }] },
    ],
  },
  status: {
    phase: "Running",
    hostIP: "192.0.2.10",
    hostIPs: [{ ip: "192.0.2.10" }],
    podIP: "10.244.1.7",
    podIPs: [{ ip: "10.244.1.7" }, { ip: "fd00:10:244:1::7" }],
    qosClass: "Burstable",
    startTime: "2026-12-01T10:01:02Z",
    conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-12-01T10:01:09Z" }],
    containerStatuses: [{ name: "web", ready: true, restartCount: 0, image: "nginx:1.27", imageID: "sha256:abc", containerID: "containerd://1", state: { running: { startedAt: "2026-12-01T10:01:05Z" } } }],
  },
};

const NETWORK_POLICY = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: {
    name: "allow-web",
    namespace: "shop",
    uid: "1d0c",
    resourceVersion: "6001",
    generation: 3,
    creationTimestamp: "2026-12-01T10:02:00Z",
    labels: { owner: "team-a" },
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"NetworkPolicy","spec":{}}' },
  },
  spec: {
    podSelector: { matchLabels: { app: "web" } },
    policyTypes: ["Ingress", "Egress"],
    ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }] }, podSelector: { matchLabels: { app: "api" } } }, { ipBlock: { cidr: "172.16.0.0/12", except: ["172.16.1.0/24"] } }], ports: [{ protocol: "TCP", port: "http" }, { port: 9000, endPort: 9010 }] }],
    egress: [{ to: [{ podSelector: {} }], ports: [{ protocol: "UDP", port: 53 }] }],
  },
};

const EBPF_POLICY = {
  apiVersion: "palisade.dev/v1alpha1",
  kind: "EBPFNetworkPolicy",
  metadata: { name: "guard", namespace: "shop", uid: "9f9f", resourceVersion: "6100", generation: 7, creationTimestamp: "2026-12-01T10:03:00Z", annotations: { note: "x" } },
  spec: {
    selector: { matchLabels: { app: "web" } },
    mode: "Enforce",
    ingress: [
      { action: "Deny", from: [{ namespaceSelector: { matchLabels: { env: "dev" } } }] },
      { action: "Allow", ports: [{ port: 8080 }], tcp: { maxConnectionsPerSource: 10, newConnectionsPerSecond: { average: 5, burst: 10 } }, http: [{ method: "GET", path: { prefix: "/api" }, headers: [{ name: "x-team", exact: "a" }] }] },
      { action: "Allow", ports: [{ port: 8443 }], tls: { serverNames: ["shop.example"], termination: { certificate: { secretName: "shop-tls" }, upstream: "TLS", upstreamCA: { configMapName: "ca", key: "ca.crt" }, alpn: ["h2"] } } },
    ],
  },
  status: { observedGeneration: 7, programmedNodes: 2, totalNodes: 2, conditions: [{ type: "Programmed", status: "True", reason: "Programmed", message: "2 of 2 nodes", lastTransitionTime: "2026-12-01T10:03:05Z", observedGeneration: 7 }] },
};

/** Everything the agent and the operator read of a cached object, errors by their message. */
function reads(obj: unknown): string {
  const metadata = (obj as { metadata?: Record<string, unknown> }).metadata;
  const read = {
    namespace: namespaceFromObject(obj),
    pod: podFromObject(obj),
    policy: policyFromObject(obj),
    isolation: isolationOfRefused(obj),
    creationTime: creationTime(obj as { metadata?: { creationTimestamp?: unknown } }),
    key: typeof metadata === "object" && metadata !== null ? objectKey(obj as { metadata: { name?: string; namespace?: string } }) : undefined,
    uid: metadata?.uid,
    resourceVersion: metadata?.resourceVersion,
    generation: metadata?.generation,
  };
  return JSON.stringify(read, (_, value: unknown) => (value instanceof Error ? `${value.name}: ${value.message}` : value));
}

type Path = (string | number)[];

/** The path of every value inside `value`, containers and leaves alike. */
function paths(value: unknown, prefix: Path = []): Path[] {
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const path = [...prefix, Array.isArray(value) ? Number(key) : key];
    return [path, ...paths(inner, path)];
  });
}

/** A deep copy of `obj` with the value at `path` replaced, or removed when `replacement` is `REMOVE`. */
function mutated(obj: unknown, path: Path, replacement: unknown): unknown {
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  let parent = copy;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (replacement === REMOVE) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = replacement;
  return copy;
}

const REMOVE = Symbol("remove");
/** Each value put in every place: absent, null, and values of every JSON type, valid in some places and wrong in others. */
const REPLACEMENTS: unknown[] = [REMOVE, null, "x", "", "10.0.0.9", 80, 0, true, false, {}, [], [{}], { a: "b" }];

describe("cached fields", () => {
  it("keep what the policy layer reads of each kind and drop the rest", () => {
    assert.deepEqual(namespaceFields(NAMESPACE), {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "shop", uid: NAMESPACE.metadata.uid, resourceVersion: "4711", creationTimestamp: "2026-12-01T10:00:00Z", labels: NAMESPACE.metadata.labels },
    });
    assert.deepEqual(podFields(POD), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-7d4b9c", namespace: "shop", uid: POD.metadata.uid, resourceVersion: "5120", creationTimestamp: "2026-12-01T10:01:00Z", labels: POD.metadata.labels },
      spec: {
        nodeName: "node-1",
        hostNetwork: false,
        containers: [
          { name: "web", ports: POD.spec.containers[0]?.ports },
          { name: "metrics", ports: POD.spec.containers[1]?.ports },
        ],
      },
      status: { phase: "Running", podIP: "10.244.1.7", podIPs: POD.status.podIPs },
    });
    assert.deepEqual(policyFields(EBPF_POLICY), {
      apiVersion: EBPF_POLICY.apiVersion,
      kind: EBPF_POLICY.kind,
      metadata: { name: "guard", namespace: "shop", uid: "9f9f", resourceVersion: "6100", generation: 7, creationTimestamp: "2026-12-01T10:03:00Z" },
      spec: EBPF_POLICY.spec,
    });
  });

  it("share the values they keep with the object given, and leave it whole", () => {
    const pod = structuredClone(POD);
    const kept = podFields(pod) as typeof POD;
    kept.metadata.labels.app = "changed";
    assert.equal(pod.metadata.labels.app, "changed", "labels are shared, not copied");
    assert.notEqual(kept, pod);
    assert.equal(pod.spec.containers[0]?.image, "nginx:1.27", "the object given is not narrowed in place");
  });

  for (const [kind, obj, fields] of [
    ["Namespace", NAMESPACE, namespaceFields],
    ["Pod", POD, podFields],
    ["NetworkPolicy", NETWORK_POLICY, policyFields],
    ["EBPFNetworkPolicy", EBPF_POLICY, policyFields],
  ] as const) {
    it(`read ${kind} objects exactly as whole ones, whatever any field holds`, () => {
      assert.equal(reads(fields(obj)), reads(obj));
      let compared = 0;
      for (const path of paths(obj)) {
        for (const replacement of REPLACEMENTS) {
          const changed = mutated(obj, path, replacement);
          assert.equal(reads(fields(changed as typeof obj)), reads(changed), `${kind} with ${path.join(".")} set to ${String(typeof replacement === "symbol" ? "(absent)" : JSON.stringify(replacement))}`);
          compared++;
        }
      }
      assert.ok(compared > 100);
    });
  }

  it("notice a changed field that is read, so the comparison above can fail", () => {
    for (const [path, replacement] of [
      [["metadata", "labels", "app"], "api"],
      [["spec", "nodeName"], "node-2"],
      [["spec", "hostNetwork"], true],
      [["spec", "containers", 0, "ports", 0, "name"], "web"],
      [["status", "phase"], "Succeeded"],
      [["status", "podIPs", 0, "ip"], "10.244.1.8"],
      [["metadata", "creationTimestamp"], "2026-12-02T00:00:00Z"],
    ] as [Path, unknown][]) {
      assert.notEqual(reads(podFields(mutated(POD, path, replacement) as typeof POD)), reads(POD), path.join("."));
    }
  });

  it("keep of a PalisadeIdentity the number and key an agent reads, and it finds the same number by key", () => {
    const key = identityKey(podIdentity("shop", { "kubernetes.io/metadata.name": "shop", team: "a" }, { app: "web" }, [{ name: "http", port: 8080, protocol: "TCP" }], undefined));
    const made = identityObject(300, key);
    // As the API server sends it: metadata filled in, the readable parts of the key in the spec.
    const whole = { ...made, metadata: { ...made.metadata, uid: "5d0e", resourceVersion: "7001", creationTimestamp: "2026-12-01T10:04:00Z", generation: 1 } };
    assert.ok(Object.keys(whole.spec).length > 3, "the spec holds more than the key");
    const kept = identityFields(whole);
    assert.deepEqual(kept, { apiVersion: whole.apiVersion, kind: whole.kind, metadata: { name: "300", uid: "5d0e", resourceVersion: "7001" }, spec: { key } });
    assert.deepEqual(identityKeyIndex(kept), identityKeyIndex(whole));
    const cache = new Cache({ [IDENTITY_KEY_INDEX]: identityKeyIndex });
    cache.upsert(kept);
    cache.upsert(identityFields({ ...whole, metadata: { ...whole.metadata, name: "299" } }));
    assert.equal(lowestIdentityNumber(cache.byIndex(IDENTITY_KEY_INDEX, key)), 299);
    // A spec that is not a record is kept whole, and indexes as nothing, as it would whole.
    const broken = { ...whole, spec: "x" } as unknown as typeof whole;
    assert.deepEqual(identityKeyIndex(identityFields(broken)), identityKeyIndex(broken));
  });
});

/** JSON of what the agent reads of a policy, errors by their field and message. */
function json(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (v instanceof Error ? `${v.name}: ${String((v as { field?: unknown }).field)}: ${v.message}` : typeof v === "bigint" ? String(v) : v));
}

/** What the agent read of a whole policy object before it cached policies converted: the conversion, normalized, and the report's uid and generation. */
function wholePolicyReads(obj: unknown): string {
  const converted = policyFromObject(obj);
  const isolation = isolationOfRefused(obj);
  if (!converted.ok) return json({ ok: false, errors: converted.errors, isolation: isolation && normalizePolicy(isolation) });
  const { uid, generation } = converted.value.metadata;
  return json({ ok: true, policy: normalizePolicy(converted.value), uid: uid ?? "", generation: generation ?? 0 });
}

/** What the agent reads of a cached policy. */
function cachedPolicyReads(obj: unknown): string {
  const { converted, metadata } = cachedPolicy(obj as object);
  if (!converted.ok) return json(converted);
  return json({ ok: true, policy: converted.policy, uid: metadata?.uid ?? "", generation: metadata?.generation ?? 0 });
}

describe("cached policies", () => {
  it("hold no spec: an accepted policy is its normalized form, a refused one its errors and the isolation it stands for", () => {
    const cached = cachedPolicy(NETWORK_POLICY);
    assert.equal("spec" in cached, false);
    assert.deepEqual(cached.metadata, policyFields(NETWORK_POLICY).metadata);
    assert.ok(cached.converted.ok);
    assert.equal(cached.converted.policy.key, "NetworkPolicy/shop/allow-web");
    assert.equal(cached.converted.policy.prefixes.texts.join(" "), "172.16.0.0/12 172.16.1.0/24");
    const refused = cachedPolicy(mutated(NETWORK_POLICY, ["spec", "ingress", 0, "from", 1, "ipBlock", "cidr"], "172.016.0.0/12") as object);
    assert.ok(!refused.converted.ok);
    assert.match(refused.converted.errors[0]?.message ?? "", /^Cannot load NetworkPolicy "shop\/allow-web": spec\.ingress\[0\]\.from\[1\]\.ipBlock\.cidr /);
    assert.deepEqual(refused.converted.isolation?.rules, [], "its pods are isolated with none of its rules");
    assert.deepEqual(refused.converted.isolation?.types, ["Ingress", "Egress"]);
  });

  for (const [kind, obj] of [
    ["NetworkPolicy", NETWORK_POLICY],
    ["EBPFNetworkPolicy", EBPF_POLICY],
  ] as const) {
    it(`read ${kind} objects as the agent read whole ones, whatever any field holds`, () => {
      assert.equal(cachedPolicyReads(obj), wholePolicyReads(obj));
      let compared = 0;
      let refused = 0;
      for (const path of paths(obj)) {
        for (const replacement of REPLACEMENTS) {
          const changed = mutated(obj, path, replacement);
          const whole = wholePolicyReads(changed);
          assert.equal(cachedPolicyReads(changed), whole, `${kind} with ${path.join(".")} set to ${String(typeof replacement === "symbol" ? "(absent)" : JSON.stringify(replacement))}`);
          compared++;
          if (whole.startsWith('{"ok":false')) refused++;
        }
      }
      assert.ok(compared > 100 && refused > 50, `${refused} of ${compared} refused`);
    });
  }
});

/**
 * What the agent reads of a Pod: its conversion as the compiler takes it (labels in any order, named ports in
 * canonical order), the creation time that settles a claimed address, its key and resourceVersion.
 */
function podReads(converted: Converted<ConvertedPod>, obj: unknown): string {
  const metadata = (obj as { metadata?: Record<string, unknown> }).metadata;
  const key = typeof metadata === "object" && metadata !== null ? objectKey(obj as { metadata: { name?: string; namespace?: string } }) : undefined;
  const creation = creationTime(obj as { metadata?: { creationTimestamp?: unknown } });
  const read = converted.ok
    ? { ...converted.value, pod: { ...converted.value.pod, labels: Object.entries(converted.value.pod.labels).sort(), namedPorts: canonicalNamedPorts(converted.value.pod.namedPorts) } }
    : converted.errors;
  return json({ read, creation, key, resourceVersion: metadata?.resourceVersion });
}

describe("cached pods", () => {
  it("hold no spec, status, uid or labels: the pod converted, which holds the labels", () => {
    const cached = cachedPod(POD);
    assert.deepEqual(Object.keys(cached), ["apiVersion", "kind", "metadata", "converted"]);
    const { labels, uid, ...metadata } = podFields(POD).metadata;
    assert.ok(uid !== undefined);
    assert.deepEqual(cached.metadata, metadata);
    assert.ok(cached.converted.ok);
    assert.deepEqual(cached.converted.value.pod.labels, labels);
    assert.deepEqual(cached.converted.value.pod.ips, ["10.244.1.7", "fd00:10:244:1::7"]);
  });

  it("share equal labels and named ports between pods, frozen, named ports in canonical order", () => {
    const other = mutated(mutated(POD, ["metadata", "name"], "web-other"), ["metadata", "labels"], { "pod-template-hash": "7d4b9c", app: "web" });
    const [a, b] = [cachedPod(POD).converted, cachedPod(other as object).converted];
    assert.ok(a.ok && b.ok);
    assert.equal(a.value.pod.labels, b.value.pod.labels, "labels equal in another order");
    assert.equal(a.value.pod.namedPorts, b.value.pod.namedPorts);
    assert.ok(Object.isFrozen(a.value.pod.labels) && Object.isFrozen(a.value.pod.namedPorts) && a.value.pod.namedPorts.every((p) => Object.isFrozen(p)));
    assert.deepEqual(a.value.pod.namedPorts, canonicalNamedPorts(a.value.pod.namedPorts));
    const relabelled = cachedPod(mutated(POD, ["metadata", "labels", "app"], "api") as object).converted;
    assert.ok(relabelled.ok);
    assert.notEqual(relabelled.value.pod.labels, a.value.pod.labels);
    assert.equal(relabelled.value.pod.labels.app, "api");
  });

  it("read Pod objects as the agent read whole ones, whatever any field holds", () => {
    assert.equal(podReads(cachedPod(POD).converted, cachedPod(POD)), podReads(podFromObject(POD), POD));
    let compared = 0;
    for (const path of paths(POD)) {
      for (const replacement of REPLACEMENTS) {
        const changed = mutated(POD, path, replacement);
        const cached = cachedPod(changed as object);
        assert.equal(podReads(cached.converted, cached), podReads(podFromObject(changed), changed), `Pod with ${path.join(".")} set to ${String(typeof replacement === "symbol" ? "(absent)" : JSON.stringify(replacement))}`);
        compared++;
      }
    }
    assert.ok(compared > 100);
  });
});
