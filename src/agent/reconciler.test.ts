import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { describe, it } from "node:test";
import type { Cache } from "../k8s/cache.ts";
import { jsonLogger, LOG_LEVELS } from "../k8s/logger.ts";
import type { NodeReport } from "../k8s/node-report.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import { FIRST_NODE_LOCAL_IDENTITY, kernelIdentity } from "../policy/desired-state.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";
import { MemoryObjects, namespace, networkPolicy, pod } from "../../test/lib/memory-objects.ts";
import { admits, clientsIn, identityTable, NODE, numberKeys, onlyAllowed, PODS, policyEntriesUnder, worldOptions, worldPod } from "../../test/lib/agent-world.ts";
import type { PodName } from "../../test/lib/agent-world.ts";
import type { WatchedKind } from "./cluster-watch.ts";
import { Reconciler } from "./reconciler.ts";

const SIGNAL = new AbortController().signal;

interface Harness {
  objects: MemoryObjects;
  datapath: MemoryDatapath;
  reconciler: Reconciler;
  reports: NodeReport[];
  logs: Record<string, unknown>[];
  /** How often the reconciler said identity keys may have new numbers. */
  identityNotices: { count: number };
  /** What the reconciler asked to sync again, as `kind/key`. */
  resyncs: string[];
  /** Stores a pod (on its node, with its address) and syncs it. */
  putPod(name: PodName, labels: Record<string, string>): Promise<void>;
  /** Stores any object and syncs it. */
  put(obj: KubernetesObject): Promise<void>;
  remove(kind: WatchedKind, key: string): Promise<void>;
  /** Commits everything synced, with nothing left queued, and returns the last report written. */
  commit(): Promise<NodeReport | undefined>;
  /** Whether the datapath's maps admit a new TCP flow from `from` to local pod `to`, as the kernel would decide. */
  admits(from: PodName, to: PodName, port?: number): boolean;
}

