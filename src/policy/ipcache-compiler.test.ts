import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { worldArb } from "../../test/lib/world-arbitrary.ts";
import { compileWorld } from "./compiler.ts";
import { IDENTITY_HOST, IDENTITY_WORLD, identityInMemory, ipcacheKeyString } from "./desired-state.ts";
import type { IpcacheEntry } from "./desired-state.ts";
import { identityKeyFields } from "./identity-key.ts";
import { LocalIdentityAllocator, TextKeyedAllocator } from "./identity.ts";
import { formatCidr, parseCidr } from "./ip.ts";
import type { Cidr } from "./ip.ts";
import { IpcacheCompiler } from "./ipcache-compiler.ts";
import { NO_PREFIXES } from "./normalized-policy.ts";
import type { World } from "./world.ts";

/** Numbers keys in the order asked, and remembers every key asked for. */
class RecordingAllocator extends TextKeyedAllocator {
  readonly numbers = new Map<string, number>();
  allocate(key: string): number {
    let id = this.numbers.get(key);
    if (id === undefined) {
      id = 256 + this.numbers.size;
      this.numbers.set(key, id);
    }
    return id;
  }
  release(): void {}
}

function feed(ipcache: IpcacheCompiler, world: World): void {
  for (const ns of world.namespaces.values()) ipcache.upsertNamespace(ns);
  for (const pod of world.pods.values()) ipcache.upsertPod(pod);
  for (const policy of world.policies) ipcache.upsertPolicy(policy);
  ipcache.setHostIPs(world.hostIPs);
}

/** Feeds `before`, commits, replaces it with `after` (deleting what `after` lacks), and commits again. */
function feedThenChange(ipcache: IpcacheCompiler, before: World, after: World): void {
  feed(ipcache, before);
  ipcache.commit();
  for (const [key, pod] of before.pods) if (!after.pods.has(key)) ipcache.deletePod(pod.namespace, pod.name);
  for (const policy of before.policies) ipcache.deletePolicy(policy.kind, policy.metadata.namespace ?? "default", policy.metadata.name);
  feed(ipcache, after);
  ipcache.commit();
}

/** The ipcache with identities replaced by their keys, so two numberings compare. */
function byKey(entries: Map<string, IpcacheEntry>, keyOf: (id: number) => string): string[] {
  return [...entries].map(([cidr, { value }]) => `${cidr} ${keyOf(value.identity)} ${value.flags}`).sort();
}

test("alone, it computes the ipcache and identity keys the policy compiler does, from scratch and after changes", () => {
  fc.assert(
    fc.property(worldArb(5, 4), worldArb(5, 4), (before, after) => {
      const allocator = new RecordingAllocator();
      const ipcache = new IpcacheCompiler({ identities: allocator });
      feedThenChange(ipcache, before, after);

      const reference = new RecordingAllocator();
      const { state } = compileWorld(after, { identities: reference });
      const keyIn = (numbers: Map<string, number>) => (id: number): string => [...numbers].find(([, n]) => n === id)?.[0] ?? String(id);
      assert.deepEqual(byKey(ipcache.entries(), keyIn(allocator.numbers)), byKey(state.ipcache, keyIn(reference.numbers)));
      for (const identity of ipcache.identities()) {
        // The node's addresses outside every prefix carry the reserved HOST number, never an allocated one.
        assert.equal(identity.id === IDENTITY_HOST ? identity.key : keyIn(allocator.numbers)(identity.id), identity.key);
        assert.equal(identityKeyFields(identity.key).kind, identity.kind);
      }
    }),
    { numRuns: 200 },
  );
});

