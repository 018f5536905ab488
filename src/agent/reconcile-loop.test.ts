import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Cache } from "../k8s/cache.ts";
import { jsonLogger } from "../k8s/logger.ts";
import type { NodeReport } from "../k8s/node-report.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import { admits, identityTable, NODE, numberKeys, onlyAllowed, worldOptions, worldPod } from "../../test/lib/agent-world.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";
import { MemoryObjects, namespace } from "../../test/lib/memory-objects.ts";
import type { WatchedKind } from "./cluster-watch.ts";
import { ReconcileLoop } from "./reconcile-loop.ts";

interface Setup {
  objects: MemoryObjects;
  datapath: MemoryDatapath;
  loop: ReconcileLoop;
  reports: NodeReport[];
  /** Stores an object and tells the loop, as an informer would. */
  change(obj: KubernetesObject): void;
  /** The first report written from now on (or already) that satisfies `check`. */
  reported(check: (report: NodeReport) => boolean): Promise<NodeReport>;
}

function setup(options: { identityTable?: Cache<PalisadeIdentity>; failWrites?: number; interfaceLooked?: (ip: string) => void } = {}): Setup {
  const objects = new MemoryObjects();
  const datapath = new MemoryDatapath();
  const reports: NodeReport[] = [];
  const waiters = new Set<() => void>();
  let failWrites = options.failWrites ?? 0;
  const loopOptions = worldOptions({
    objects,
    datapath,
    identityTable: options.identityTable,
    writeReport: async (report) => {
      if (failWrites-- > 0) throw new Error("API server unreachable");
      reports.push(report);
      for (const waiter of waiters) waiter();
      return { overflow: false };
    },
    logger: jsonLogger("error", {}, () => {}),
  });
  const { podInterface } = loopOptions;
  const loop = new ReconcileLoop({
    ...loopOptions,
    podInterface: async (ip) => {
      options.interfaceLooked?.(ip);
      return podInterface(ip);
    },
  });
  return {
    objects,
    datapath,
    loop,
    reports,
    change: (obj) => loop.objectChanged(obj.kind as WatchedKind, objects.put(obj)),
    reported: (check) =>
      new Promise((resolve) => {
        const look = (): void => {
          const found = reports.find(check);
          if (found === undefined) return;
          waiters.delete(look);
          resolve(found);
        };
        waiters.add(look);
        look();
      }),
  };
}

/** Namespace x, web pod a and client pod b here, allowed pod c elsewhere, and the only-allowed policy, each changed once. */
function changeAll(s: Setup): void {
  s.change(namespace("x"));
  s.change(worldPod("x/a", { app: "web" }));
  s.change(worldPod("x/b", { role: "client" }));
  s.change(worldPod("x/c", { role: "allowed" }));
  s.change(onlyAllowed());
}

describe("ReconcileLoop", () => {
  it("runs its first commit, the full sync, behind every change made before it started, then commits later changes as diffs", async () => {
    const s = setup();
    changeAll(s);
    s.loop.start();
    await s.loop.ready;
    assert.equal(s.reports.length, 1, "one commit for everything queued before the start");
    assert.deepEqual({ ...s.reports[0], appliedAt: "" }, {
      node: NODE,
      appliedAt: "",
      policies: [{ kind: "NetworkPolicy", namespace: "x", name: "only-allowed", uid: "uid-x/only-allowed", generation: 1 }],
      endpoints: 2,
      ...s.objects.position(),
    });
    assert.equal(s.datapath.calls[0], "replaceAll +11 +12");
    assert.ok(!admits(s.datapath, "x/b", "x/a"));

    s.change(worldPod("x/b", { role: "allowed" }));
    const { podResourceVersion } = s.objects.position();
    await s.reported((r) => r.podResourceVersion === podResourceVersion);
    assert.ok(admits(s.datapath, "x/b", "x/a"));
    assert.ok(s.datapath.calls.slice(1).some((call) => call.startsWith("apply")));
    assert.ok(!s.datapath.calls.slice(1).some((call) => call.startsWith("replaceAll")));
    await s.loop.stop();
  });

  it("syncs objects queued before it started as they come, and commits nothing before it started", async () => {
    let looked = 0;
    const s = setup({ interfaceLooked: () => looked++ });
    s.loop.syncEarly();
    changeAll(s);
    // The two local pods are synced (their interfaces looked up) while the loop is not started.
    for (let turn = 0; turn < 1000 && looked < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(looked, 2, "both local pods synced before the start");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(s.datapath.calls, [], "no commit before start");
    assert.equal(s.reports.length, 0);
    s.loop.start();
    await s.loop.ready;
    assert.equal(s.datapath.calls[0], "replaceAll +11 +12", "the full sync holds what was synced before the start");
    assert.equal(s.reports[0]?.policies.length, 1);
    assert.ok(!admits(s.datapath, "x/b", "x/a"));
    await s.loop.stop();
  });

  it("hands identity numbers that arrive late to the compiler and commits them", async () => {
    const table = identityTable();
    const s = setup({ identityTable: table });
    changeAll(s);
    s.loop.start();
    await s.loop.ready;
    assert.deepEqual(s.reports[0]?.policies, [], "identities are pending");
    const pending = s.loop.reconciler.compiled.pendingIdentityKeys();
    numberKeys(table, pending);
    s.loop.identityObjectsChanged(pending);
    await s.reported((r) => r.policies.length === 1);
    assert.deepEqual(s.loop.reconciler.compiled.pendingIdentityKeys(), []);
    assert.ok(admits(s.datapath, "x/c", "x/a"));
    await s.loop.stop();
  });

  it("retries a report that could not be written on its own backoff, without writing the maps again, and is ready only once it was", async () => {
    const s = setup({ failWrites: 2 });
    changeAll(s);
    s.loop.start();
    await s.loop.ready;
    assert.equal(s.reports.length, 1);
    assert.equal(s.reports[0]?.endpoints, 2);
    assert.deepEqual(s.datapath.calls.filter((call) => call.startsWith("replaceAll") || call.startsWith("apply")).length, 1, "the full sync is written once, and no commit after it");
    await s.loop.stop();
  });
});
