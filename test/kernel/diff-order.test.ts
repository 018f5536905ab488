/**
 * The order in which `Datapath.apply` writes a diff, on the real maps (root): what makes a slot changed
 * in place atomic for packets. A commit where a remote pod is relabelled (its new identity's entries
 * join the local endpoints' slot, its old identity's leave it) while a local pod comes and another goes
 * touches every part of the diff; the maps' batch writes are recorded as they reach the kernel.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Datapath } from "../../src/datapath/index.ts";
import { PolicyCompiler, type EBPFNetworkPolicy, type PodInfo } from "../../src/policy/index.ts";
import { uniquePinRoot } from "../lib/kernel.ts";

let datapath: Datapath;

before(() => {
  datapath = Datapath.open({ pinRoot: uniquePinRoot("order") });
});

after(() => {
  datapath?.destroy();
});

const pod = (name: string, ip: string, labels: Record<string, string>, nodeName: string): PodInfo => ({
  namespace: "x",
  name,
  labels: { pod: name, ...labels },
  ips: [ip],
  namedPorts: [],
  nodeName,
});

test("apply writes a new identity's entries before its ipcache entry, and removes a gone one's after its ipcache entry", () => {
  const policy: EBPFNetworkPolicy = {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { namespace: "x", name: "from-b" },
    spec: { selector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }] }] },
  };
  const compiler = new PolicyCompiler({ nodeName: "local" });
  compiler.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
  for (const p of [pod("a1", "10.0.0.1", { app: "a" }, "local"), pod("a2", "10.0.0.2", { app: "a" }, "local"), pod("b", "10.0.1.1", { app: "b" }, "remote")]) compiler.upsertPod(p);
  compiler.upsertPolicy(policy);
  compiler.commit();
  const ifindexes = new Map([["x/a1", 1_000_001], ["x/a2", 1_000_002], ["x/a3", 1_000_003]]);
  const ifindexOf = (key: string) => ifindexes.get(key);
  datapath.replaceAll(compiler.state(), ifindexOf);
  const slot = compiler.endpointOf("x/a1")?.slot;
  const oldIdentity = datapath.readIpcache().find((entry) => entry.cidr === "10.0.1.1/32")?.identity;

  compiler.upsertPod(pod("b", "10.0.1.1", { app: "b", version: "2" }, "remote"));
  compiler.deletePod("x", "a2");
  compiler.upsertPod(pod("a3", "10.0.0.3", { app: "a" }, "local"));
  const diff = compiler.commit();
  // a1's slot is changed in place by b's identities alone.
  assert.equal(compiler.endpointOf("x/a1")?.slot, slot);
  const newIdentity = [...compiler.state().ipcache.values()].find((entry) => entry.value.identity !== oldIdentity && entry.key.address[2] === 1)?.value.identity;
  assert.ok(diff.policyUpserts.some((entry) => entry.key.slot === slot && entry.key.identity === newIdentity));
  assert.ok(diff.policyRemovals.some((key) => key.slot === slot && key.identity === oldIdentity));

  const writes: string[] = [];
  const maps = { policy: datapath.maps.policy, endpoints: datapath.maps.endpoints, ipcache: datapath.maps.ipcache };
  for (const [name, map] of Object.entries(maps)) {
    const write = map.writeEncoded.bind(map);
    const remove = map.deleteEncoded.bind(map);
    map.writeEncoded = (entries) => {
      if (entries.length > 0) writes.push(`${name} upsert`);
      return write(entries);
    };
    map.deleteEncoded = (keys) => {
      if (keys.length > 0) writes.push(`${name} removal`);
      return remove(keys);
    };
  }
  try {
    datapath.apply(diff, ifindexOf);
  } finally {
    for (const map of Object.values(maps)) {
      delete (map as Partial<typeof map>).writeEncoded;
      delete (map as Partial<typeof map>).deleteEncoded;
    }
  }
  assert.deepEqual(writes, ["policy upsert", "endpoints upsert", "ipcache upsert", "ipcache removal", "endpoints removal", "policy removal"]);
  assert.deepEqual(datapath.readIpcache().find((entry) => entry.cidr === "10.0.1.1/32")?.identity, newIdentity);
});