test("a commit reports the pods that changed, with their namespace, and those whose address was rebound", () => {
  const ipcache = new IpcacheCompiler();
  ipcache.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
  ipcache.upsertPod({ namespace: "x", name: "a", labels: { app: "web" }, ips: ["10.0.0.1"], namedPorts: [] });
  const first = ipcache.commit();
  assert.deepEqual([...first.pods], [["x/a", "x"]]);
  assert.deepEqual([...first.rebound], ["x/a"]);
  assert.equal(ipcache.podIdentity("x/a"), first.added[0]?.id);
  assert.ok(ipcache.idle);

  ipcache.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x", env: "prod" } });
  const relabelled = ipcache.commit();
  assert.deepEqual([...relabelled.pods], [], "a namespace change changes no pod input");
  assert.deepEqual([...relabelled.rebound], ["x/a"], "but rebinds its addresses to a new identity");
  assert.deepEqual(relabelled.removed, [first.added[0]]);

  ipcache.deletePod("x", "a");
  const gone = ipcache.commit();
  assert.deepEqual([...gone.pods], [["x/a", "x"]]);
  assert.deepEqual(gone.removals.map(ipcacheKeyString), ["10.0.0.1/32"]);
  assert.equal(ipcache.podIdentity("x/a"), 0);
  assert.deepEqual([...ipcache.podsOf("x")], []);
});

test("without prefix entries, policy prefixes still class addresses: the same entries and keys, less the prefixes' own", () => {
  fc.assert(
    fc.property(worldArb(5, 4), worldArb(5, 4), (before, after) => {
      const run = (prefixEntries: boolean) => {
        const allocator = new RecordingAllocator();
        const ipcache = new IpcacheCompiler({ identities: allocator, prefixEntries });
        feedThenChange(ipcache, before, after);
        const keyOf = (id: number): string => [...allocator.numbers].find(([, n]) => n === id)?.[0] ?? String(id);
        return byKey(ipcache.entries(), keyOf);
      };
      const all = run(true);
      assert.deepEqual(run(false), all.filter((entry) => !entry.includes(' ["cidr",')));
    }),
    { numRuns: 200 },
  );
});

test("a prefix's own identity, held by its prefix, is renumbered, released and made anew like any other", () => {
  /** Hands out the number set for a key, else the next one; remembers releases. */
  class SettableAllocator extends TextKeyedAllocator {
    readonly numbers = new Map<string, number>();
    readonly released: [string, number][] = [];
    #next = 300;
    allocate(key: string): number {
      let id = this.numbers.get(key);
      if (id === undefined) {
        id = this.#next++;
        this.numbers.set(key, id);
      }
      return id;
    }
    release(key: string, id: number): void {
      this.released.push([key, id]);
      this.numbers.delete(key);
    }
  }
  const allocator = new SettableAllocator();
  const ipcache = new IpcacheCompiler({ identities: allocator });
  const prefixes = { texts: ["10.1.0.0/16"], cidrs: [parseCidr("10.1.0.0/16")] };
  const key = '["cidr","10.1.0.0/16"]';
  const entryOf = (): string | undefined => byKey(ipcache.entries(), String).find((entry) => entry.startsWith("10.1.0.0/16"));
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", prefixes);
  const first = ipcache.commit();
  assert.deepEqual(first.added.map((identity) => [identity.id, identity.key, identity.kind, formatCidr(identity.cls as Cidr), identity.namespace]), [[300, key, "cidr", "10.1.0.0/16", ""]]);
  assert.equal(entryOf(), "10.1.0.0/16 300 0");

  // The allocator answers differently for the key: the prefix gets the new number and the old one goes.
  allocator.numbers.set(key, 400);
  ipcache.identitiesChanged([key, '["cidr",', '["cidr","10.1.0.0/16",1]', '["pod"']);
  const renumbered = ipcache.commit();
  assert.deepEqual(renumbered.added.map((identity) => identity.id), [400]);
  assert.deepEqual(renumbered.removed.map((identity) => identity.id), [300]);
  assert.equal(entryOf(), "10.1.0.0/16 400 0");

  // A pod at the prefix's own address wins it: the prefix's identity is released, and numbered anew when the pod goes.
  ipcache.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", { texts: ["10.1.0.1/32"], cidrs: [parseCidr("10.1.0.1/32")] });
  ipcache.commit();
  ipcache.upsertPod({ namespace: "x", name: "a", labels: {}, ips: ["10.1.0.1"], namedPorts: [] });
  const claimed = ipcache.commit();
  assert.deepEqual(allocator.released.at(-1), ['["cidr","10.1.0.1/32"]', claimed.removed[0]?.id]);
  ipcache.deletePod("x", "a");
  const back = ipcache.commit();
  assert.deepEqual(back.added.map((identity) => identity.key), ['["cidr","10.1.0.1/32"]']);
  assert.notEqual(back.added[0]?.id, claimed.removed[0]?.id, "a fresh number, not the released one's record");
  assert.equal(ipcache.identity(back.added[0]?.id as number)?.key, '["cidr","10.1.0.1/32"]');
});

