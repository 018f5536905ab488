/**
 * Bad input at every door: malformed and hostile EBPFNetworkPolicies,
 * NetworkPolicies, PalisadeIdentities, Pods and Namespaces (the rows of
 * bad-input-rows.ts) applied in batches to a real dev cluster (`dev up
 * --nodes 2`: control plane, node runtimes, operator, agents) in a
 * temporary folder. Each row meets its outcome: refused at admission with
 * the field named, or taken and then refused by Palisade (Accepted=False and
 * a Warning Event naming the field), or taken and used. After each batch
 * nothing crashed (same agent and operator processes, agents healthy), nothing
 * stalled (a change of a known-good policy is Programmed by the operator and
 * listed in every node's report), and enforcement is what it was, checked
 * with real packets between pods on both nodes. A policy refused by the
 * operator and corrected with `kubectl apply` is Programmed as promptly as a
 * valid change. Needs root and the cached control plane binaries; only one
 * dev cluster with nodes runs per machine.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { after, before, describe, test } from "node:test";
import type { TestContext } from "node:test";
import { findApplied, readNodeReport } from "../../src/k8s/node-report.ts";
import { agentMetricsUrl } from "../../src/devcluster/index.ts";
import { KubeApiError, KubeClient, PatchType, Resources, findCondition, isNotFound, resourcePath } from "../../src/k8s/index.ts";
import type { Condition, ResourceRef } from "../../src/k8s/index.ts";
import type { PalisadeIdentity } from "../../src/policy/api-types.ts";
import { eventually } from "../lib/eventually.ts";
import { DevCli } from "../lib/dev-cli.ts";
import { alive } from "../lib/processes.ts";
import { testFolder } from "../lib/test-folder.ts";
import { createUnderOlderSchema } from "../lib/older-schema.ts";
import { identityRows, refusedRows, storedRows } from "./bad-input-rows.ts";
import type { Manifest, Row, RowContext } from "./bad-input-rows.ts";

const cluster = new DevCli(testFolder("bad"));
const base = cluster.folder.root;
const dir = cluster.folder.layout.dir;
const tag = `pl-bad-${Math.random().toString(16).slice(2, 8)}`;
const X = `${tag}-x`;
const Y = `${tag}-y`;
const BAD = `${tag}-bad`;
/** The traffic matrix: pods a (node 1) and b (node 2) in X, c (node 1) in Y, all serving port 80. */
const MATRIX_PODS: [string, string, number][] = [[X, "a", 1], [X, "b", 2], [Y, "c", 1]];
/** Outcomes of rows taken by the API server wait this long at most (a bound on a hang, not a timed assertion). */
const OUTCOME_TIMEOUT_MS = 60_000;

let client: KubeClient;
let context: RowContext;
/** The pids of the operator and agents when the cluster came up: a crash or restart changes them. */
let pids = new Map<string, number>();
let canaryDenies = false;
/** Rows whose outcome is checked at the end (collection after the grace period). */
const collectedLater: Row[] = [];

const palisade = (...args: string[]): string => cluster.ok(...args);
const kube = (...args: string[]): string => cluster.kube(...args);

function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = OUTCOME_TIMEOUT_MS): Promise<T> {
  return eventually(what, check, { timeoutMs, intervalMs: 200, context: () => logTail() });
}

/** The operator's and agents' last warnings and errors, for a failure message. */
function logTail(): string {
  const logs = join(dir, "logs");
  if (!existsSync(logs)) return "";
  return readdirSync(logs)
    .filter((f) => f.startsWith("agent-") || f.startsWith("operator"))
    .flatMap((f) => readFileSync(join(logs, f), "utf8").split("\n").filter((l) => /"level":(40|50|60)/.test(l)).slice(-4).map((l) => `${f}: ${l.slice(0, 400)}`))
    .join("\n");
}

function runningPids(): Map<string, number> {
  const run = join(dir, "run");
  return new Map(
    readdirSync(run)
      .filter((f) => (f.startsWith("agent-") || f === "operator.pid") && f.endsWith(".pid"))
      .map((f) => [f.slice(0, -4), Number(readFileSync(join(run, f), "utf8").trim())]),
  );
}