function harness(options: { datapath?: MemoryDatapath; identityTable?: Cache<PalisadeIdentity> } = {}): Harness {
  const objects = new MemoryObjects();
  const datapath = options.datapath ?? new MemoryDatapath();
  const reports: NodeReport[] = [];
  const logs: Record<string, unknown>[] = [];
  const identityNotices = { count: 0 };
  const resyncs: string[] = [];
  const reconciler = new Reconciler({
    ...worldOptions({
      objects,
      datapath,
      identityTable: options.identityTable,
      writeReport: async (report) => {
        reports.push(report);
        return { overflow: false };
      },
      logger: jsonLogger("debug", {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
    }),
    onIdentitiesChanged: () => identityNotices.count++,
    resync: (kind, key) => resyncs.push(`${kind}/${key}`),
  });
  const put = async (obj: KubernetesObject): Promise<void> => reconciler.sync(obj.kind as WatchedKind, objects.put(obj));
  return {
    objects,
    datapath,
    reconciler,
    reports,
    logs,
    identityNotices,
    resyncs,
    putPod: (name, labels) => put(worldPod(name, labels)),
    put,
    remove: async (kind, key) => {
      objects.remove(kind, key);
      await reconciler.sync(kind, key);
    },
    commit: async () => {
      await reconciler.commit({ drained: true });
      await reconciler.writeReport(SIGNAL);
      return reports.at(-1);
    },
    admits: (from, to, port) => admits(datapath, from, to, port),
  };
}

/** A cluster of namespace x, web pod a and client pod b on this node, client pod c on another, and the only-allowed policy. */
async function cluster(h: Harness, policy = onlyAllowed()): Promise<void> {
  await h.put(namespace("x"));
  await h.putPod("x/a", { app: "web" });
  await h.putPod("x/b", { role: "client" });
  await h.putPod("x/c", { role: "allowed" });
  await h.put(policy);
}

/** Numbers every pending identity key, as the operator would, and tells the reconciler as its informer would; returns the keys. */
function numberPending(h: Harness, table: Cache<PalisadeIdentity>): string[] {
  const pending = h.reconciler.compiled.pendingIdentityKeys();
  numberKeys(table, pending);
  h.reconciler.identityObjectsChanged(pending);
  return pending;
}

describe("Reconciler", () => {
  it("leaves a pod's address to the pod created first when a later one claims it too, and hands it over (syncing the other again) once the first is gone", async () => {
    const h = harness();
    const created = (obj: KubernetesObject, at: string): KubernetesObject => ({ ...obj, metadata: { ...obj.metadata, creationTimestamp: new Date(at) } });
    await h.put(namespace("x"));
    await h.put(created(worldPod("x/a", { app: "web" }), "2026-01-01T00:00:00Z"));
    await h.put(created(worldPod("x/b", { role: "client" }), "2026-01-01T00:00:01Z"));
    await h.put(onlyAllowed());
    // An impostor on another node whose status claims b's address, with the label the policy allows and a name sorting before b's.
    await h.put(created(pod("x/aa-impostor", "n2", PODS["x/b"].ip, { role: "allowed" }), "2026-01-01T00:00:02Z"));
    await h.commit();
    assert.ok(!h.admits("x/b", "x/a"), "b's address keeps b's identity, not the impostor's");
    assert.ok(h.logs.some((l) => String(l["msg"]).includes('claims the address 10.0.0.2 of pod "x/b"')), "the claim is logged");
    await h.remove("Pod", "x/b");
    assert.deepEqual(h.resyncs, ["Pod/x/aa-impostor"], "the impostor, now the address's only claimant, is synced again");
    await h.commit();
    assert.ok(h.admits("x/b", "x/a"), "with b gone, the address is the impostor's, as its status says");
  });

  it("makes its first commit a full sync, then writes diffs; a restarted agent re-adopts the maps without rewriting them and detaches pods deleted meanwhile", async () => {
    // Cluster identities, every key numbered already: the numbers, unlike an agent's own, do not depend on the order it meets keys in.
    const table = identityTable();
    const operator = harness({ identityTable: table });
    await cluster(operator);
    await operator.commit();
    numberPending(operator, table);
    const first = harness({ identityTable: table });
    await cluster(first);
    const report = await first.commit();
    assert.deepEqual(first.datapath.calls, ["replaceAll +11 +12", "setEndpoint 11", "attach 11", "setEndpoint 12", "attach 12"]);
    assert.ok(!first.admits("x/b", "x/a") && first.admits("x/c", "x/a"));
    assert.deepEqual({ ...report, appliedAt: "" }, {
      node: NODE,
      appliedAt: "",
      policies: [{ kind: "NetworkPolicy", namespace: "x", name: "only-allowed", uid: "uid-x/only-allowed", generation: 1 }],
      endpoints: 2,
      ...first.objects.position(),
    });
    await first.putPod("x/b", { role: "client", tier: "1" });
    await first.commit();
    assert.match(first.datapath.calls.at(-1) ?? "", /^apply/, "the second commit writes a diff");

    // The agent restarts on the same pinned maps; b was deleted while it was down.
    const { datapath } = first;
    const policy = new Map(datapath.policy);
    datapath.calls.length = 0;
    datapath.writes.length = 0;
    const second = harness({ datapath, identityTable: table });
    await second.put(namespace("x"));
    await second.putPod("x/a", { app: "web" });
    await second.putPod("x/c", { role: "allowed" });
    await second.put(onlyAllowed());
    await second.commit();
    assert.deepEqual(datapath.calls, ["replaceAll -12", "setEndpoint 11", "attach 11", "removeEndpoint 12", "detach 12"]);
    assert.deepEqual(datapath.writes.filter((w) => w.startsWith("+")), [], "nothing the maps held was rewritten");
    assert.deepEqual(datapath.policy, policy);
    assert.deepEqual(datapath.attachedInterfaces(), [11]);
    assert.ok(!second.admits("x/b", "x/a") && second.admits("x/c", "x/a"));
  });

  it("numbers a policy's CIDRs itself, and after a restart gives each the number its pinned maps hold, and no number in them to another key", async () => {
    const table = identityTable();
    const fromCidrs = (cidrs: string[]) =>
      networkPolicy("x/from-cidrs", 1, { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ from: cidrs.map((cidr) => ({ ipBlock: { cidr } })) }] });
    const first = harness({ identityTable: table });
    await cluster(first, fromCidrs(["192.0.2.0/24", "198.51.100.0/24"]));
    await first.commit();
    assert.equal(numberPending(first, table).length, 3, "only the pods' keys wait for the operator");
    first.reconciler.syncIdentities();
    await first.commit();
    assert.deepEqual(first.reconciler.compiled.pendingIdentityKeys(), []);
    // The kernel's numbers of the entries written (held in memory as offsets).
    const kernel = (id: number | undefined) => (id === undefined ? undefined : kernelIdentity(id));
    const numbers = (h: Harness) => Object.fromEntries(["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"].map((cidr) => [cidr, kernel(h.datapath.ipcache.get(cidr)?.value.identity)]));
    const before = numbers(first);
    assert.deepEqual(before, { "192.0.2.0/24": FIRST_NODE_LOCAL_IDENTITY, "198.51.100.0/24": FIRST_NODE_LOCAL_IDENTITY + 1, "203.0.113.0/24": undefined });
    assert.equal(table.size, 3, "objects for the three pods' keys only");

    // Restarted, it meets a new CIDR first: numbering afresh would give it 192.0.2.0/24's number.
    const { datapath } = first;
    datapath.writes.length = 0;
    const second = harness({ datapath, identityTable: table });
    await cluster(second, fromCidrs(["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"]));
    await second.commit();
    assert.deepEqual(numbers(second), { ...before, "203.0.113.0/24": FIRST_NODE_LOCAL_IDENTITY + 2 });
    assert.deepEqual(datapath.writes.filter((w) => w.startsWith("+ipcache") || w.startsWith("-")), ["+ipcache 203.0.113.0/24"], "only the new CIDR is written");
  });

  it("follows a pod added, relabelled and deleted, and detaches a deleted pod only after the commit that removed its endpoint entry", async () => {
    const h = harness();
    await h.put(namespace("x"));
    await h.putPod("x/a", { app: "web" });
    await h.put(onlyAllowed());
    await h.commit();
    await h.putPod("x/b", { role: "client" });
    await h.commit();
    assert.deepEqual(h.datapath.calls.slice(-3), ["apply +12", "setEndpoint 12", "attach 12"], "b's entry is written before its interface is attached");
    assert.equal(h.admits("x/b", "x/a"), false);
    await h.putPod("x/b", { role: "allowed" });
    await h.commit();
    assert.equal(h.admits("x/b", "x/a"), true, "b carries the allowed label now");
    await h.putPod("x/b", { role: "client" });
    await h.commit();
    assert.equal(h.admits("x/b", "x/a"), false, "b lost the allowed label");
    const before = h.datapath.calls.length;
    await h.remove("Pod", "x/b");
    assert.equal(h.datapath.calls.length, before, "nothing is detached before the commit");
    const report = await h.commit();
    assert.deepEqual(h.datapath.calls.slice(before), ["apply -12", "detach 12"]);
    assert.equal(h.datapath.endpoints.has(12), false);
    assert.deepEqual(h.datapath.attachedInterfaces(), [11]);
    assert.equal(report?.endpoints, 1);
    assert.equal(report?.pods, 1);
  });

  it("enforces a policy as it is added, changed and deleted, and reports the generation and uid it enforces", async () => {
    const h = harness();
    await h.put(namespace("x"));
    await h.putPod("x/a", { app: "web" });
    await h.putPod("x/c", { role: "allowed" });
    await h.commit();
    assert.ok(h.admits("x/c", "x/a"));
    assert.ok(h.admits("x/c", "x/a", 81), "no policy: everything is admitted");
    let report = await h.commit();
    assert.deepEqual(report?.policies, []);

    await h.put(onlyAllowed(1));
    report = await h.commit();
    assert.deepEqual(report?.policies, [{ kind: "NetworkPolicy", namespace: "x", name: "only-allowed", uid: "uid-x/only-allowed", generation: 1 }]);
    assert.ok(h.admits("x/c", "x/a") && !h.admits("x/c", "x/a", 81));

    await h.put(onlyAllowed(2, 81));
    report = await h.commit();
    assert.equal(report?.policies[0]?.generation, 2);
    assert.ok(!h.admits("x/c", "x/a") && h.admits("x/c", "x/a", 81));

    await h.remove("NetworkPolicy", "x/only-allowed");
    report = await h.commit();
    assert.deepEqual(report?.policies, []);
    assert.ok(h.admits("x/c", "x/a") && h.admits("x/c", "x/a", 81));
  });

  it("times each stage of a commit, the wait from the first change it carries", async () => {
    const h = harness();
    await h.put(namespace("x"));
    await h.putPod("x/a", { app: "web" });
    await h.reconciler.commit({ drained: true, receivedAt: performance.now() });
    await h.commit();
    const counts = Object.fromEntries(Object.entries(h.reconciler.commitStages).map(([stage, histogram]) => [stage, histogram.count]));
    assert.deepEqual(counts, { wait: 1, sync: 2, compile: 2, write: 2, report: 1 }, "a commit without a change it waited for has no wait; the report is written apart");
    const { compile, write } = h.reconciler.commitCpu;
    assert.deepEqual([compile.count, write.count], [2, 2], "the CPU of the stages that never pause, once per commit");
    assert.ok(compile.sum > 0, "compiling takes CPU");
    // The thread's CPU clock and the wall clock are read apart, one after the other.
    for (const stage of ["compile", "write"] as const) assert.ok(h.reconciler.commitCpu[stage].sum <= h.reconciler.commitStages[stage].sum + 1e-5, `${stage}: no more CPU than wall time`);
  });

  it("after a write that failed halfway, writes the whole state again and reports the policy only once it is in the maps", async () => {
    const h = harness();
    await h.put(namespace("x"));
    await h.putPod("x/a", { app: "web" });
    await h.putPod("x/c", { role: "allowed" });
    await h.commit();
    await h.put(onlyAllowed(1));
    h.datapath.failNextWrite = new Error("bpf_map_update_batch failed: ENOSPC");
    await assert.rejects(h.commit(), /ENOSPC/);
    assert.deepEqual(h.reports.at(-1)?.policies, [], "not reported while the maps miss part of it");
    assert.ok(h.admits("x/c", "x/a", 81), "the endpoint still has its old state");
    const report = await h.commit();
    assert.match(h.datapath.calls.at(-1) ?? "", /^replaceAll/, "the retry compares the maps with the whole desired state");
    assert.equal(report?.policies[0]?.generation, 1);
    assert.ok(h.admits("x/c", "x/a") && !h.admits("x/c", "x/a", 81));
  });

  it("leaves a peer whose identity has no PalisadeIdentity yet unmatched and reports nothing as applied until it has one", async () => {
    const table = identityTable();
    const h = harness({ identityTable: table });
    await cluster(h);
    let report = await h.commit();
    const pending = h.reconciler.compiled.pendingIdentityKeys();
    assert.ok(pending.length > 0, "no identity object exists yet");
    assert.deepEqual({ policies: report?.policies, podResourceVersion: report?.podResourceVersion }, { policies: [], podResourceVersion: "" });
    assert.equal(report?.endpoints, 2, "local pods are enforced from the first commit");
    assert.equal(h.admits("x/c", "x/a"), false, "c's labels are not known to the datapath yet");

    assert.deepEqual(numberPending(h, table), pending);
    assert.equal(h.identityNotices.count, 1);
    h.reconciler.identityObjectsChanged(pending);
    assert.equal(h.identityNotices.count, 2, "still noted: the compiler has not heard yet");
    h.reconciler.syncIdentities();
    report = await h.commit();
    assert.deepEqual(h.reconciler.compiled.pendingIdentityKeys(), []);
    assert.equal(report?.policies[0]?.name, "only-allowed");
    assert.equal(report?.podResourceVersion, h.objects.position().podResourceVersion);
    assert.equal(h.admits("x/c", "x/a"), true);

    h.reconciler.identityObjectsChanged(pending);
    assert.equal(h.identityNotices.count, 2, "keys whose number did not change are not noted");
  });

  it("keeps its report's resourceVersions where they were when changes were still queued behind the commit", async () => {
    const h = harness();
    await cluster(h);
    const first = await h.commit();
    await h.putPod("x/b", { role: "client", tier: "1" });
    await h.reconciler.commit({ drained: false });
    await h.reconciler.writeReport(SIGNAL);
    assert.equal(h.reports.length, 1, "nothing the report says changed");
    const report = await h.commit();
    assert.notEqual(report?.podResourceVersion, first?.podResourceVersion);
    assert.equal(report?.podResourceVersion, h.objects.position().podResourceVersion);
  });

  it("refuses a policy that fails validation: its last accepted generation stays enforced and reported, one never accepted isolates the pods it selects (fail closed), nothing else changes, and the refusal is logged once naming the field", async () => {
    const h = harness();
    await cluster(h);
    const open = networkPolicy("x/open-81", 1, { podSelector: { matchLabels: { app: "web" } }, ingress: [{ ports: [{ protocol: "TCP", port: 81 }] }] });
    await h.put(open);
    const before = await h.commit();
    const maps = { policy: new Map(h.datapath.policy), endpoints: new Map(h.datapath.endpoints), ipcache: new Map(h.datapath.ipcache) };
    assert.ok(h.admits("x/a", "x/b"), "b is not isolated yet");
    const errors = (): Record<string, unknown>[] => h.logs.filter((l) => l["level"] === LOG_LEVELS.error);

    // An edit that fails validation, then a status update of the same generation (the operator's conditions).
    const badEdit = networkPolicy("x/only-allowed", 2, { podSelector: { matchLabels: { app: "not valid!" } }, policyTypes: ["Ingress"] });
    await h.put(badEdit);
    await h.put({ ...badEdit, status: {} } as KubernetesObject);
    await h.commit();
    assert.deepEqual({ policy: h.datapath.policy, endpoints: h.datapath.endpoints, ipcache: h.datapath.ipcache }, maps, "a refused edit changes no map");
    // A new policy that was never valid, selecting client pods: they are isolated for ingress, with none of its rules.
    await h.put(networkPolicy("x/broken", 1, { podSelector: { matchLabels: { role: "client" } }, ingress: [{ ports: [{ protocol: "TCP", port: 80, endPort: 70 }] }] }));
    const after = await h.commit();
    assert.deepEqual(after?.policies, before?.policies, "the report still lists generation 1 of only-allowed, and open-81, not the refused policy");
    assert.ok(!h.admits("x/a", "x/b"), "b, which the refused policy selects, is isolated");
    assert.ok(!h.admits("x/b", "x/a") && h.admits("x/c", "x/a") && h.admits("x/b", "x/a", 81), "a's policies are untouched");
    assert.deepEqual(
      errors().map((l) => [l["name"], l["generation"], l["field"], l["msg"]]),
      [
        ["only-allowed", 2, 'spec.podSelector.matchLabels["app"]', `${(errors()[0]?.["err"] as { message: string }).message}; generation 1 stays enforced`],
        ["broken", 1, "spec.ingress[0].ports[0].endPort", `${(errors()[1]?.["err"] as { message: string }).message}; the pods it selects are isolated in its directions, with none of its rules, until it is corrected`],
      ],
    );
    assert.match(String(errors()[0]?.["msg"]), /^Cannot load NetworkPolicy "x\/only-allowed": spec\.podSelector\.matchLabels\["app"\] /);

    // Corrected, the policy is enforced at its new generation; deleting the broken one lifts b's isolation.
    await h.put(onlyAllowed(3, 81));
    await h.remove("NetworkPolicy", "x/broken");
    const corrected = await h.commit();
    assert.deepEqual(corrected?.policies.map((p) => [p.name, p.generation]), [["only-allowed", 3], ["open-81", 1]]);
    assert.ok(h.admits("x/c", "x/a", 81) && !h.admits("x/c", "x/a"));
    assert.ok(h.admits("x/a", "x/b"), "b is open again");
    assert.equal(errors().length, 2);
  });

  describe("with a policy map too small for the desired state", () => {
    it("keeps the endpoints that fit exactly enforced, fails the other closed in its isolated direction, reports it once and does not retry; recovers once the need drops", async () => {
      const forA = await policyEntriesUnder(onlyAllowed());
      const forB = await policyEntriesUnder(clientsIn());
      assert.ok(forA > 0 && forB > 0);
      const h = harness();
      h.datapath.capacity = Math.max(forA, forB);
      await cluster(h);
      await h.commit();
      assert.equal(h.reconciler.mapFull, undefined);
      assert.ok(h.admits("x/a", "x/b"), "b is not isolated yet");

      await h.put(clientsIn());
      const report = await h.commit();
      const mapFull = { map: "pal_policy", needed: forA + forB, capacity: h.datapath.capacity, failedClosed: ["x/b"] };
      assert.deepEqual(h.reconciler.mapFull, mapFull, "x/a sorts first and fits; x/b does not");
      assert.deepEqual(report?.mapFull, mapFull);
      assert.ok(h.admits("x/c", "x/a") && !h.admits("x/b", "x/a") && !h.admits("x/c", "x/a", 81), "a is enforced exactly");
      assert.ok(!h.admits("x/a", "x/b") && !h.admits("x/c", "x/b"), "b is denied what its policy would allow: failed closed, not half written");
      assert.equal(h.datapath.endpoints.get(12)?.slot, 0, "b points at the slot without entries");
      assert.ok(h.datapath.peakPolicyEntries <= h.datapath.capacity);
      const fullLogs = (): Record<string, unknown>[] => h.logs.filter((l) => String(l["msg"]).startsWith("Cannot program every endpoint"));
      assert.equal(fullLogs().length, 1);
      assert.equal(
        fullLogs()[0]?.["msg"],
        `Cannot program every endpoint: map pal_policy needs ${forA + forB} entries, its capacity is ${h.datapath.capacity}; 1 endpoints fail closed (denied in every direction a policy isolates them in) until it fits: x/b`,
      );
      await h.commit();
      assert.equal(fullLogs().length, 1, "logged once per change");
      // b's interface comes again (the pod's sandbox was recreated): its entry is written failed closed too.
      h.datapath.endpoints.delete(12);
      await h.putPod("x/b", { role: "client" });
      await h.commit();
      assert.equal(h.datapath.endpoints.get(12)?.slot, 0);

      await h.remove("NetworkPolicy", "x/only-allowed");
      const recovered = await h.commit();
      assert.equal(h.reconciler.mapFull, undefined);
      assert.equal(recovered?.mapFull, undefined);
      assert.ok(h.admits("x/a", "x/b") && h.admits("x/c", "x/b") && !h.admits("x/c", "x/b", 81), "b is enforced as its policy says");
      assert.ok(h.admits("x/b", "x/a", 81), "a is open again");
      assert.ok(h.logs.some((l) => l["msg"] === "Map pal_policy fits the desired state again: every endpoint is programmed"));
      assert.ok(h.datapath.peakPolicyEntries <= h.datapath.capacity);
    });

    it("switches an endpoint to its new slot through fail closed when old and new entries together would not fit, never overfilling the map", async () => {
      const h = harness();
      h.datapath.capacity = await policyEntriesUnder(onlyAllowed());
      await cluster(h);
      await h.commit();
      const writesBefore = h.datapath.writes.length;
      await h.put(onlyAllowed(2, 81));
      await h.commit();
      assert.equal(h.reconciler.mapFull, undefined, "the new state alone fits");
      assert.equal(h.datapath.writes[writesBefore], "+endpoint 11", "a fails closed before its old entries go");
      assert.match(h.datapath.writes[writesBefore + 1] ?? "", /^-policy /);
      assert.ok(h.admits("x/c", "x/a", 81) && !h.admits("x/c", "x/a"));
      assert.ok(h.datapath.peakPolicyEntries <= h.datapath.capacity);
    });
  });
});