test("a prefix's own identity is numbered by the prefix itself, its key's text made only when read", () => {
  /** Numbers prefixes apart, and refuses a prefix's key as text: the compiler must not build it to allocate. */
  class PrefixAllocator extends TextKeyedAllocator {
    readonly prefixes = new Map<string, number>();
    readonly released: string[] = [];
    allocate(key: string): number {
      assert.ok(!key.startsWith('["cidr",'), `a prefix's key allocated as text: ${key}`);
      return 256;
    }
    release(key: string): void {
      assert.ok(!key.startsWith('["cidr",'), `a prefix's key released as text: ${key}`);
    }
    override allocatePrefix(prefix: Cidr): number {
      const text = formatCidr(prefix);
      const id = this.prefixes.get(text) ?? 300 + this.prefixes.size;
      this.prefixes.set(text, id);
      return id;
    }
    override releasePrefix(prefix: Cidr, id: number): void {
      assert.equal(this.prefixes.get(formatCidr(prefix)), id);
      this.released.push(formatCidr(prefix));
    }
  }
  const allocator = new PrefixAllocator();
  const ipcache = new IpcacheCompiler({ identities: allocator });
  ipcache.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
  ipcache.upsertPod({ namespace: "x", name: "a", labels: {}, ips: ["10.1.0.1"], namedPorts: [] });
  ipcache.setHostIPs(["192.168.0.1"]);
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", { texts: ["10.1.0.0/16", "fd00::/64"], cidrs: [parseCidr("10.1.0.0/16"), parseCidr("fd00::/64")] });
  const first = ipcache.commit();
  assert.deepEqual(
    first.added.map((identity) => [identity.id, identity.key]).sort(),
    [
      [256, '["pod","x",[["kubernetes.io/metadata.name","x"]],[],[],"10.1.0.0/16"]'],
      [300, '["cidr","10.1.0.0/16"]'],
      [301, '["cidr","fd00::/64"]'],
      [IDENTITY_HOST, '["host",null]'],
    ].sort(),
  );
  assert.deepEqual([...ipcache.identityInfo().keys()].sort(), [IDENTITY_HOST, IDENTITY_WORLD, 256, 300, 301].sort());
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", undefined);
  // The pod's identity goes too: its key had the class.
  assert.deepEqual(ipcache.commit().removed.map((identity) => identity.id).sort(), [256, 300, 301]);
  assert.deepEqual(allocator.released.sort(), ["10.1.0.0/16", "fd00::/64"]);
  // A policy's prefixes emptied (held no more) release them as a removed policy does; empty ones again change nothing.
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", { texts: ["10.1.0.0/16"], cidrs: [parseCidr("10.1.0.0/16")] });
  assert.deepEqual(ipcache.commit().added.map((identity) => identity.key).sort(), ['["cidr","10.1.0.0/16"]', '["pod","x",[["kubernetes.io/metadata.name","x"]],[],[],"10.1.0.0/16"]']);
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", NO_PREFIXES);
  assert.deepEqual(ipcache.commit().removed.map((identity) => identity.id).sort(), [256, 300]);
  assert.deepEqual(allocator.released.sort(), ["10.1.0.0/16", "10.1.0.0/16", "fd00::/64"]);
  ipcache.setPolicyPrefixes("NetworkPolicy/x/allow", NO_PREFIXES);
  assert.equal(ipcache.idle, true, "no prefixes where there were none is no change");
  ipcache.setPolicyPrefixes("NetworkPolicy/x/other", NO_PREFIXES);
  assert.equal(ipcache.idle, true);
});

