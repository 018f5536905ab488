/**
 * The operator against a real control plane: a dev cluster (one Node, CRDs
 * installed) in a temporary folder on free ports, the operator run
 * in-process. Checks the EBPFNetworkPolicy status it writes (Accepted,
 * Programmed with observedGeneration, selected pods, programmed nodes) as
 * fake agent reports come and go, the refusal of a policy the CRD schema
 * lets through, and that of two replicas only the leader acts. Everything
 * is torn down in `after`. Needs root and the cached control plane binaries.
 */
import type { V1Node, V1Secret } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { CONTROL_PLANE_STEPS, devUp, freePorts } from "../../src/devcluster/index.ts";
import { KubeApiError, KubeClient, PatchType, Resources, findCondition, isAlreadyExists, isNotFound, resourcePath } from "../../src/k8s/index.ts";
import type { Condition, LogFields, Logger } from "../../src/k8s/index.ts";
import { writeNodeReport } from "../../src/k8s/node-report.ts";
import { runOperator } from "../../src/operator/index.ts";
import type { RunningOperator } from "../../src/operator/index.ts";
import type { EBPFNetworkPolicyStatus } from "../../src/policy/api-types.ts";
import { eventually } from "../lib/eventually.ts";
import { testFolder } from "../lib/test-folder.ts";
import { makeCertificate } from "../lib/tls-certificate.ts";
import { TLS_MATERIAL_NAMESPACE } from "../../src/policy/tls-material.ts";
import { createUnderOlderSchema } from "../lib/older-schema.ts";

const PREFIX = `pl-op-${randomBytes(3).toString("hex")}`;
const SYSTEM = "palisade-system";
const NS = PREFIX;
const LEASE = `${PREFIX}-lease`;
const folder = testFolder("op");
const { layout } = folder;
const operators: RunningOperator[] = [];
let client: KubeClient;
let nodeNames: string[] = [];

interface PolicyObject {
  metadata: { name: string; namespace: string; uid: string; generation: number; resourceVersion: string };
  status?: EBPFNetworkPolicyStatus & { conditions?: Condition[] };
}

/** Keeps warnings and errors for the failure message; the rest is noise here. */
const logged: string[] = [];
const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warn: (fields: LogFields, message: string) => logged.push(`warn ${message} ${JSON.stringify(fields)}`),
  error: (fields: LogFields, message: string) => logged.push(`error ${message} ${JSON.stringify(fields)}`),
};

/** Waits on the operator; a timeout shows its last log lines. */
function waitFor<T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  return eventually(what, check, { context: () => logged.slice(-10).join("\n") });
}

function startOperator(identity: string): Promise<RunningOperator> {
  return runOperator({
    kubeconfig: layout.adminKubeconfig,
    namespace: SYSTEM,
    leaseName: LEASE,
    identity,
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    leaderElection: { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 },
    logger: quiet,
  }).then((operator) => {
    operators.push(operator);
    return operator;
  });
}

async function stopOperator(operator: RunningOperator): Promise<void> {
  await operator.stop();
  operators.splice(operators.indexOf(operator), 1);
}

async function create(path: string, body: unknown): Promise<void> {
  try {
    await client.request("POST", path, { body });
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  }
}

function policyPath(name?: string): string {
  return resourcePath(Resources.ebpfNetworkPolicies, { namespace: NS, name });
}

async function getPolicy(name: string): Promise<PolicyObject> {
  return client.request<PolicyObject>("GET", policyPath(name));
}

function condition(policy: PolicyObject, type: string): Condition | undefined {
  return findCondition(policy.status?.conditions, type);
}

/** Waits until `name`'s status satisfies `check` and returns the policy. */
function statusOf(name: string, what: string, check: (policy: PolicyObject) => boolean): Promise<PolicyObject> {
  return waitFor(`${name}: ${what}`, async () => {
    const policy = await getPolicy(name);
    return check(policy) ? policy : undefined;
  });
}

/** Writes the fake agent report of every Node, listing `policies`. */
async function writeReports(policies: { name: string; generation: number }[]): Promise<void> {
  for (const node of nodeNames) {
    const report = {
      node,
      appliedAt: new Date().toISOString(),
      policies: await Promise.all(policies.map(async (p) => ({ kind: "EBPFNetworkPolicy" as const, namespace: NS, uid: (await getPolicy(p.name)).metadata.uid, ...p }))),
      endpoints: 0,
      podResourceVersion: "0",
      namespaceResourceVersion: "0",
      pods: 0,
      namespaces: 0,
    };
    await writeNodeReport(client, report);
  }
}

