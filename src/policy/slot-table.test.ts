import assert from "node:assert/strict";
import { test } from "node:test";
import type { PolicyEntry, PolicyKey } from "./desired-state.ts";
import { contentHash, SlotContentBuilder, TemplateNames } from "./slot-content.ts";
import type { SlotContent } from "./slot-content.ts";
import { SlotTable } from "./slot-table.ts";

const names = new TemplateNames();
const value = { verdict: 1, auditVerdict: 1, ruleId: 1, auditRuleId: 1, flags: 0 } as const;
const content = (text: string, ports: number[]): SlotContent => {
  const groups = [{ identity: 256, direction: 0 as const, template: { name: names.name(text), text, entries: ports.map((port) => ({ protocol: 6, port, portPrefixLen: 16, value })) } }];
  return { hash: contentHash(groups), groups };
};

test("equal content shares one slot, written once", () => {
  const slots = new SlotTable(names);
  const upserts: PolicyEntry[] = [];
  const a = slots.acquire(content("web", [80, 443]), upserts);
  const b = slots.acquire(content("web", [80, 443]), upserts);
  assert.equal(a, b);
  assert.deepEqual(upserts.map((e) => [e.key.slot, e.key.port]), [[a, 80], [a, 443]]);
  assert.equal(slots.size, 2);
});

test("new content gets a fresh slot; a released slot goes at the sweep unless taken again", () => {
  const slots = new SlotTable(names);
  const upserts: PolicyEntry[] = [];
  const removals: PolicyKey[] = [];
  const web = slots.acquire(content("web", [80]), upserts);
  const db = slots.acquire(content("db", [5432]), upserts);
  assert.notEqual(web, db);

  slots.release(content("web", [80]));
  assert.equal(slots.acquire(content("web", [80]), upserts), web, "released and taken again within a commit");
  slots.release(content("db", [5432]));
  slots.sweep(removals);
  assert.deepEqual(removals, [{ slot: db, identity: 256, direction: 0, protocol: 6, port: 5432, portPrefixLen: 16 }]);
  assert.deepEqual([...slots.entries()].map((e) => e.key.slot), [web]);
  assert.equal(slots.size, 1);

  assert.notEqual(slots.acquire(content("db", [5432]), upserts), db, "content that comes back gets a new number: build new, then switch");
});

const group = (identity: number, ports: number[], http = false): SlotContent["groups"][number] => ({
  identity,
  direction: 0,
  template: {
    name: names.name(`${ports.join(",")}${http ? "+http" : ""}`),
    text: `${ports.join(",")}${http ? "+http" : ""}`,
    entries: ports.map((port) => ({ protocol: 6, port, portPrefixLen: 16, value: http ? { ...value, flags: 16, http: { allows: [1], denies: [], auditAllows: [], auditDenies: [] } } : value })),
  },
});
const contentOfGroups = (...groups: SlotContent["groups"]): SlotContent => ({ hash: contentHash(groups), groups });
/** The change between two contents, as a commit's builder finds it by comparing them. */
const changeOf = (from: SlotContent, to: SlotContent) => new SlotContentBuilder(() => undefined, names).change(from, to);
const keysOf = (entries: Iterable<{ key: PolicyKey } | PolicyKey>) => [...entries].map((e) => ("key" in e ? e.key : e)).map((k) => [k.slot, k.identity, k.port]);

test("reshape adds and drops whole groups of mutable identities in place: same number, same users, only their entries in the diff", () => {
  const slots = new SlotTable(names);
  const upserts: PolicyEntry[] = [];
  const removals: PolicyKey[] = [];
  const before = contentOfGroups(group(256, [80]), group(257, [443]));
  const slot = slots.acquire(before, upserts);
  slots.acquire(before, upserts);
  upserts.length = 0;
  const after = contentOfGroups(group(256, [80]), group(258, [80, 81], true));
  const change = changeOf(before, after);
  assert.deepEqual(change, { dropped: [before.groups[1]], added: [after.groups[1]] });
  assert.equal(slots.reshape(before, after, change!, (id) => id === 257 || id === 258, upserts, removals), slot);
  assert.deepEqual(keysOf(upserts), [[slot, 258, 80], [slot, 258, 81]]);
  assert.deepEqual(keysOf(removals), [[slot, 257, 443]]);
  assert.deepEqual([slots.users(after), slots.users(before)], [2, 0]);
  assert.equal(slots.content(after), after);
  assert.deepEqual(keysOf(slots.entries()), [[slot, 256, 80], [slot, 258, 80], [slot, 258, 81]]);
  assert.equal(slots.size, 3);
  assert.deepEqual(keysOf(slots.httpSlotEntries()), keysOf(slots.entries()), "an HTTP entry added in place makes it an HTTP slot");

  const back = contentOfGroups(group(256, [80]));
  assert.equal(slots.reshape(after, back, changeOf(after, back)!, (id) => id === 258, upserts, removals), slot);
  assert.deepEqual([...slots.httpSlotEntries()], [], "and its removal unmakes it");
  assert.equal(slots.size, 1);
  slots.release(back);
  slots.release(back);
  removals.length = 0;
  slots.sweep(removals);
  assert.deepEqual(keysOf(removals), [[slot, 256, 80]], "the slot goes with its last user, as its content is now");
});

