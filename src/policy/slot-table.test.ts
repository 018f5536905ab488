import assert from "node:assert/strict";
import { test } from "node:test";
import type { PolicyEntry, PolicyKey } from "./desired-state.ts";
import type { SlotContent } from "./slot-content.ts";
import { SlotTable } from "./slot-table.ts";

const value = { verdict: 1, auditVerdict: 1, ruleId: 1, auditRuleId: 1, flags: 0 } as const;
const content = (key: string, ports: number[]): SlotContent => ({
  key,
  groups: [{ identity: 256, direction: 0, template: { text: key, entries: ports.map((port) => ({ protocol: 6, port, portPrefixLen: 16, value })) } }],
});

test("equal content shares one slot, written once", () => {
  const slots = new SlotTable();
  const upserts: PolicyEntry[] = [];
  const a = slots.acquire(content("web", [80, 443]), upserts);
  const b = slots.acquire(content("web", [80, 443]), upserts);
  assert.equal(a, b);
  assert.deepEqual(upserts.map((e) => [e.key.slot, e.key.port]), [[a, 80], [a, 443]]);
  assert.equal(slots.size, 2);
});

test("new content gets a fresh slot; a released slot goes at the sweep unless taken again", () => {
  const slots = new SlotTable();
  const upserts: PolicyEntry[] = [];
  const removals: PolicyKey[] = [];
  const web = slots.acquire(content("web", [80]), upserts);
  const db = slots.acquire(content("db", [5432]), upserts);
  assert.notEqual(web, db);

  slots.release("web");
  assert.equal(slots.acquire(content("web", [80]), upserts), web, "released and taken again within a commit");
  slots.release("db");
  slots.sweep(removals);
  assert.deepEqual(removals, [{ slot: db, identity: 256, direction: 0, protocol: 6, port: 5432, portPrefixLen: 16 }]);
  assert.deepEqual([...slots.entries()].map((e) => e.key.slot), [web]);
  assert.equal(slots.size, 1);

  assert.notEqual(slots.acquire(content("db", [5432]), upserts), db, "content that comes back gets a new number: build new, then switch");
});
