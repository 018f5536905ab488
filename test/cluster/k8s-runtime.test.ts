// The k8s/ runtime against a real etcd and kube-apiserver that this suite
// starts on free ports in a temporary folder (test/lib/control-plane.ts) and
// stops in `after`. Configmaps are served without the watch cache, so that
// compacting etcd makes an old resourceVersion truly expire (410 Gone); pods,
// leases and custom resources go through the watch cache as in production.
// A TCP proxy between some clients and the apiserver cuts their connections
// on demand, to model a partition without touching the server.
import type { KubernetesObject, V1ConfigMap, V1Pod } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import type { TestContext } from "node:test";
import { freePort } from "../../src/devcluster/ports.ts";
import {
  EventRecorder,
  Informer,
  LeaderElector,
  NODE_NAME_INDEX,
  PatchType,
  Resources,
  findCondition,
  formatTime,
  isNotFound,
  objectKey,
  patchStatus,
  podNodeNameIndex,
  resourcePath,
} from "../../src/k8s/index.ts";
import type { Condition, InformerHandlers, KubeClient, LogFields, Logger, ResourceRef } from "../../src/k8s/index.ts";
import { startTestControlPlane, type TestControlPlane } from "../lib/control-plane.ts";
import { eventually } from "../lib/eventually.ts";

const PREFIX = `pl-k8s-${randomBytes(3).toString("hex")}`;
const NAMESPACE = PREFIX;

