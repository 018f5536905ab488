import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { PodAddressClaims, creationTime } from "./pod-address-claims.ts";

const EARLY = "2026-01-01T00:00:00Z";
const LATE = "2026-01-02T00:00:00Z";

test("the oldest claimant owns an address; a later one is told who owns it", () => {
  const claims = new PodAddressClaims();
  assert.deepEqual(claims.claim("x/a", EARLY, ["10.0.0.5", "fd00::5"]), { owned: ["10.0.0.5", "fd00::5"], taken: [], changed: [] });
  assert.deepEqual(claims.claim("bad/impostor", LATE, ["10.0.0.5"]), { owned: [], taken: [{ ip: "10.0.0.5", owner: "x/a" }], changed: [] });
  assert.deepEqual(claims.owned("x/a"), ["10.0.0.5", "fd00::5"]);
  assert.deepEqual(claims.owned("bad/impostor"), []);
});

test("an older claimant arriving later takes the address, and the pod that lost it is named", () => {
  const claims = new PodAddressClaims();
  claims.claim("x/new", LATE, ["10.0.0.5"]);
  assert.deepEqual(claims.claim("x/old", EARLY, ["10.0.0.5"]), { owned: ["10.0.0.5"], taken: [], changed: ["x/new"] });
  assert.deepEqual(claims.owned("x/new"), []);
});

test("releasing or moving a claim hands the address on and names the new owner", () => {
  const claims = new PodAddressClaims();
  claims.claim("x/a", EARLY, ["10.0.0.5"]);
  claims.claim("y/b", LATE, ["10.0.0.5"]);
  assert.deepEqual(claims.claim("x/a", EARLY, ["10.0.0.6"]), { owned: ["10.0.0.6"], taken: [], changed: ["y/b"] });
  assert.deepEqual(claims.owned("y/b"), ["10.0.0.5"]);
  claims.claim("x/a", EARLY, ["10.0.0.5"]);
  assert.deepEqual(claims.owned("y/b"), []);
  assert.deepEqual(claims.release("x/a"), { changed: ["y/b"] });
  assert.deepEqual(claims.owned("y/b"), ["10.0.0.5"]);
  assert.deepEqual(claims.release("nobody"), { changed: [] });
});

test("pods created in the same second are ordered by key", () => {
  const claims = new PodAddressClaims();
  claims.claim("z/late-name", EARLY, ["10.0.0.5"]);
  assert.deepEqual(claims.claim("a/early-name", EARLY, ["10.0.0.5"]).changed, ["z/late-name"]);
  assert.deepEqual(claims.owned("a/early-name"), ["10.0.0.5"]);
});

test("any sequence of claims and releases over shared addresses: each pod owns what a model of every claim says", () => {
  const pods = ["x/a", "x/b", "y/a", "y/c"];
  const times = [EARLY, LATE];
  const ips = ["10.0.0.1", "10.0.0.2", "fd00::1"];
  const op = fc.record({ pod: fc.constantFrom(...pods), time: fc.constantFrom(...times), ips: fc.subarray(ips), release: fc.boolean() });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const claims = new PodAddressClaims();
      const model = new Map<string, { time: string; ips: string[] }>();
      for (const { pod, time, ips: claimed, release } of ops) {
        if (release) {
          claims.release(pod);
          model.delete(pod);
        } else {
          claims.claim(pod, time, claimed);
          model.set(pod, { time, ips: claimed });
        }
        for (const key of pods) {
          const owner = (ip: string) => [...model].filter(([, c]) => c.ips.includes(ip)).sort(([ka, a], [kb, b]) => (a.time === b.time ? (ka < kb ? -1 : 1) : a.time < b.time ? -1 : 1))[0]?.[0];
          assert.deepEqual(claims.owned(key), (model.get(key)?.ips ?? []).filter((ip) => owner(ip) === key), key);
        }
      }
    }),
  );
});

test("creation times read alike from JSON text and from a Date", () => {
  assert.equal(creationTime({ metadata: { creationTimestamp: EARLY } }), EARLY);
  assert.equal(creationTime({ metadata: { creationTimestamp: new Date(EARLY) } }), EARLY);
  assert.equal(creationTime({}), "");
});