function policyBody(name: string, app: string, port = 80): { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: unknown } {
  return {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: { app } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: "client" } } }], ports: [{ protocol: "TCP", port }] }] },
  };
}

async function metricsOf(operator: RunningOperator): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${operator.port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function metricValue(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe("operator on a real control plane", { timeout: 600_000 }, () => {
  before(async () => {
    await devUp(layout, { nodes: 1, ports: await freePorts() }, () => {}, CONTROL_PLANE_STEPS);
    client = KubeClient.fromFile(layout.adminKubeconfig);
    nodeNames = (await client.request<{ items: V1Node[] }>("GET", resourcePath(Resources.nodes))).items.map((n) => n.metadata?.name ?? "");
    await create(resourcePath(Resources.namespaces), { apiVersion: "v1", kind: "Namespace", metadata: { name: SYSTEM } });
    await create(resourcePath(Resources.namespaces), { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    await create(resourcePath(Resources.namespaces), { apiVersion: "v1", kind: "Namespace", metadata: { name: TLS_MATERIAL_NAMESPACE } });
  });

  after(async () => {
    for (const operator of [...operators]) await operator.stop();
    await folder.remove();
  });

  test("serves probes and metrics, and takes the lease alone", async () => {
    const operator = await startOperator(`${PREFIX}-a`);
    assert.equal((await fetch(`http://127.0.0.1:${operator.port}/healthz`)).status, 200);
    await waitFor("readyz 200", async () => (await fetch(`http://127.0.0.1:${operator.port}/readyz`)).status === 200);
    await waitFor("leadership", async () => operator.isLeader());
    assert.equal(metricValue(await metricsOf(operator), "palisade_operator_is_leader"), 1);
  });

  test("a valid policy is Accepted at generation 1, counts its Running pods, and is not Programmed without reports", async () => {
    await waitFor("a pod in the new namespace (its default ServiceAccount must exist first)", async () => {
      await create(resourcePath(Resources.pods, { namespace: NS }), {
        apiVersion: "v1", kind: "Pod",
        metadata: { name: "web-1", namespace: NS, labels: { app: "web" } },
        spec: { nodeName: nodeNames[0], containers: [{ name: "c", image: "none" }] },
      });
      return true;
    });
    await client.request("PATCH", resourcePath(Resources.pods, { namespace: NS, name: "web-1", subresource: "status" }), {
      body: { status: { phase: "Running" } },
      contentType: PatchType.merge,
    });
    await create(policyPath(), policyBody("web", "web"));
    const policy = await statusOf("web", "Accepted and counted", (p) => condition(p, "Accepted")?.status === "True" && p.status?.selectedPods === 1);
    const accepted = condition(policy, "Accepted");
    assert.equal(accepted?.reason, "Valid");
    assert.equal(accepted?.observedGeneration, 1);
    const programmed = condition(policy, "Programmed");
    assert.equal(programmed?.status, "False");
    assert.equal(programmed?.reason, "Pending");
    assert.equal(programmed?.observedGeneration, 1);
    assert.match(programmed?.message ?? "", new RegExp(`"${nodeNames[0]}" \\(no report\\)`));
    assert.deepEqual(
      { programmedNodes: policy.status?.programmedNodes, totalNodes: policy.status?.totalNodes, programmed: policy.status?.programmed, observedGeneration: policy.status?.observedGeneration },
      { programmedNodes: 0, totalNodes: nodeNames.length, programmed: `0/${nodeNames.length}`, observedGeneration: 1 },
    );
  });

  test("Programmed follows the nodes' reports across a spec change", async () => {
    await writeReports([{ name: "web", generation: 1 }]);
    const first = await statusOf("web", "Programmed at generation 1", (p) => condition(p, "Programmed")?.status === "True");
    assert.equal(first.status?.programmed, `${nodeNames.length}/${nodeNames.length}`);
    assert.equal(condition(first, "Programmed")?.reason, "Programmed");
    const acceptedSince = condition(first, "Accepted")?.lastTransitionTime;

    await client.request("PATCH", policyPath("web"), { body: policyBody("web", "web", 8080), contentType: PatchType.merge });
    const lagging = await statusOf("web", "generation 2 observed", (p) => p.status?.observedGeneration === 2);
    assert.equal(lagging.metadata.generation, 2);
    assert.equal(condition(lagging, "Programmed")?.status, "False");
    assert.equal(condition(lagging, "Programmed")?.observedGeneration, 2);
    assert.match(condition(lagging, "Programmed")?.message ?? "", /\(at generation 1\)/);
    assert.equal(lagging.status?.programmedNodes, 0);
    assert.equal(condition(lagging, "Accepted")?.observedGeneration, 2);
    assert.equal(condition(lagging, "Accepted")?.lastTransitionTime, acceptedSince, "Accepted did not flip, so its transition time stays");

    await writeReports([{ name: "web", generation: 2 }]);
    const done = await statusOf("web", "Programmed at generation 2", (p) => condition(p, "Programmed")?.status === "True");
    assert.equal(condition(done, "Programmed")?.observedGeneration, 2);
    assert.equal(done.status?.programmed, `${nodeNames.length}/${nodeNames.length}`);
  });

  test("a label value the CRD refuses at admission, naming the field as for a NetworkPolicy", async () => {
    await assert.rejects(client.request("POST", policyPath(), { body: policyBody("bad-label", "not a label!") }), (e: unknown) => {
      assert.ok(e instanceof KubeApiError && e.code === 422, String(e));
      assert.match(e.message, /spec\.selector\.matchLabels\.app: Invalid value: "not a label!"/);
      return true;
    });
  });

  test("a label value stored before the CRD refused it is refused, naming the field, with a Warning Event", async () => {
    await createUnderOlderSchema(client, [policyBody("bad-label", "not a label!")]);
    const policy = await statusOf("bad-label", "Accepted False", (p) => condition(p, "Accepted")?.status === "False");
    const accepted = condition(policy, "Accepted");
    assert.equal(accepted?.reason, "Invalid");
    assert.equal(accepted?.observedGeneration, 1);
    assert.match(accepted?.message ?? "", /^spec\.selector\.matchLabels\["app"\] "not a label!" is not a valid label value/);
    assert.equal(condition(policy, "Programmed")?.reason, "NotAccepted");
    const event = await waitFor("a Warning Event about bad-label", async () => {
      const list = await client.request<{ items: { type: string; reason: string; note: string; regarding: { name: string; kind: string } }[] }>(
        "GET", resourcePath(Resources.events, { namespace: NS }),
      );
      return list.items.find((e) => e.regarding.name === "bad-label" && e.type === "Warning");
    });
    assert.equal(event.regarding.kind, "EBPFNetworkPolicy");
    assert.equal(event.reason, "Invalid");
    assert.match(event.note, new RegExp(`^Cannot accept EBPFNetworkPolicy "${NS}/bad-label": spec\\.selector\\.matchLabels\\["app"\\]`));
  });

  test("TLS material: checked, copied to palisade-secrets, followed through rotation and breakage, collected with the policy", async () => {
    const copyPath = (name?: string) => resourcePath(Resources.secrets, { namespace: TLS_MATERIAL_NAMESPACE, name });
    const copyOf = async (name: string): Promise<V1Secret | undefined> => {
      try {
        return await client.request<V1Secret>("GET", copyPath(name));
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    };
    const secretCopy = `secret.${NS}.api-tls`;
    const caCopy = `configmap.${NS}.shop-ca`;
    const tlsSecret = (cert: Buffer, key: Buffer) => ({
      apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls",
      metadata: { name: "api-tls", namespace: NS },
      data: { "tls.crt": cert.toString("base64"), "tls.key": key.toString("base64") },
    });
    const first = makeCertificate(["api.shop.example"]);
    const second = makeCertificate(["api.shop.example"]);
    const clientCa = makeCertificate(["clients.shop.example"]);
    // An unreferenced TLS Secret of the namespace is never copied.
    await create(resourcePath(Resources.secrets, { namespace: NS }), { ...tlsSecret(first.cert, first.key), metadata: { name: "unused-tls", namespace: NS } });
    await create(policyPath(), {
      apiVersion: "palisade.dev/v1alpha1",
      kind: "EBPFNetworkPolicy",
      metadata: { name: "tls-api", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "api" } },
        ingress: [{
          ports: [{ protocol: "TCP", port: 8443 }],
          tls: {
            termination: { certificate: { secretName: "api-tls" } },
            clientCertificate: { ca: { configMapName: "shop-ca", key: "ca.crt" }, subjectAltNames: ["spiffe://cluster.local/ns/shop/sa/frontend"] },
          },
        }],
      },
    });
    let policy = await statusOf("tls-api", "InvalidReference", (p) => condition(p, "Accepted")?.reason === "InvalidReference");
    assert.equal(
      condition(policy, "Accepted")?.message,
      `spec.ingress[0].tls.termination.certificate.secretName names Secret ${NS}/api-tls, which does not exist or is not of type kubernetes.io/tls; ` +
        `spec.ingress[0].tls.clientCertificate.ca.configMapName names ConfigMap ${NS}/shop-ca, which does not exist`,
    );
    assert.equal(condition(policy, "Programmed")?.reason, "NotAccepted");

    await create(resourcePath(Resources.secrets, { namespace: NS }), tlsSecret(first.cert, first.key));
    await create(resourcePath(Resources.configMaps, { namespace: NS }), { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "shop-ca", namespace: NS }, data: { "ca.crt": clientCa.cert.toString(), other: "not copied" } });
    policy = await statusOf("tls-api", "Accepted once the material exists", (p) => condition(p, "Accepted")?.status === "True");
    const copied = await waitFor("the certificate's copy", () => copyOf(secretCopy));
    assert.deepEqual(copied.data, { "tls.crt": first.cert.toString("base64"), "tls.key": first.key.toString("base64") });
    assert.equal(copied.metadata?.annotations?.["palisade.dev/source"], `Secret ${NS}/api-tls`);
    assert.equal(copied.metadata?.labels?.["palisade.dev/tls-material"], "true");
    const ca = await waitFor("the CA bundle's copy", () => copyOf(caCopy));
    assert.deepEqual(ca.data, { "ca.crt": clientCa.cert.toString("base64") }, "only the key a rule names");
    assert.equal(await copyOf(`secret.${NS}.unused-tls`), undefined);

    // Rotation: the copy follows.
    await client.request("PUT", resourcePath(Resources.secrets, { namespace: NS, name: "api-tls" }), { body: tlsSecret(second.cert, second.key) });
    await waitFor("the rotated certificate's copy", async () => (await copyOf(secretCopy))?.data?.["tls.crt"] === second.cert.toString("base64"));

    // A key that is not the certificate's: no copy (the proxies fail closed), and the policy says why.
    await client.request("PUT", resourcePath(Resources.secrets, { namespace: NS, name: "api-tls" }), { body: tlsSecret(second.cert, first.key) });
    await waitFor("the broken certificate's copy gone", async () => (await copyOf(secretCopy)) === undefined);
    policy = await statusOf("tls-api", "InvalidReference again", (p) => condition(p, "Accepted")?.reason === "InvalidReference");
    assert.match(condition(policy, "Accepted")?.message ?? "", /names Secret \S+\/api-tls, which holds a "tls.key" that is not the private key of the first certificate of "tls.crt"$/);
    assert.ok(await copyOf(caCopy), "the CA bundle's copy stays");

    // The policy gone, nothing references the material: its copies are collected.
    await client.request("PUT", resourcePath(Resources.secrets, { namespace: NS, name: "api-tls" }), { body: tlsSecret(second.cert, second.key) });
    await waitFor("the repaired certificate's copy", () => copyOf(secretCopy));
    await client.request("DELETE", policyPath("tls-api"));
    await waitFor("every copy collected", async () => (await client.request<{ items: unknown[] }>("GET", copyPath())).items.length === 0);
  });

  test("of two replicas only the leader acts; the standby takes over when the leader stops", async () => {
    const leader = operators[0];
    assert.ok(leader);
    assert.ok(leader.isLeader());
    const standby = await startOperator(`${PREFIX}-b`);
    await waitFor("standby ready", async () => standby.ready());
    await create(policyPath(), policyBody("two", "two"));
    await statusOf("two", "Accepted by the leader", (p) => condition(p, "Accepted")?.status === "True");
    assert.equal(standby.isLeader(), false);
    const standbyMetrics = await metricsOf(standby);
    assert.equal(metricValue(standbyMetrics, "palisade_operator_is_leader"), 0);
    assert.equal(metricValue(standbyMetrics, 'palisade_operator_reconciles_total{result="success"}'), 0);
    assert.ok(metricValue(await metricsOf(leader), 'palisade_operator_reconciles_total{result="success"}') > 0);

    await stopOperator(leader);
    await waitFor("the standby leads", async () => standby.isLeader());
    await client.request("PATCH", policyPath("two"), { body: policyBody("two", "two", 81), contentType: PatchType.merge });
    await statusOf("two", "generation 2 observed by the new leader", (p) => p.status?.observedGeneration === 2);
    assert.ok(standby.metrics.reconciles("success") > 0);
  });
});