const RESOURCES: Record<string, ResourceRef> = {
  EBPFNetworkPolicy: Resources.ebpfNetworkPolicies,
  NetworkPolicy: Resources.networkPolicies,
  PalisadeIdentity: Resources.palisadeIdentities,
  Pod: Resources.pods,
  Namespace: Resources.namespaces,
};

function resourceOf(object: Manifest): ResourceRef {
  const resource = RESOURCES[object.kind];
  assert.ok(resource, `no resource for kind ${object.kind}`);
  return resource;
}

/** Creates `object` as `kubectl apply --validate=strict` would send it; returns what the API server stored, or its refusal. */
async function create(object: Manifest): Promise<Stored | KubeApiError> {
  try {
    return await client.request<Stored>("POST", resourcePath(resourceOf(object), { namespace: object.metadata.namespace }), { body: object, query: { fieldValidation: "Strict" } });
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
}

interface Stored {
  metadata: { name: string; namespace?: string; uid: string; generation: number };
  status?: { conditions?: Condition[] };
}

async function get(object: Manifest): Promise<Stored> {
  return client.request<Stored>("GET", resourcePath(resourceOf(object), { namespace: object.metadata.namespace, name: object.metadata.name }));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Warning Events about the object, as `kubectl events` lists them. */
async function warnings(object: Manifest): Promise<{ reason: string; note: string }[]> {
  const namespace = object.metadata.namespace ?? "default";
  const list = await client.request<{ items: { type: string; reason: string; note: string; regarding: { kind: string; name: string } }[] }>("GET", resourcePath(Resources.events, { namespace }));
  return list.items.filter((e) => e.type === "Warning" && e.regarding.kind === object.kind && e.regarding.name === object.metadata.name);
}

async function identities(): Promise<PalisadeIdentity[]> {
  return (await client.request<{ items: PalisadeIdentity[] }>("GET", resourcePath(Resources.palisadeIdentities))).items;
}

/** Whether every node's agent report lists the policy at its current generation. */
async function listedEverywhere(object: Manifest): Promise<boolean> {
  const stored = await get(object);
  const reports = await Promise.all([1, 2].map((i) => readNodeReport(client, cluster.node(i).name)));
  const kind = object.kind as "NetworkPolicy" | "EBPFNetworkPolicy";
  return reports.every((r) => r !== undefined && findApplied(r, { kind, namespace: stored.metadata.namespace ?? "", name: stored.metadata.name, uid: stored.metadata.uid })?.generation === stored.metadata.generation);
}

/** Checks one row's outcome after its object was applied; `result` is what the API server answered. */
async function checkOutcome(row: Row, result: Stored | KubeApiError): Promise<void> {
  const outcome = row.outcome;
  const what = `${row.name} (${row.object.kind} "${row.object.metadata.name}")`;
  if ("refused" in outcome) {
    assert.ok(result instanceof KubeApiError, `${what} was admitted, expected refused at ${outcome.refused.field}`);
    assert.match(result.message, outcome.refused.message, what);
    if (outcome.refused.field !== "") assert.match(result.message, new RegExp(`(${escape(outcome.refused.field)}: |"${escape(outcome.refused.field)}")`), `${what}: the error names ${outcome.refused.field}`);
    return;
  }
  assert.ok(!(result instanceof KubeApiError), `${what} was refused at admission: ${String(result)}`);
  if ("invalid" in outcome) {
    const { field, message } = outcome.invalid;
    const policy = await waitFor(`${what}: Accepted=False`, async () => {
      const current = await get(row.object);
      const accepted = findCondition(current.status?.conditions, "Accepted");
      return accepted?.status === "False" && accepted.observedGeneration === current.metadata.generation ? current : undefined;
    });
    const accepted = findCondition(policy.status?.conditions, "Accepted");
    assert.equal(accepted?.reason, "Invalid", what);
    assert.ok(accepted?.message.startsWith(`${field} `), `${what}: Accepted names ${field}: ${accepted?.message}`);
    assert.match(accepted?.message ?? "", message, what);
    assert.equal(findCondition(policy.status?.conditions, "Programmed")?.reason, "NotAccepted", what);
    const event = await waitFor(`${what}: a Warning Event`, async () => (await warnings(row.object)).find((e) => e.reason === "Invalid"));
    assert.ok(event.note.startsWith(`Cannot accept EBPFNetworkPolicy "${row.object.metadata.namespace}/${row.object.metadata.name}": ${field} `), `${what}: ${event.note}`);
  } else if ("warned" in outcome) {
    const { field, message, reason } = outcome.warned;
    const event = await waitFor(`${what}: a Warning Event naming ${field}`, async () => (await warnings(row.object)).find((e) => e.note.includes(`${field} `) && message.test(e.note)));
    assert.equal(event.reason, reason, what);
  } else if ("programmed" in outcome) {
    await waitFor(`${what}: Accepted and Programmed`, async () => {
      const current = await get(row.object);
      const conditions = current.status?.conditions;
      const done = (type: string): boolean => findCondition(conditions, type)?.status === "True" && findCondition(conditions, type)?.observedGeneration === current.metadata.generation;
      return done("Accepted") && done("Programmed");
    });
  } else if ("listed" in outcome) {
    await waitFor(`${what}: listed by every node`, () => listedEverywhere(row.object));
  } else if ("numbered" in outcome) {
    const labels = outcome.numbered;
    await waitFor(`${what}: a PalisadeIdentity with its labels`, async () => (await identities()).some((i) => i.spec.namespace === row.object.metadata.namespace && isDeepStrictEqual(i.spec.labels, labels)));
  } else {
    collectedLater.push(row);
  }
}

/** Applies a batch of rows and checks each outcome; rows stored under the older schema are created together. */
async function applyBatch(t: TestContext, rows: Row[]): Promise<void> {
  const older = rows.filter((row) => row.olderSchema);
  const results = new Map<Row, Stored | KubeApiError>();
  if (older.length > 0) {
    const stored = await createUnderOlderSchema(client, older.map((row) => row.object as Manifest & { metadata: { namespace: string } }));
    older.forEach((row, i) => results.set(row, stored[i] as Stored));
  }
  for (const row of rows) {
    if (row.olderSchema) continue;
    const result = await create(row.object);
    if (!(result instanceof KubeApiError) && row.status !== undefined) {
      await client.request("PATCH", resourcePath(resourceOf(row.object), { namespace: row.object.metadata.namespace, name: row.object.metadata.name, subresource: "status" }), {
        body: { status: row.status },
        contentType: PatchType.merge,
      });
    }
    results.set(row, result);
  }
  for (const row of rows) await checkOutcome(row, results.get(row) as Stored | KubeApiError);
  const counts = new Map<string, number>();
  for (const row of rows) {
    const key = `${row.object.kind} ${Object.keys(row.outcome)[0]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  t.diagnostic(`${rows.length} rows: ${[...counts].map(([key, n]) => `${key} ${n}`).join(", ")}`);
}

function canaryBody(deny: boolean): Manifest {
  // Pod c accepts everything; while `deny`, a Deny rule drops what a sends it.
  const allowAll = { from: [{ namespaceSelector: {} }] };
  const denyA = { action: "Deny", from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": X } }, podSelector: { matchLabels: { app: "a" } } }] };
  return { apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: { name: "canary", namespace: Y }, spec: { selector: { matchLabels: { app: "c" } }, ingress: deny ? [denyA, allowAll] : [allowAll] } };
}

/** Whether a policy is Programmed at its current generation and listed by every node: the operator and both agents keep up. */
async function programmedEverywhere(object: Manifest): Promise<boolean> {
  const current = await get(object);
  const programmed = findCondition(current.status?.conditions, "Programmed");
  return programmed?.status === "True" && programmed.observedGeneration === current.metadata.generation && (await listedEverywhere(object));
}

/** Flips the canary policy and waits until the operator and every agent say it is enforced; returns how long that took. */
async function flipCanary(): Promise<number> {
  canaryDenies = !canaryDenies;
  const started = Date.now();
  await client.request("PATCH", resourcePath(Resources.ebpfNetworkPolicies, { namespace: Y, name: "canary" }), {
    body: { spec: canaryBody(canaryDenies).spec },
    contentType: PatchType.merge,
  });
  try {
    await waitFor(`canary (deny=${canaryDenies}) Programmed and listed by every node`, () => programmedEverywhere(canaryBody(canaryDenies)));
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await agentState()}`, { cause: e });
  }
  return Date.now() - started;
}

/** What each agent says of itself (pending identities, reported policies), for a failure message. */
async function agentState(): Promise<string> {
  const lines: string[] = [];
  for (const index of [1, 2]) {
    const node = cluster.node(index).name;
    const metrics = await (await fetch(`${agentMetricsUrl(cluster.node(index))}/metrics`)).text();
    lines.push(`${node}: ${metrics.split("\n").filter((l) => /^palisade_(identities|endpoints|policy_entries)/.test(l)).join(", ")}`);
    const report = await readNodeReport(client, node);
    lines.push(`${node} reports: ${JSON.stringify(report?.policies.map((p) => `${p.namespace}/${p.name}@${p.generation}`))}`);
  }
  return lines.join("\n");
}

interface Matrix {
  pairs: { from: string; to: string; allowed: boolean }[];
}

/** What the matrix must show: b takes only a's connections (policy b-from-a), c refuses a's while the canary denies. */
function expectedMatrix(): Map<string, boolean> {
  const expected = new Map<string, boolean>();
  for (const [fromNs, from] of MATRIX_PODS) {
    for (const [toNs, to] of MATRIX_PODS) {
      if (from === to) continue;
      const allowed = to === "b" ? from === "a" : to === "c" && from === "a" ? !canaryDenies : true;
      expected.set(`${fromNs}/${from} ${toNs}/${to}`, allowed);
    }
  }
  return expected;
}

function probeMatrix(): Map<string, boolean> {
  const parsed = JSON.parse(palisade("probe", "matrix", "--namespaces", `${X},${Y}`, "--port", "80", "--protocol", "TCP", "-o", "json")) as Matrix;
  return new Map(parsed.pairs.map((pair) => [`${pair.from} ${pair.to}`, pair.allowed]));
}

/** Nothing crashed, nothing stalled, and enforcement is what it was: checked after every batch. */
async function assertUnharmed(t: TestContext): Promise<void> {
  const now = runningPids();
  assert.deepEqual(now, pids, "the operator and agents run as the same processes");
  for (const [name, pid] of now) assert.ok(alive(pid), `${name} (pid ${pid}) is alive`);
  for (const index of [1, 2]) {
    const res = await fetch(`${agentMetricsUrl(cluster.node(index))}/healthz`);
    assert.equal(res.status, 200, `agent of node ${index} is healthy`);
  }
  const took = await flipCanary();
  t.diagnostic(`a known-good policy change was Programmed on every node in ${took} ms`);
  assert.deepEqual(probeMatrix(), expectedMatrix());
}

async function createPod(namespace: string, name: string, node: number): Promise<void> {
  await waitFor(`pod ${namespace}/${name} created (the namespace's default ServiceAccount comes first)`, async () => {
    await client.request("POST", resourcePath(Resources.pods, { namespace }), {
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace, labels: { app: name } },
        spec: { nodeName: cluster.node(node).name, containers: [{ name: "main", image: "none", ports: [{ containerPort: 80 }] }] },
      },
    });
    return true;
  });
}