test("reshape changes nothing when a group of another identity differs or the content has a slot already; a changed group is no change in groups", () => {
  const slots = new SlotTable(names);
  const upserts: PolicyEntry[] = [];
  const removals: PolicyKey[] = [];
  const before = contentOfGroups(group(256, [80]), group(257, [443]));
  const slot = slots.acquire(before, upserts);
  const existing = contentOfGroups(group(256, [80]));
  slots.acquire(existing, upserts);
  upserts.length = 0;
  assert.equal(changeOf(before, contentOfGroups(group(256, [80]), group(257, [443, 8443]))), undefined);
  const refused: [SlotContent, (id: number) => boolean][] = [
    [contentOfGroups(group(256, [80]), group(257, [443]), group(300, [80])), (id) => id === 257],
    [existing, () => true],
  ];
  for (const [to, mutable] of refused) {
    assert.equal(slots.reshape(before, to, changeOf(before, to)!, mutable, upserts, removals), undefined);
    assert.deepEqual([upserts, removals], [[], []]);
    assert.equal(slots.content(before), before);
  }
  assert.deepEqual(keysOf(slots.entries()).filter(([s]) => s === slot), [[slot, 256, 80], [slot, 257, 443]]);
});

test("a template's name lasts while a slot's group has it, and is forgotten at the sweep after; names are never reused", () => {
  const own = new TemplateNames();
  const slots = new SlotTable(own);
  const template = (text: string) => ({ name: own.name(text), text, entries: [{ protocol: 6, port: 80, portPrefixLen: 16, value }] });
  const web = template("web");
  const a = contentOfGroups({ identity: 256, direction: 0, template: web });
  template("built, never used");
  slots.acquire(a, []);
  slots.sweep([]);
  assert.equal(own.size, 1, "the unused name is forgotten, the slot's kept");
  const db = template("db");
  const b = contentOfGroups(...a.groups, { identity: 257, direction: 0, template: db });
  assert.equal(slots.reshape(a, b, changeOf(a, b)!, () => true, [], []), 1);
  slots.sweep([]);
  assert.equal(own.size, 2, "a group added in place keeps its name");
  slots.release(b);
  slots.sweep([]);
  assert.equal(own.size, 0);
  assert.notEqual(own.name("web"), web.name);
});

test("a content's hash is its groups' in any order, and a patch's is its current one's with the change taken out and put in", () => {
  const [a, b, c] = [group(256, [80]), group(257, [443]), group(258, [53])];
  assert.equal(contentHash([a, b, c]), contentHash([c, a, b]));
  assert.equal(contentHash([c], contentHash([b], contentHash([a, b]), -1)), contentHash([a, c]));
  assert.notEqual(contentHash([a, b]), contentHash([a, c]));
});

test("unequal contents whose hashes meet get slots of their own; equal ones share one, whichever object a user holds", () => {
  const slots = new SlotTable(names);
  const upserts: PolicyEntry[] = [];
  const removals: PolicyKey[] = [];
  // The same hash for unequal contents, as a collision of the sum would give.
  const colliding = (...groups: SlotContent["groups"]): SlotContent => ({ hash: 7, groups });
  const web = colliding(group(256, [80]));
  const db = colliding(group(300, [5432]));
  const webSlot = slots.acquire(web, upserts);
  const dbSlot = slots.acquire(db, upserts);
  assert.notEqual(webSlot, dbSlot);
  assert.equal(slots.acquire(colliding(group(256, [80])), upserts), webSlot, "an equal content in another object");
  assert.deepEqual(keysOf(upserts), [[webSlot, 256, 80], [dbSlot, 300, 5432]]);
  assert.equal(slots.content(colliding(group(256, [80]))), web, "users hold the object the table holds");
  assert.deepEqual([slots.users(web), slots.users(db)], [2, 1]);

  // Changed in place into a third content of the same hash: still apart from the others.
  const api = colliding(group(257, [8080]), group(300, [5432]));
  assert.equal(slots.reshape(db, api, changeOf(db, api)!, () => true, upserts, removals), dbSlot);
  assert.equal(slots.reshape(web, api, changeOf(web, api)!, () => true, upserts, removals), undefined, "api has a slot now");
  assert.deepEqual([slots.users(web), slots.users(api), slots.users(db)], [2, 1, 0]);

  slots.release(web);
  slots.release(web);
  removals.length = 0;
  slots.sweep(removals);
  assert.deepEqual(keysOf(removals), [[webSlot, 256, 80]], "only the released one goes");
  assert.deepEqual(keysOf(slots.entries()), [[dbSlot, 257, 8080], [dbSlot, 300, 5432]]);
  assert.notEqual(slots.acquire(web, upserts), dbSlot);
});
