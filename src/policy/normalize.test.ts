import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { buildWorld, NAMESPACE_NAME_LABEL, worldFromParts } from "./normalize.ts";
import { PolicyError } from "./validate.ts";

type Fields = Record<string, unknown>;

function namespace(name: string, labels?: Record<string, string>): Fields {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, ...(labels ? { labels } : {}) } };
}

function pod(name: string, options: { namespace?: string; labels?: Record<string, string>; spec?: Fields; status?: Fields } = {}): Fields {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(options.namespace ? { namespace: options.namespace } : {}), labels: options.labels ?? { app: name } },
    spec: options.spec ?? { containers: [{ name: "main" }] },
    ...(options.status ? { status: options.status } : {}),
  };
}

function np(name: string, namespace: string, spec: unknown = { podSelector: {} }): Fields {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

function ebpf(name: string, namespace: string, spec: unknown = { selector: {} }): Fields {
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name, namespace }, spec };
}

const docs = { source: (i: number) => `demo.yaml document ${i + 1}` };

describe("buildWorld", () => {
  test("namespaces get the automatic name label, which the API server always sets", () => {
    const { world, errors } = buildWorld([namespace("shop", { team: "shop", [NAMESPACE_NAME_LABEL]: "spoofed" }), namespace("monitoring")]);
    assert.deepEqual(errors, []);
    assert.deepEqual([...world.namespaces.values()], [
      { name: "shop", labels: { team: "shop", [NAMESPACE_NAME_LABEL]: "shop" } },
      { name: "monitoring", labels: { [NAMESPACE_NAME_LABEL]: "monitoring" } },
    ]);
  });

  test("namespaces referenced by pods and policies are created, declared ones kept", () => {
    const { world, errors } = buildWorld([pod("api", { namespace: "shop" }), np("deny", "billing"), namespace("shop", { team: "shop" }), pod("job")]);
    assert.deepEqual(errors, []);
    assert.deepEqual(Object.fromEntries([...world.namespaces].map(([name, ns]) => [name, ns.labels])), {
      shop: { team: "shop", [NAMESPACE_NAME_LABEL]: "shop" },
      billing: { [NAMESPACE_NAME_LABEL]: "billing" },
      default: { [NAMESPACE_NAME_LABEL]: "default" },
    });
  });

  test("pods: default namespace, labels, node, canonical IPs from podIPs, named ports with TCP default", () => {
    const { world, errors } = buildWorld([
      pod("api", {
        labels: { app: "api", tier: "backend" },
        spec: {
          nodeName: "node-1",
          containers: [
            { name: "api", ports: [{ name: "http", containerPort: 8080 }, { containerPort: 9090 }] },
            { name: "dns", ports: [{ name: "dns", containerPort: 53, protocol: "UDP" }, { name: "dns-tcp", containerPort: 53, protocol: "TCP" }] },
          ],
        },
        status: { podIP: "10.244.1.2", podIPs: [{ ip: "10.244.1.2" }, { ip: "FD00:10:244:1:0:0:0:2" }] },
      }),
    ]);
    assert.deepEqual(errors, []);
    assert.deepEqual(world.pods.get("default/api"), {
      namespace: "default",
      name: "api",
      labels: { app: "api", tier: "backend" },
      ips: ["10.244.1.2", "fd00:10:244:1::2"],
      namedPorts: [
        { name: "http", port: 8080, protocol: "TCP" },
        { name: "dns", port: 53, protocol: "UDP" },
        { name: "dns-tcp", port: 53, protocol: "TCP" },
      ],
      nodeName: "node-1",
    });
  });

  test("pods: podIP when there is no podIPs, none when there is no status", () => {
    const { world } = buildWorld([pod("a", { status: { podIP: "FD00::0:5" } }), pod("b")]);
    assert.deepEqual(world.pods.get("default/a")?.ips, ["fd00::5"]);
    assert.deepEqual(world.pods.get("default/b")?.ips, []);
  });

  test("pods: a finished pod has released its IPs", () => {
    const { world, errors } = buildWorld([
      pod("done", { status: { phase: "Succeeded", podIP: "10.0.0.5" } }),
      pod("crashed", { status: { phase: "Failed", podIP: "10.0.0.6" } }),
      pod("new", { status: { phase: "Running", podIP: "10.0.0.5" } }),
    ]);
    assert.deepEqual(errors, []);
    assert.deepEqual([...world.pods.values()].map((p) => p.ips), [[], [], ["10.0.0.5"]]);
  });

  test("host: host-network pods' IPs are node addresses, and options add more", () => {
    const { world, errors } = buildWorld(
      [
        pod("agent-1", { namespace: "kube-system", spec: { hostNetwork: true, containers: [{ name: "a" }] }, status: { podIPs: [{ ip: "192.168.0.10" }, { ip: "FD00::10" }] } }),
        pod("agent-2", { namespace: "kube-system", spec: { hostNetwork: true, containers: [{ name: "a" }] }, status: { podIP: "192.168.0.10" } }),
      ],
      { hostIPs: ["192.168.0.11", "fd00:0::11"] },
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(world.hostIPs, ["192.168.0.11", "fd00::11", "192.168.0.10", "fd00::10"]);
    assert.deepEqual(world.pods.get("kube-system/agent-1")?.ips, []);
  });

  test("host: an invalid host IP option is a programming error", () => {
    assert.throws(() => buildWorld([], { hostIPs: ["192.168.0.256"] }), { name: "TypeError", message: 'Cannot build world: host IP "192.168.0.256" is not a valid IP address' });
  });

  test("policies: kept in order, nulls dropped, unknown fields pruned, NetworkPolicy podSelector defaulted", () => {
    const { world, errors } = buildWorld([
      np("omitted", "shop", undefined),
      np("stray", "shop", { podSelector: { matchLabels: { app: "api" }, extra: 1 }, ingress: [{ action: "Deny", from: null, ports: [{ port: 80, name: "x" }] }], egress: null, mode: "Audit" }),
      ebpf("deny", "shop", { selector: {}, mode: "Audit", ingress: [{ action: "Deny", from: [{ ipBlock: { cidr: "10.0.0.0/8", except: null }, comment: "x" }] }] }),
      ebpf("strict", "shop", { selector: {}, egress: [{ tcp: { strict: true, maxSegments: 3 } }] }),
      ebpf("limits", "shop", { selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 4, newConnectionsPerSecond: { average: 2, burst: 5, jitter: 1 }, window: 9 } }] }),
      np("no-tcp", "shop", { podSelector: {}, ingress: [{ tcp: { strict: true } }] }),
    ]);
    assert.deepEqual(errors, []);
    assert.deepEqual(world.policies, [
      { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "omitted", namespace: "shop" }, spec: { podSelector: {} } },
      { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "stray", namespace: "shop" }, spec: { podSelector: { matchLabels: { app: "api" } }, ingress: [{ ports: [{ port: 80 }] }] } },
      { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "deny", namespace: "shop" }, spec: { selector: {}, mode: "Audit", ingress: [{ action: "Deny", from: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }] } },
      { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "strict", namespace: "shop" }, spec: { selector: {}, egress: [{ tcp: { strict: true } }] } },
      {
        apiVersion: "palisade.dev/v1alpha1",
        kind: "EBPFNetworkPolicy",
        metadata: { name: "limits", namespace: "shop" },
        spec: { selector: {}, ingress: [{ tcp: { maxConnectionsPerSource: 4, newConnectionsPerSecond: { average: 2, burst: 5 } } }] },
      },
      { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "no-tcp", namespace: "shop" }, spec: { podSelector: {}, ingress: [{}] } },
    ]);
  });

  test("policies: the world holds a copy, not the caller's object", () => {
    const input = np("p", "shop", { podSelector: { matchLabels: { app: "api" } } });
    const { world } = buildWorld([input]);
    ((input.spec as Fields).podSelector as Fields).matchLabels = { app: "changed" };
    assert.deepEqual(world.policies[0]?.kind === "NetworkPolicy" && world.policies[0].spec.podSelector, { matchLabels: { app: "api" } });
  });

  test("invalid objects are reported with kind, namespace/name, field and source, and left out", () => {
    const { world, errors } = buildWorld([namespace("shop"), np("bad", "shop", { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 70 }] }] }), np("good", "shop")], docs);
    assert.deepEqual(world.policies.map((p) => p.metadata.name), ["good"]);
    assert.equal(errors.length, 1);
    const [error] = errors;
    assert.ok(error instanceof PolicyError);
    assert.equal(error.message, 'Cannot load NetworkPolicy "shop/bad" (demo.yaml document 2): spec.ingress[0].ports[0].endPort 70 is below port 80');
    assert.deepEqual([error.kind, error.namespace, error.objectName, error.field, error.source], ["NetworkPolicy", "shop", "bad", "spec.ingress[0].ports[0].endPort", "demo.yaml document 2"]);
  });

  test("one error per problem of an object", () => {
    const { errors } = buildWorld([np("Bad", "shop", { policyTypes: ["Up"], ingress: [{ ports: [{ protocol: "ICMP" }] }] })]);
    assert.deepEqual(errors.map((e) => e.field), ["metadata.name", "spec.policyTypes[0]", "spec.ingress[0].ports[0].protocol"]);
  });

  test("unknown kinds are errors naming the kind", () => {
    const { errors } = buildWorld([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop" } }], docs);
    assert.deepEqual(errors.map((e) => e.message), [
      'Cannot load ConfigMap "shop/settings" (demo.yaml document 1): kind "ConfigMap" is not one of "Namespace", "Pod", "NetworkPolicy", "EBPFNetworkPolicy"',
    ]);
  });

  test("objects without kind or that are not objects", () => {
    const { errors } = buildWorld([{ metadata: { name: "x" } }, "text", null]);
    assert.deepEqual(errors.map((e) => e.message), [
      'Cannot load object "x": kind is required',
      'Cannot load object (unnamed): must be an object, not the string "text"',
      "Cannot load object (unnamed): must be an object, not null",
    ]);
  });

  test("pod errors name the defaulted namespace", () => {
    const { errors } = buildWorld([pod("api", { spec: { containers: [] } })]);
    assert.equal(errors[0]?.message, 'Cannot load Pod "default/api": spec.containers must list at least one container');
  });

  test("duplicates: same kind, namespace and name", () => {
    const { world, errors } = buildWorld(
      [
        namespace("shop"),
        namespace("shop", { team: "x" }),
        pod("api", { namespace: "shop" }),
        pod("api", { namespace: "shop" }),
        pod("api"),
        np("p", "shop"),
        ebpf("p", "shop"),
        np("p", "shop"),
      ],
      docs,
    );
    assert.deepEqual(errors.map((e) => e.message), [
      'Cannot load Namespace "shop" (demo.yaml document 2): metadata.name "shop" is taken by an earlier Namespace (demo.yaml document 1)',
      'Cannot load Pod "shop/api" (demo.yaml document 4): metadata.name "api" is taken by an earlier Pod (demo.yaml document 3)',
      'Cannot load NetworkPolicy "shop/p" (demo.yaml document 8): metadata.name "p" is taken by an earlier NetworkPolicy (demo.yaml document 6)',
    ]);
    assert.deepEqual(world.namespaces.get("shop")?.labels, { [NAMESPACE_NAME_LABEL]: "shop" });
    assert.deepEqual([...world.pods.keys()], ["shop/api", "default/api"]);
    assert.deepEqual(world.policies.map((p) => p.kind), ["NetworkPolicy", "EBPFNetworkPolicy"]);
  });

  test("two pods claiming one IP: the second is refused", () => {
    const { world, errors } = buildWorld([
      pod("a", { status: { podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }] } }),
      pod("b", { status: { podIPs: [{ ip: "10.0.0.2" }, { ip: "FD00:0::1" }] } }),
      pod("c", { status: { podIP: "10.0.0.1" } }),
    ]);
    assert.deepEqual(errors.map((e) => e.message), [
      'Cannot load Pod "default/b": status.podIPs[1].ip "fd00::1" is already the address of pod "default/a"',
      'Cannot load Pod "default/c": status.podIP "10.0.0.1" is already the address of pod "default/a"',
    ]);
    assert.deepEqual([...world.pods.keys()], ["default/a"]);
  });

  test("lists are flattened, their items located by index", () => {
    const { world, errors } = buildWorld(
      [
        { apiVersion: "v1", kind: "List", items: [namespace("shop"), pod("api", { namespace: "shop", spec: {} })] },
        { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicyList", items: [np("p", "shop")] },
        { apiVersion: "v1", kind: "PodList", items: null },
        { apiVersion: "v1", kind: "List", metadata: { name: "broken" }, items: { a: 1 } },
      ],
      docs,
    );
    assert.deepEqual([...world.namespaces.keys()], ["shop"]);
    assert.equal(world.policies.length, 1);
    assert.deepEqual(errors.map((e) => e.message), [
      'Cannot load Pod "shop/api" (demo.yaml document 1, items[1]): spec.containers must list at least one container',
      'Cannot load List "broken" (demo.yaml document 4): items must be a list',
    ]);
  });

  test("list items are located even without a source", () => {
    const { errors } = buildWorld([{ kind: "List", items: [{ kind: "Secret", metadata: { name: "s" } }] }]);
    assert.equal(errors[0]?.message, 'Cannot load Secret "s" (items[0]): kind "Secret" is not one of "Namespace", "Pod", "NetworkPolicy", "EBPFNetworkPolicy"');
  });
});