/** A logger that keeps what it is told, for asserting on the informer's recovery paths. */
function captureLogger(): Logger & { lines: { level: string; message: string; fields: LogFields }[]; count(message: string): number } {
  const lines: { level: string; message: string; fields: LogFields }[] = [];
  const at = (level: string) => (fields: LogFields, message: string): void => {
    lines.push({ level, message, fields });
  };
  return {
    lines,
    count: (message) => lines.filter((l) => l.message === message).length,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
}

/** Every handler call of an informer, in order, as `[kind, key, object(s)]`. */
function recordEvents<T extends KubernetesObject>(informer: Informer<T>): { kind: string; key: string; old?: T; obj: T }[] {
  const seen: { kind: string; key: string; old?: T; obj: T }[] = [];
  const handlers: InformerHandlers<T> = {
    onAdd: (obj) => seen.push({ kind: "add", key: objectKey(obj), obj }),
    onUpdate: (old, obj) => seen.push({ kind: "update", key: objectKey(obj), old, obj }),
    onDelete: (obj) => seen.push({ kind: "delete", key: objectKey(obj), obj }),
  };
  informer.addHandlers(handlers);
  return seen;
}

/** A TCP relay to the apiserver whose connections the test can cut and restore. */
class CuttableProxy {
  readonly port: number;
  readonly #target: number;
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;

  constructor(port: number, target: number) {
    this.port = port;
    this.#target = target;
  }

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.#target, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on("close", () => this.#sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", resolve);
    });
    this.#server = server;
  }

  /** Refuses new connections and resets the open ones. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.resetAndDestroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

describe("k8s runtime against a real kube-apiserver", { timeout: 600_000 }, () => {
  let cluster: TestControlPlane;
  let client: KubeClient;

  /** Starts an informer that is stopped when the test ends, even if it fails. */
  function startInformer<T extends KubernetesObject>(t: TestContext, informer: Informer<T>): Informer<T> {
    informer.start();
    t.after(() => informer.stop());
    return informer;
  }

  async function create<T>(resource: ResourceRef, body: object, namespace = NAMESPACE): Promise<T> {
    return client.request<T>("POST", resourcePath(resource, { namespace }), { body });
  }

  async function mergePatch<T>(resource: ResourceRef, name: string, body: object, namespace = NAMESPACE): Promise<T> {
    return client.request<T>("PATCH", resourcePath(resource, { namespace, name }), { body, contentType: PatchType.merge });
  }

  async function remove(resource: ResourceRef, name: string, namespace = NAMESPACE): Promise<void> {
    // No kubelet confirms the deletion of a bound pod here, so skip the grace period.
    await client.request("DELETE", resourcePath(resource, { namespace, name }), { query: { gracePeriodSeconds: 0 } });
  }

  function pod(name: string, labels: Record<string, string>, nodeName: string): V1Pod {
    return { metadata: { name, labels }, spec: { nodeName, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } };
  }

  before(async () => {
    cluster = await startTestControlPlane("k8s", { apiserverFlags: { "watch-cache-sizes": "configmaps#0" } });
    client = cluster.client;
    await create(Resources.namespaces, { metadata: { name: NAMESPACE } });
    // Pod admission needs the namespace's default ServiceAccount, which the controller manager creates.
    const accounts = resourcePath({ group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true }, { namespace: NAMESPACE, name: "default" });
    await eventually("the default ServiceAccount", async () => client.request("GET", accounts).then(() => true, () => false), { timeoutMs: 30_000 });
  });

  after(async () => {
    await cluster.stop();
  });

  it("informs of adds, updates, label changes through a selector, and deletes, with a node-name index", async (t) => {
    await create(Resources.pods, pod("a", { app: "web" }, "node-1"));
    await create(Resources.pods, pod("b", { app: "db" }, "node-2"));
    const log = captureLogger();
    const all = new Informer<V1Pod>({ client, resource: Resources.pods, namespace: NAMESPACE, indexers: { [NODE_NAME_INDEX]: podNodeNameIndex }, logger: log });
    const web = new Informer<V1Pod>({ client, resource: Resources.pods, namespace: NAMESPACE, labelSelector: "app=web", logger: log });
    const allEvents = recordEvents(all);
    const webEvents = recordEvents(web);
    assert.equal(all.hasSynced(), false);
    startInformer(t, all);
    startInformer(t, web);
    assert.equal(await all.waitForSync(), true);
    assert.equal(await web.waitForSync(), true);

    assert.deepEqual(allEvents.map((e) => `${e.kind} ${e.key}`).sort(), [`add ${NAMESPACE}/a`, `add ${NAMESPACE}/b`]);
    assert.deepEqual(webEvents.map((e) => `${e.kind} ${e.key}`), [`add ${NAMESPACE}/a`]);
    assert.deepEqual(all.cache.byIndex(NODE_NAME_INDEX, "node-1").map(objectKey), [`${NAMESPACE}/a`]);
    const cachedA = all.cache.getByName(NAMESPACE, "a");
    assert.equal(cachedA?.kind, "Pod", "listed items get their kind");
    assert.equal(cachedA?.metadata?.managedFields, undefined, "managedFields are dropped before caching");
    const replayed: string[] = [];
    all.addHandlers({ onAdd: (p) => replayed.push(objectKey(p)) });
    assert.deepEqual(replayed.sort(), [`${NAMESPACE}/a`, `${NAMESPACE}/b`], "a late handler gets the cache replayed");

    allEvents.length = 0;
    webEvents.length = 0;
    await mergePatch(Resources.pods, "a", { metadata: { labels: { tier: "front" } } });
    await eventually("update of a", () => allEvents.some((e) => e.kind === "update" && e.key === `${NAMESPACE}/a`));
    const update = allEvents.find((e) => e.kind === "update");
    assert.equal(update?.old?.metadata?.labels?.["tier"], undefined);
    assert.equal(update?.obj.metadata?.labels?.["tier"], "front");
    assert.equal(update?.obj.metadata?.managedFields, undefined);
    await eventually("web sees the update of a", () => webEvents.some((e) => e.kind === "update"));

    await mergePatch(Resources.pods, "b", { metadata: { labels: { app: "web" } } });
    await eventually("b enters the web selector", () => webEvents.some((e) => e.kind === "add" && e.key === `${NAMESPACE}/b`));
    await mergePatch(Resources.pods, "a", { metadata: { labels: { app: "db" } } });
    await eventually("a leaves the web selector", () => webEvents.some((e) => e.kind === "delete" && e.key === `${NAMESPACE}/a`));
    assert.deepEqual(web.cache.keys(), [`${NAMESPACE}/b`]);

    await remove(Resources.pods, "b");
    await eventually("delete of b", () => allEvents.some((e) => e.kind === "delete" && e.key === `${NAMESPACE}/b`));
    await eventually("web sees the delete of b", () => webEvents.some((e) => e.kind === "delete" && e.key === `${NAMESPACE}/b`));
    assert.deepEqual(all.cache.byIndex(NODE_NAME_INDEX, "node-2"), []);
    await create(Resources.pods, pod("c", { app: "web" }, "node-1"));
    // The two informers have their own watches: each may see c at its own moment.
    await eventually("add of c", () => webEvents.some((e) => e.kind === "add" && e.key === `${NAMESPACE}/c`));
    await eventually("the node index holds c", () => allEvents.some((e) => e.kind === "add" && e.key === `${NAMESPACE}/c`));
    assert.deepEqual(all.cache.byIndex(NODE_NAME_INDEX, "node-1").map(objectKey).sort(), [`${NAMESPACE}/a`, `${NAMESPACE}/c`]);
    // Deleting a bound pod first stamps deletionTimestamp (an update), even with no grace period.
    assert.deepEqual(webEvents.map((e) => `${e.kind} ${e.key.split("/")[1]}`), ["update a", "add b", "delete a", "update b", "delete b", "add c"]);
    assert.deepEqual(log.lines.filter((l) => l.level === "warn" || l.level === "error"), [], "no warning or error");
  });

  it("restarts a watch the apiserver closes from the last resourceVersion, without re-listing", async (t) => {
    const log = captureLogger();
    const informer = new Informer<V1ConfigMap>({
      client, resource: Resources.configMaps, namespace: NAMESPACE, labelSelector: "suite=watch-close", watchTimeoutSeconds: 1, logger: log,
    });
    const seen = recordEvents(informer);
    startInformer(t, informer);
    await informer.waitForSync();
    for (let i = 0; i < 4; i++) {
      const restarts = log.count("Watch ended, restarting from the last resourceVersion");
      await create(Resources.configMaps, { metadata: { name: `closed-${i}`, labels: { suite: "watch-close" } }, data: { i: String(i) } });
      await eventually(`add of closed-${i}`, () => seen.some((e) => e.key === `${NAMESPACE}/closed-${i}`));
      await eventually("the server to close the watch", () => log.count("Watch ended, restarting from the last resourceVersion") > restarts, { timeoutMs: 10_000 });
    }
    assert.deepEqual(seen.map((e) => `${e.kind} ${e.key.split("/")[1]}`), ["add closed-0", "add closed-1", "add closed-2", "add closed-3"]);
    assert.equal(log.count("Listed"), 1, "a closed watch resumes without a re-list");
    assert.deepEqual(log.lines.filter((l) => l.level === "warn" || l.level === "error"), [], "no warning or error");
  });

  it("re-lists after 410 Gone (etcd compacted while cut off) and reports the difference", async (t) => {
    const proxy = new CuttableProxy(await freePort(), cluster.apiserverPort);
    await proxy.open();
    t.after(() => proxy.cut());
    for (const name of ["gone", "changed", "kept"]) {
      await create(Resources.configMaps, { metadata: { name, labels: { suite: "gone" } }, data: { v: "1" } });
    }
    const log = captureLogger();
    const informer = new Informer<V1ConfigMap>({
      client: cluster.clientVia(proxy.port), resource: Resources.configMaps, namespace: NAMESPACE, labelSelector: "suite=gone",
      backoff: { initialMs: 100, maxMs: 400 }, logger: log,
    });
    const seen = recordEvents(informer);
    startInformer(t, informer);
    await informer.waitForSync();
    const listedAt = informer.resourceVersion;
    seen.length = 0;

    await proxy.cut();
    await eventually("the watch to fail", () => log.count("Watch failed, retrying") > 0);
    await remove(Resources.configMaps, "gone");
    await mergePatch(Resources.configMaps, "changed", { data: { v: "2" } });
    await create(Resources.configMaps, { metadata: { name: "new", labels: { suite: "gone" } }, data: { v: "1" } });
    const compactedAt = await cluster.compactEtcd();
    assert.ok(compactedAt > Number(listedAt));
    await proxy.open();

    await eventually("the re-list", () => log.count("Listed") === 2);
    assert.equal(log.count("ResourceVersion expired, re-listing"), 1);
    assert.deepEqual(seen.map((e) => `${e.kind} ${e.key.split("/")[1]}`).sort(), ["add new", "delete gone", "update changed"]);
    const changed = seen.find((e) => e.kind === "update");
    assert.equal(changed?.old?.data?.["v"], "1");
    assert.equal(changed?.obj.data?.["v"], "2");
    assert.deepEqual(informer.cache.keys().map((k) => k.split("/")[1]).sort(), ["changed", "kept", "new"]);

    await mergePatch(Resources.configMaps, "kept", { data: { v: "3" } });
    await eventually("the watch after the re-list", () => seen.some((e) => e.key === `${NAMESPACE}/kept`));
  });

  it("keeps informing across an apiserver restart", async (t) => {
    const log = captureLogger();
    const informer = new Informer<V1ConfigMap>({
      client, resource: Resources.configMaps, namespace: NAMESPACE, labelSelector: "suite=restart", backoff: { initialMs: 200, maxMs: 1_000 }, logger: log,
    });
    const seen = recordEvents(informer);
    startInformer(t, informer);
    await informer.waitForSync();
    await cluster.stopApiserver();
    await cluster.startApiserver();
    await create(Resources.configMaps, { metadata: { name: "after-restart", labels: { suite: "restart" } } });
    await eventually("add after the restart", () => seen.some((e) => e.key === `${NAMESPACE}/after-restart`), { timeoutMs: 30_000 });
    assert.ok(log.count("Watch failed, retrying") + log.count("Watch ended, restarting from the last resourceVersion") >= 1);
    assert.deepEqual(seen.map((e) => `${e.kind} ${e.key.split("/")[1]}`), ["add after-restart"]);
  });

  it("calls every handler on each resync", async (t) => {
    await create(Resources.configMaps, { metadata: { name: "resync", labels: { suite: "resync" } } });
    const informer = new Informer<V1ConfigMap>({
      client, resource: Resources.configMaps, namespace: NAMESPACE, labelSelector: "suite=resync", resyncPeriodMs: 100, logger: captureLogger(),
    });
    const seen = recordEvents(informer);
    startInformer(t, informer);
    await eventually("two resyncs", () => seen.filter((e) => e.kind === "update").length >= 2);
    const resync = seen.find((e) => e.kind === "update");
    assert.equal(resync?.old, resync?.obj, "a resync passes the cached object as both old and new");
  });

  it("elects one leader; a released lease passes to the other candidate at once", async (t) => {
    const timings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };
    const history: string[] = [];
    const candidate = (identity: string) => new LeaderElector({
      client, namespace: NAMESPACE, name: "released", identity, ...timings,
      onStartedLeading: (signal) => {
        history.push(`start ${identity}`);
        signal.addEventListener("abort", () => history.push(`signal ${identity}`));
      },
      onStoppedLeading: () => history.push(`stop ${identity}`),
      logger: captureLogger(),
    });
    const a = candidate("a");
    const b = candidate("b");
    t.after(() => Promise.all([a.stop(), b.stop()]));
    a.start();
    await eventually("a to lead", () => a.isLeader());
    b.start();
    await eventually("b to see a lead", () => b.leader === "a");
    assert.equal(b.isLeader(), false);
    await a.stop();
    assert.equal(a.isLeader(), false);
    const stoppedAt = Date.now();
    await eventually("b to lead", () => b.isLeader(), { timeoutMs: 5_000 });
    assert.ok(Date.now() - stoppedAt < timings.leaseDurationMs, "a released lease is taken before it would have expired");
    assert.deepEqual(history, ["start a", "signal a", "stop a", "start b"]);
    const lease = await client.request<{ spec: { holderIdentity: string; leaseTransitions: number; leaseDurationSeconds: number } }>(
      "GET", resourcePath(Resources.leases, { namespace: NAMESPACE, name: "released" }));
    assert.deepEqual([lease.spec.holderIdentity, lease.spec.leaseTransitions, lease.spec.leaseDurationSeconds], ["b", 1, 3]);
    await b.stop();
    assert.deepEqual(history.slice(4), ["signal b", "stop b"]);
  });

  it("a leader cut off from the API steps down before another takes the expired lease", async (t) => {
    const proxy = new CuttableProxy(await freePort(), cluster.apiserverPort);
    await proxy.open();
    t.after(() => proxy.cut());
    const timings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };
    const times = new Map<string, number>();
    const candidate = (identity: string, via: KubeClient) => new LeaderElector({
      client: via, namespace: NAMESPACE, name: "expired", identity, ...timings,
      onStartedLeading: () => void times.set(`start ${identity}`, Date.now()),
      onStoppedLeading: () => void times.set(`stop ${identity}`, Date.now()),
      logger: captureLogger(),
    });
    const a = candidate("a", cluster.clientVia(proxy.port));
    const b = candidate("b", client);
    t.after(() => Promise.all([a.stop(), b.stop()]));
    a.start();
    await eventually("a to lead", () => a.isLeader());
    b.start();
    await eventually("b to see a lead", () => b.leader === "a");
    const cutAt = Date.now();
    await proxy.cut();
    await eventually("a to step down", () => times.has("stop a"), { timeoutMs: 5_000 });
    await eventually("b to lead", () => b.isLeader(), { timeoutMs: 10_000 });
    const stopA = times.get("stop a") as number;
    const startB = times.get("start b") as number;
    assert.ok(stopA - cutAt <= timings.renewDeadlineMs + 500, `a stepped down ${stopA - cutAt} ms after the cut`);
    assert.ok(stopA < startB, "no two leaders at once");
    assert.ok(startB - cutAt >= timings.leaseDurationMs - timings.retryPeriodMs * 2.2, `b took over ${startB - cutAt} ms after the cut: only once the lease expired`);
    assert.equal(a.isLeader(), false);
  });

  describe("status and events on a custom resource", () => {
    const widgets: ResourceRef = { group: "k8s-runtime-test.palisade.dev", version: "v1", plural: "widgets", kind: "Widget", namespaced: true };
    type Widget = KubernetesObject & { spec?: Record<string, unknown>; status?: { conditions?: Condition[]; selectedPods?: number } };

    before(async () => {
      const crds: ResourceRef = { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", kind: "CustomResourceDefinition", namespaced: false };
      await create(crds, {
        metadata: { name: `widgets.${widgets.group}` },
        spec: {
          group: widgets.group,
          scope: "Namespaced",
          names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
          versions: [{
            name: "v1", served: true, storage: true, subresources: { status: {} },
            schema: { openAPIV3Schema: { type: "object", properties: {
              spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            } } },
          }],
        },
      }, undefined);
      await eventually("the CRD to be established and served", async () => {
        const crd = await client.request<{ status?: { conditions?: { type: string; status: string }[] } }>("GET", resourcePath(crds, { name: `widgets.${widgets.group}` }));
        if (!crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return false;
        try {
          await client.request("GET", resourcePath(widgets, { namespace: NAMESPACE }));
          return true;
        } catch (e) {
          if (isNotFound(e)) return false;
          throw e;
        }
      }, { timeoutMs: 30_000 });
    });

    it("patches conditions with observedGeneration; lastTransitionTime moves only with the status; no write when unchanged", async () => {
      const created = await create<Widget>(widgets, { apiVersion: `${widgets.group}/v1`, kind: "Widget", metadata: { name: "w" }, spec: { size: 1 } });
      assert.equal(created.metadata?.generation, 1);
      const t1 = new Date("2025-03-01T10:00:00Z");
      const t2 = new Date("2025-03-01T11:00:00Z");
      const t3 = new Date("2025-03-01T12:00:00Z");
      const accepted = { type: "Accepted", status: "True", reason: "Valid", message: "" } as const;

      const first = await patchStatus<Widget>(client, widgets, NAMESPACE, "w", { observedGeneration: 1, conditions: [accepted], fields: { selectedPods: 2 } }, { now: t1 });
      assert.equal(first.changed, true);
      assert.deepEqual(first.object.status, {
        conditions: [{ type: "Accepted", status: "True", observedGeneration: 1, lastTransitionTime: formatTime(t1), reason: "Valid", message: "" }],
        selectedPods: 2,
      });
      assert.equal(first.object.metadata?.generation, 1, "a status write leaves the generation alone");

      const again = await patchStatus<Widget>(client, widgets, NAMESPACE, "w", { observedGeneration: 1, conditions: [accepted], fields: { selectedPods: 2 } }, { now: t2 });
      assert.equal(again.changed, false);
      assert.equal(again.object.metadata?.resourceVersion, first.object.metadata?.resourceVersion);

      const bumped = await mergePatch<Widget>(widgets, "w", { spec: { size: 2 } });
      assert.equal(bumped.metadata?.generation, 2);
      const second = await patchStatus<Widget>(client, widgets, NAMESPACE, "w", {
        observedGeneration: 2, conditions: [{ ...accepted, message: "size 2" }],
      }, { now: t2 });
      assert.equal(second.changed, true);
      const kept = findCondition(second.object.status?.conditions, "Accepted");
      assert.deepEqual([kept?.observedGeneration, kept?.lastTransitionTime, kept?.message], [2, formatTime(t1), "size 2"]);
      assert.equal(second.object.status?.selectedPods, 2, "fields not named are kept");

      const third = await patchStatus<Widget>(client, widgets, NAMESPACE, "w", {
        observedGeneration: 2, conditions: [{ type: "Accepted", status: "False", reason: "InvalidSize", message: "spec.size 2 is too big" }, { type: "Programmed", status: "Unknown", reason: "Pending", message: "" }],
      }, { now: t3 });
      const stored = await client.request<Widget>("GET", resourcePath(widgets, { namespace: NAMESPACE, name: "w" }));
      assert.deepEqual(stored.status?.conditions, third.object.status?.conditions);
      assert.deepEqual(stored.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime, c.observedGeneration]), [
        ["Accepted", "False", "InvalidSize", formatTime(t3), 2],
        ["Programmed", "Unknown", "Pending", formatTime(t3), 2],
      ]);

      await assert.rejects(
        patchStatus(client, widgets, NAMESPACE, "missing", { observedGeneration: 1, conditions: [accepted] }),
        (e: unknown) => isNotFound(e),
      );
    });

    it("records events and folds a repeat into a series", async () => {
      const widget = await create<Widget>(widgets, { apiVersion: `${widgets.group}/v1`, kind: "Widget", metadata: { name: "evented" } });
      const log = captureLogger();
      const recorder = new EventRecorder({ client, controller: "palisade.dev/test", instance: PREFIX, logger: log });
      await recorder.record(widget, "Warning", "InvalidSize", "Validate", "spec.size is missing");
      await recorder.record(widget, "Warning", "InvalidSize", "Validate", "spec.size is missing");
      await recorder.record(widget, "Normal", "Accepted", "Validate", "ok");
      assert.deepEqual(log.lines, []);
      type Event = { reason: string; type: string; note: string; reportingController: string; regarding: { uid: string; kind: string }; series?: { count: number } };
      const events = await client.request<{ items: Event[] }>("GET", resourcePath(Resources.events, { namespace: NAMESPACE }), {
        query: { fieldSelector: `regarding.name=evented` },
      });
      const summary = events.items.map((e) => [e.type, e.reason, e.note, e.series?.count ?? 1, e.regarding.uid === widget.metadata?.uid, e.regarding.kind, e.reportingController]);
      assert.deepEqual(summary.sort(), [
        ["Normal", "Accepted", "ok", 1, true, "Widget", "palisade.dev/test"],
        ["Warning", "InvalidSize", "spec.size is missing", 2, true, "Widget", "palisade.dev/test"],
      ]);
    });
  });
});