test("prefixes claimed and released in any order across commits, their numbers reused, hold what a fresh compiler holds", () => {
  // Nested prefixes, and /32s that pods claim too: a prefix's entry goes to a pod and back.
  const pool = ["10.0.0.0/8", "10.1.0.0/16", "10.1.0.1/32", "10.1.0.2/32", "10.2.0.0/24", "fd00::/64", "fd00::1/128", "192.168.0.0/16"];
  const policy = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.subarray(pool));
  const step = fc.tuple(fc.array(policy, { maxLength: 4 }), fc.subarray(["a", "b"]));
  fc.assert(
    // Numbers as the agent holds node-local ones (negative: identityInMemory) or as a local allocator gives them.
    fc.property(fc.array(step, { minLength: 1, maxLength: 8 }), fc.constantFrom(identityInMemory(0xf000_0000), 0xffff_ff00), (steps, first) => {
      const ipcache = new IpcacheCompiler({ identities: new LocalIdentityAllocator({ first, last: first + 250 }) });
      const held = new Map<string, number>();
      const gone = new Set<number>();
      const state = new Map<string, string[]>();
      let pods: string[] = [];
      const apply = (target: IpcacheCompiler, key: string, texts: string[]): void => {
        target.setPolicyPrefixes(key, texts.length === 0 ? undefined : { texts, cidrs: texts.map(parseCidr) });
      };
      const setPods = (target: IpcacheCompiler, names: string[], before: string[]): void => {
        for (const name of before) if (!names.includes(name)) target.deletePod("x", name);
        for (const name of names) target.upsertPod({ namespace: "x", name, labels: { app: name }, ips: [name === "a" ? "10.1.0.1" : "fd00::1"], namedPorts: [] });
      };
      ipcache.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
      for (const [policies, names] of steps) {
        for (const [n, texts] of policies) {
          apply(ipcache, `NetworkPolicy/x/p${n}`, texts);
          state.set(`NetworkPolicy/x/p${n}`, texts);
        }
        setPods(ipcache, names, pods);
        pods = names;
        ipcache.commit();

        const fresh = new IpcacheCompiler();
        fresh.upsertNamespace({ name: "x", labels: { "kubernetes.io/metadata.name": "x" } });
        for (const [key, texts] of state) apply(fresh, key, texts);
        setPods(fresh, pods, []);
        fresh.commit();
        const keyOf = (compiler: IpcacheCompiler) => (id: number): string => compiler.identity(id)?.key ?? `missing ${id}`;
        assert.deepEqual(byKey(ipcache.entries(), keyOf(ipcache)), byKey(fresh.entries(), keyOf(fresh)));
        for (const { value } of ipcache.entries().values()) assert.ok(value.identity >= first && value.identity <= first + 250, `${value.identity} is not a number the allocator gave`);
        const identities = [...ipcache.identities()];
        assert.deepEqual(identities.map((identity) => identity.id).sort(), [...new Set([...ipcache.entries().values()].map(({ value }) => value.identity))].sort());
        assert.equal(ipcache.identityCount, identities.length + 2);
        // A prefix keeps its number while its entry stays; one made anew never gets a number used before (the local allocator's).
        const now = new Map<string, number>();
        for (const [text, { value }] of ipcache.entries()) if (ipcache.identity(value.identity)?.kind === "cidr") now.set(text, value.identity);
        for (const [text, id] of now) {
          if (held.has(text)) assert.equal(id, held.get(text), `${text} renumbered while held`);
          else assert.ok(!gone.has(id), `${text} got ${id}, a number released before`);
        }
        for (const [text, id] of held) if (now.get(text) !== id) gone.add(id);
        held.clear();
        for (const [text, id] of now) held.set(text, id);
      }
    }),
    { numRuns: 300 },
  );
});