describe("bad input at every door", { timeout: 900_000 }, () => {
  before(async () => {
    cluster.up(2);
    client = KubeClient.fromFile(cluster.env.KUBECONFIG as string);
    pids = runningPids();
    for (const name of [X, Y, BAD]) await client.request("POST", resourcePath(Resources.namespaces), { body: { apiVersion: "v1", kind: "Namespace", metadata: { name } } });
    for (const [namespace, name, node] of MATRIX_PODS) await createPod(namespace, name, node);
    for (const namespace of [X, Y]) kube("wait", "-n", namespace, "--for=condition=Ready", "pod", "--all", "--timeout=60s");
    const bFromA: Manifest = {
      apiVersion: "palisade.dev/v1alpha1",
      kind: "EBPFNetworkPolicy",
      metadata: { name: "b-from-a", namespace: X },
      spec: { selector: { matchLabels: { app: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }], ports: [{ protocol: "TCP", port: 80 }] }] },
    };
    for (const policy of [bFromA, canaryBody(false)]) {
      assert.ok(!((await create(policy)) instanceof KubeApiError));
      await waitFor(`${policy.metadata.name} Programmed everywhere`, () => programmedEverywhere(policy));
    }
    const a = await client.request<{ status: { podIPs: { ip: string }[] } }>("GET", resourcePath(Resources.pods, { namespace: X, name: "a" }));
    context = { bad: BAD, x: X, addressOfA: a.status.podIPs[0]?.ip ?? "", keyOfA: "" };
  });

  after(() => cluster.folder.remove());

  test("before any bad input, b takes only a's connections and everything else flows", async (t) => {
    await assertUnharmed(t);
  });

  test("objects the API server must refuse are refused at admission, naming the field", async (t) => {
    await applyBatch(t, refusedRows(context));
    await assertUnharmed(t);
  });

  test("objects the API server takes are refused by Palisade with the field named, or used", async (t) => {
    await applyBatch(t, storedRows(context));
    await assertUnharmed(t);
  });

  test("a policy the operator refused, corrected with kubectl apply, is Programmed as promptly as a valid change", async (t) => {
    const name = "corrected";
    const body = (app: string): Manifest & { metadata: { namespace: string } } => ({
      apiVersion: "palisade.dev/v1alpha1",
      kind: "EBPFNetworkPolicy",
      metadata: { name, namespace: BAD },
      spec: { selector: { matchLabels: { app } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }] },
    });
    const [stored] = await createUnderOlderSchema(client, [body("a b")]);
    await checkOutcome({ name: "refused before its correction", object: body("a b"), outcome: { invalid: { field: `spec.selector.matchLabels["app"]`, message: /"a b" is not a valid label value/ } } }, stored as Stored);
    // Swapping the CRD made the API server rebuild its storage; once a valid change goes through, every watch is back.
    await flipCanary();
    // Both changes go through kubectl apply and are timed from its return, when the API server holds them.
    const apply = (manifest: Manifest): number => {
      const file = join(base, "corrected.json");
      writeFileSync(file, JSON.stringify(manifest));
      kube("apply", "-f", file);
      return Date.now();
    };
    const correctedAt = apply(body("fixed"));
    await waitFor("the corrected policy Programmed everywhere", () => programmedEverywhere(body("fixed")));
    const corrected = Date.now() - correctedAt;
    const changed = { ...body("fixed"), spec: { selector: { matchLabels: { app: "fixed" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }] }] } };
    const changedAt = apply(changed);
    await waitFor("a valid change of it Programmed everywhere", () => programmedEverywhere(changed));
    t.diagnostic(`the corrected policy was Programmed on every node ${corrected} ms after kubectl apply returned; a valid change of it, ${Date.now() - changedAt} ms`);
    await assertUnharmed(t);
  });

  test("forged PalisadeIdentities never reach the datapath: edits are refused, forgeries collected, a deleted one in use created again", async (t) => {
    // Pod a's key changes with the policy CIDRs around its address, so its objects are looked up now.
    const identitiesOfA = async (): Promise<PalisadeIdentity[]> => (await identities()).filter((i) => i.spec.namespace === X && i.spec.labels?.["app"] === "a");
    const [ofA] = await identitiesOfA();
    assert.ok(ofA, "pod a has an identity");
    const rows = identityRows({ ...context, keyOfA: ofA.spec.key });
    await applyBatch(t, rows);
    const forged = rows[0]?.object as Manifest;
    await assert.rejects(
      client.request("PATCH", resourcePath(Resources.palisadeIdentities, { name: forged.metadata.name }), { body: { spec: { key: ofA.spec.key } }, contentType: PatchType.merge }),
      (e: unknown) => e instanceof KubeApiError && e.code === 422 && /spec: Invalid value: "object": is immutable: a changed key is a new identity/.test(e.message),
    );
    const deleted = (await identitiesOfA()).filter((i) => i.metadata.name !== "3999999003");
    for (const obj of deleted) await client.request("DELETE", resourcePath(Resources.palisadeIdentities, { name: obj.metadata.name }));
    const again = await waitFor("pod a's identity in use created again", async () => (await identitiesOfA()).find((i) => deleted.some((d) => d.metadata.name === i.metadata.name && d.metadata.uid !== i.metadata.uid)));
    t.diagnostic(`identity ${again.metadata.name} of pod a deleted and created again under its number`);
    for (const row of collectedLater) {
      await waitFor(`${row.name}: collected after the grace period`, async () => {
        try {
          await get(row.object);
          return false;
        } catch (e) {
          if (isNotFound(e)) return true;
          throw e;
        }
      }, 120_000);
    }
    await assertUnharmed(t);
  });
});