describe("worldFromParts", () => {
  test("builds the same world as the manifests would", () => {
    const world = worldFromParts({
      namespaces: { shop: { team: "shop" } },
      pods: [{ namespace: "shop", name: "api", labels: { app: "api" }, ips: ["10.244.1.3", "FD00:10:244:1::3"], namedPorts: [{ name: "http", port: 8080 }], nodeName: "n1" }, { name: "job" }],
      policies: [np("deny", "shop")],
      hostIPs: ["192.168.0.10"],
    });
    assert.deepEqual(world.pods.get("shop/api"), {
      namespace: "shop", name: "api", labels: { app: "api" }, ips: ["10.244.1.3", "fd00:10:244:1::3"], namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }], nodeName: "n1",
    });
    assert.deepEqual(world.pods.get("default/job")?.ips, []);
    assert.deepEqual([...world.namespaces.keys()], ["shop", "default"]);
    assert.deepEqual(world.hostIPs, ["192.168.0.10"]);
    assert.equal(world.policies.length, 1);
  });

  test("throws every error at once", () => {
    assert.throws(
      () => worldFromParts({ pods: [{ name: "Bad" }], policies: [np("p", "shop", { podSelector: { matchExpressions: [{ key: "a", operator: "In" }] } })] }),
      (error: unknown) => {
        assert.ok(error instanceof AggregateError);
        assert.equal(error.errors.length, 2);
        assert.match(error.message, /^Cannot build world from parts: Cannot load Pod "default\/Bad": metadata\.name "Bad" is not a DNS-1123 subdomain/);
        return true;
      },
    );
  });
});
