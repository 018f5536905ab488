/**
 * A full policy map against the real kernel (root): the agent's reconciler
 * writing to a real datapath whose `pal_policy` was created too small (the
 * max_entries override), and verdicts observed through BPF_PROG_TEST_RUN on
 * the pods' interfaces (veth ends), checked by return value and reason
 * counter. The desired state outgrows the map: the endpoint that does not fit
 * drops what its policy would allow (default deny, not a partial slot), the
 * one that fits is enforced exactly, the commit does not fail or repeat, and
 * once a policy is deleted the other endpoint is programmed again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { PodInterfaceLookup } from "../../src/agent/pod-interface.ts";
import { Reconciler } from "../../src/agent/reconciler.ts";
import { Datapath } from "../../src/datapath/datapath.ts";
import { REASONS, type ReasonName } from "../../src/datapath/reasons.ts";
import { jsonLogger } from "../../src/k8s/logger.ts";
import type { NodeReport } from "../../src/k8s/node-report.ts";
import { CAPACITY_WORLD, clientsIn, NODE, onlyAllowed, PODS, policyEntriesUnder, worldPod, type PodName } from "../lib/agent-world.ts";
import { createTestInterfaces, uniquePinRoot, type TestInterfaces } from "../lib/kernel.ts";
import { MemoryObjects, namespace, networkPolicy } from "../lib/memory-objects.ts";
import { buildPacket } from "../lib/packets.ts";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

describe("a policy map too small for the desired state (real kernel)", { skip: process.getuid?.() !== 0 ? "needs root" : false }, () => {
  let interfaces: TestInterfaces | undefined;
  let datapath: Datapath | undefined;
  let capacity = 0;
  let needed = 0;
  let forB = 0;
  const objects = new MemoryObjects();
  const reports: NodeReport[] = [];
  const logs: Record<string, unknown>[] = [];
  let reconciler: Reconciler;
  let sport = 40_000;

  before(async () => {
    const forA = await policyEntriesUnder(onlyAllowed());
    forB = await policyEntriesUnder(clientsIn());
    capacity = Math.max(forA, forB);
    needed = forA + forB;
    interfaces = createTestInterfaces(2);
    const [ifA, ifB] = interfaces.ifindexes as [number, number];
    datapath = Datapath.open({ pinRoot: uniquePinRoot("cap"), mapSizes: { policy: capacity } });
    const byIp: Record<string, { name: string; ifindex: number }> = {
      [PODS["x/a"].ip]: { name: interfaces.names[0] as string, ifindex: ifA },
      [PODS["x/b"].ip]: { name: interfaces.names[1] as string, ifindex: ifB },
    };
    const podInterface: PodInterfaceLookup = async (ip) => byIp[ip];
    reconciler = new Reconciler({
      nodeName: NODE,
      objects,
      datapath,
      podInterface,
      writeReport: async (report) => {
        reports.push(report);
        return { overflow: false };
      },
      logger: jsonLogger("info", {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
      onIdentitiesChanged: () => {},
      resync: () => {},
    });
    await reconciler.sync("Namespace", objects.put(namespace("x")));
    for (const [name, labels] of Object.entries(CAPACITY_WORLD) as [PodName, Record<string, string>][]) await reconciler.sync("Pod", objects.put(worldPod(name, labels)));
    await reconciler.sync("NetworkPolicy", objects.put(onlyAllowed()));
    await commit();
  });

  after(() => {
    datapath?.destroy();
    interfaces?.remove();
  });

  async function commit(): Promise<NodeReport | undefined> {
    await reconciler.commit({ drained: true });
    await reconciler.writeReport(new AbortController().signal);
    return reports.at(-1);
  }

  /** Sends a TCP SYN from `from` to local pod `to` through the to-pod program; checks the retval matches the one reason counted, and returns that reason. */
  function verdict(from: PodName, to: "x/a" | "x/b", port: number): ReasonName {
    const dp = datapath as Datapath;
    const ifindex = (interfaces as TestInterfaces).ifindexes[to === "x/a" ? 0 : 1] as number;
    const frame = buildPacket({ src: PODS[from].ip, dst: PODS[to].ip, protocol: "TCP", sport: sport++, dport: port });
    const beforeStats = dp.reasonStats();
    const { retval } = dp.testRun("to-pod", frame, { ifindex });
    const afterStats = dp.reasonStats();
    const counted = (Object.keys(REASONS) as ReasonName[]).filter((name) => afterStats[name].packets !== beforeStats[name].packets);
    assert.equal(counted.length, 1, `one reason counted for ${from} -> ${to}:${port}`);
    const reason = counted[0] as ReasonName;
    assert.equal(retval, REASONS[reason] >= REASONS["policy-deny"] ? TC_ACT_SHOT : TC_ACT_OK);
    return reason;
  }

  test("the map was created at the size asked for, and the state fits before the second policy", () => {
    assert.equal(datapath?.policyCapacity(), capacity);
    assert.equal(reconciler.mapFull, undefined);
    assert.equal(verdict("x/c", "x/a", 80), "policy-allow");
    assert.equal(verdict("x/a", "x/b", 80), "not-isolated");
  });

  test("over capacity: the pod that does not fit drops what its policy allows, the other is enforced exactly, and the commit neither fails nor repeats", async () => {
    await reconciler.sync("NetworkPolicy", objects.put(clientsIn()));
    const report = await commit();
    const mapFull = { map: "pal_policy", needed, capacity, failedClosed: ["x/b"] };
    assert.deepEqual(report?.mapFull, mapFull);
    assert.equal(verdict("x/c", "x/b", 80), "default-deny", "b's policy would allow c on 80: b failed closed");
    assert.equal(verdict("x/a", "x/b", 80), "default-deny");
    assert.equal(verdict("x/c", "x/a", 80), "policy-allow", "a keeps its policy");
    assert.equal(verdict("x/b", "x/a", 80), "default-deny");
    assert.equal(verdict("x/c", "x/a", 81), "default-deny");
    assert.ok((datapath as Datapath).maps.policy.keys().length <= capacity);
    const logged = (): number => logs.filter((l) => String(l["msg"]).startsWith("Cannot program every endpoint: map pal_policy")).length;
    assert.equal(logged(), 1);
    const revision = (datapath as Datapath).readConfig().revision;
    await commit();
    assert.equal((datapath as Datapath).readConfig().revision, revision, "an unchanged state writes nothing again");
    assert.equal(logged(), 1, "and is not logged again");
  });

  test("recovers by itself when the need drops: the other pod is programmed as its policy says", async () => {
    objects.remove("NetworkPolicy", "x/only-allowed");
    await reconciler.sync("NetworkPolicy", "x/only-allowed");
    const report = await commit();
    assert.equal(report?.mapFull, undefined);
    assert.equal(verdict("x/c", "x/b", 80), "policy-allow");
    assert.equal(verdict("x/a", "x/b", 80), "policy-allow");
    assert.equal(verdict("x/c", "x/b", 81), "default-deny");
    assert.equal(verdict("x/b", "x/a", 81), "not-isolated");
  });

  test("a change whose old and new entries together would not fit switches through fail closed and ends exactly enforced", async () => {
    assert.ok(2 * forB > capacity, "b's old and new slot do not fit together");
    const moved = networkPolicy("x/clients-in", 2, { ...clientsIn().spec, ingress: [{ from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: 81 }] }] });
    await reconciler.sync("NetworkPolicy", objects.put(moved));
    const report = await commit();
    assert.equal(report?.mapFull, undefined);
    assert.equal(verdict("x/c", "x/b", 81), "policy-allow");
    assert.equal(verdict("x/c", "x/b", 80), "default-deny");
    assert.ok((datapath as Datapath).maps.policy.keys().length <= capacity);
  });
});
