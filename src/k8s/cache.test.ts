import type { V1Pod } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache, NAMESPACE_INDEX, namespaceIndex, NODE_NAME_INDEX, objectKey, parseObjectKey, podNodeNameIndex } from "./cache.ts";

function pod(namespace: string, name: string, nodeName: string | undefined, resourceVersion = "1", labels: Record<string, string> = {}): V1Pod {
  return { metadata: { namespace, name, resourceVersion, labels }, spec: { containers: [], ...(nodeName ? { nodeName } : {}) } };
}

describe("Cache", () => {
  it("keys objects by namespace/name, or name when cluster-scoped", () => {
    assert.equal(objectKey(pod("x", "a", undefined)), "x/a");
    assert.equal(objectKey({ metadata: { name: "node-1" } }), "node-1");
  });

  it("reads a key back into the namespace and name it was made of", () => {
    assert.deepEqual(parseObjectKey(objectKey(pod("x", "a", undefined))), { namespace: "x", name: "a" });
    assert.deepEqual(parseObjectKey(objectKey({ metadata: { name: "node-1" } })), { namespace: "", name: "node-1" });
    assert.deepEqual(parseObjectKey("x/a/b"), { namespace: "x", name: "a/b" });
  });

  it("indexes by namespace and by node name, and moves entries on update", () => {
    const cache = new Cache<V1Pod>({ [NODE_NAME_INDEX]: podNodeNameIndex, [NAMESPACE_INDEX]: namespaceIndex });
    cache.upsert(pod("x", "a", "n1"));
    cache.upsert(pod("x", "b", "n2"));
    cache.upsert(pod("y", "a", "n1"));
    cache.upsert(pod("y", "pending", undefined));
    assert.deepEqual(cache.byIndex(NAMESPACE_INDEX, "x").map(objectKey).sort(), ["x/a", "x/b"]);
    assert.deepEqual(cache.byIndex(NODE_NAME_INDEX, "n1").map(objectKey).sort(), ["x/a", "y/a"]);
    assert.deepEqual(cache.indexValues(NODE_NAME_INDEX).sort(), ["n1", "n2"], "unscheduled pods are filed nowhere");

    const old = cache.upsert(pod("x", "a", "n2", "2"));
    assert.equal(old?.spec?.nodeName, "n1");
    assert.deepEqual(cache.byIndex(NODE_NAME_INDEX, "n1").map(objectKey), ["y/a"]);
    assert.deepEqual(cache.byIndex(NODE_NAME_INDEX, "n2").map(objectKey).sort(), ["x/a", "x/b"]);

    assert.equal(cache.delete("y/a")?.metadata?.name, "a");
    assert.deepEqual(cache.byIndex(NODE_NAME_INDEX, "n1"), []);
    assert.deepEqual(cache.indexValues(NODE_NAME_INDEX), ["n2"], "empty index values are dropped");
    assert.equal(cache.delete("y/a"), undefined);
    assert.equal(cache.getByName("x", "b")?.spec?.nodeName, "n2");
    assert.equal(cache.size, 3);
  });

  it("supports custom multi-valued indexes, added before or after objects", () => {
    const byLabelKey = (p: V1Pod) => Object.keys(p.metadata?.labels ?? {});
    const cache = new Cache<V1Pod>();
    cache.upsert(pod("x", "a", undefined, "1", { app: "web", tier: "front" }));
    cache.addIndex("labelKey", byLabelKey);
    cache.upsert(pod("x", "b", undefined, "1", { app: "db" }));
    assert.deepEqual(cache.byIndex("labelKey", "app").map(objectKey).sort(), ["x/a", "x/b"]);
    assert.deepEqual(cache.byIndex("labelKey", "tier").map(objectKey), ["x/a"]);
    assert.throws(() => cache.addIndex("labelKey", byLabelKey), /Cannot add index "labelKey": an index of that name exists/);
    assert.throws(() => cache.byIndex("missing", "v"), /Cannot query index "missing": no index of that name/);
    assert.throws(() => cache.byIndex(NAMESPACE_INDEX, "x"), /Cannot query index "namespace"/, "the namespace index is kept only when asked for");
  });

  it("replace reports adds, resourceVersion changes and deletes, and keeps unchanged instances", () => {
    const cache = new Cache<V1Pod>({ [NODE_NAME_INDEX]: podNodeNameIndex });
    const kept = pod("x", "kept", "n1", "5");
    cache.upsert(kept);
    cache.upsert(pod("x", "changed", "n1", "5"));
    cache.upsert(pod("x", "gone", "n1", "5"));
    const delta = cache.replace([pod("x", "kept", "n1", "5"), pod("x", "changed", "n2", "9"), pod("x", "new", "n3", "9")]);
    assert.deepEqual(delta.added.map(objectKey), ["x/new"]);
    assert.deepEqual(delta.updated.map((u) => [objectKey(u.current), u.old.metadata?.resourceVersion, u.current.metadata?.resourceVersion]), [["x/changed", "5", "9"]]);
    assert.deepEqual(delta.deleted.map(objectKey), ["x/gone"]);
    assert.equal(cache.get("x/kept"), kept);
    assert.deepEqual(cache.keys().sort(), ["x/changed", "x/kept", "x/new"]);
    assert.deepEqual(cache.byIndex(NODE_NAME_INDEX, "n1").map(objectKey), ["x/kept"]);
  });
});
