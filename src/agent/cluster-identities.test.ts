import assert from "node:assert/strict";
import { test } from "node:test";
import { Cache } from "../k8s/cache.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import { FIRST_NODE_LOCAL_IDENTITY, identityInMemory } from "../policy/desired-state.ts";
import { IDENTITY_KEY_INDEX, identityKeyIndex, identityObject } from "../policy/identity-object.ts";
import { ClusterIdentityAllocator, nodeLocalIdentities } from "./cluster-identities.ts";

const NS = [["kubernetes.io/metadata.name", "x"]];
const A = JSON.stringify(["pod", "x", NS, [["app", "a"]], [], null]);
const B = JSON.stringify(["pod", "x", NS, [["app", "b"]], [], null]);

function table(): Cache<PalisadeIdentity> {
  return new Cache<PalisadeIdentity>({ [IDENTITY_KEY_INDEX]: identityKeyIndex });
}

/** This node's first own number, as held in memory. */
const FIRST_LOCAL = identityInMemory(FIRST_NODE_LOCAL_IDENTITY);

test("a key gets its object's number, the lowest of duplicates; without an object it is pending", () => {
  const cache = table();
  const ids = new ClusterIdentityAllocator(cache, nodeLocalIdentities(), () => assert.fail("nothing was waiting"));
  assert.equal(ids.allocate(A), undefined);
  assert.equal(ids.changed(A), false, "still no object");
  cache.upsert(identityObject(300, A));
  assert.equal(ids.changed(A), true);
  cache.upsert(identityObject(290, A));
  assert.equal(ids.allocate(A), 290);
  assert.equal(ids.allocate(A), 290);
  assert.equal(ids.changed(A), false);
  ids.release(A, 290);
  ids.release(A, 290);
  assert.equal(ids.size, 0);
  assert.throws(() => ids.release(A, 290), { name: "ClusterIdentityReleaseError" });
});

test("a number held for one key is not handed to another until released, which reports the waiting key", () => {
  const cache = table();
  const available: string[][] = [];
  const ids = new ClusterIdentityAllocator(cache, nodeLocalIdentities(), (keys) => available.push(keys));
  cache.upsert(identityObject(300, A));
  assert.equal(ids.allocate(A), 300);
  // The operator collected A's object and gave 300 to B before this agent released A.
  cache.delete("300");
  cache.upsert(identityObject(300, B));
  assert.equal(ids.changed(A), true, "A's number is gone");
  assert.equal(ids.allocate(B), undefined, "300 still means A here");
  ids.release(A, 300);
  assert.deepEqual(available, [[B]]);
  assert.equal(ids.allocate(B), 300);
});

test("a key no object can hold gets a number of the node's own at once, never pending", () => {
  const ids = new ClusterIdentityAllocator(table(), nodeLocalIdentities(), () => assert.fail("nothing was waiting"));
  const labels = Array.from({ length: 300 }, (_, i) => [`k${i}`, "v"]);
  const crowded = JSON.stringify(["pod", "x", NS, labels, [], null]);
  const other = JSON.stringify(["pod", "x", NS, [...labels, ["k300", "v"]], [], null]);
  assert.equal(ids.allocate(crowded), FIRST_LOCAL);
  assert.equal(ids.allocate(other), FIRST_LOCAL + 1);
  assert.equal(ids.allocate(crowded), FIRST_LOCAL);
  assert.equal(ids.changed(crowded), false);
  ids.release(crowded, FIRST_LOCAL);
  ids.release(crowded, FIRST_LOCAL);
  assert.throws(() => ids.release(crowded, FIRST_LOCAL), { name: "IdentityReleaseError" });
  assert.equal(ids.size, 0, "no cluster number is held");
});

test("a key pending because its object was deleted is reported changed when the object comes back under the same number", () => {
  const cache = table();
  const ids = new ClusterIdentityAllocator(cache, nodeLocalIdentities(), () => assert.fail("nothing was waiting on a release"));
  cache.upsert(identityObject(300, A));
  assert.equal(ids.allocate(A), 300);
  cache.delete("300");
  assert.equal(ids.changed(A), true, "its number is gone");
  assert.equal(ids.allocate(A), undefined, "pending while 300 is still held");
  cache.upsert(identityObject(300, A));
  assert.equal(ids.changed(A), true, "the pending key has a number again");
  assert.equal(ids.allocate(A), 300);
  assert.equal(ids.changed(A), false);
});

test("an address-derived key is the node's own: numbered at once, deaf to objects claiming it", () => {
  const cache = table();
  const ids = new ClusterIdentityAllocator(cache, nodeLocalIdentities(), () => assert.fail("nothing was waiting"));
  const cidr = '["cidr","10.0.0.0/8"]';
  const host = '["host",null]';
  cache.upsert(identityObject(300, cidr));
  assert.equal(ids.allocate(cidr), FIRST_LOCAL, "an object for it (an older operator's, or forged) is not used");
  assert.equal(ids.allocate(host), FIRST_LOCAL + 1);
  cache.upsert(identityObject(290, cidr));
  assert.equal(ids.changed(cidr), false, "objects never renumber it");
  assert.equal(ids.size, 0, "no cluster number is held");
  ids.release(cidr, FIRST_LOCAL);
});
