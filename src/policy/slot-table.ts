/**
 * Slot interning: policy entries live under a slot number, and slots are
 * content-addressed. Endpoints with identical entries share one slot, and a
 * slot's entries are removed only once no endpoint uses it. Content that
 * changes gets a fresh number, whose entries are written before any endpoint
 * switches to it ("build new, then switch"), except where it differs only in
 * the entries of identities no packet carries while they are written: then
 * the slot is changed in place ({@link SlotTable.reshape}).
 *
 * @module
 */
import type { PolicyEntry, PolicyKey } from "./desired-state.ts";
import { groupBound } from "./slot-content.ts";
import type { ContentChange, SlotContent, TemplateNames } from "./slot-content.ts";

interface SlotRecord {
  content: SlotContent;
  slot: number;
  users: number;
  /** In the order of the content's groups (by direction, then identity), so a group's entries are found by binary search. */
  entries: PolicyEntry[];
}

type Group = SlotContent["groups"][number];

const entryGroup = (entry: PolicyEntry): PolicyKey => entry.key;

/** The entries of `group` with the slot's number. */
function groupEntries(slot: number, group: Group): PolicyEntry[] {
  const { identity, direction, template } = group;
  return template.entries.map(({ protocol, port, portPrefixLen, value }) => ({ key: { slot, identity, direction, protocol, port, portPrefixLen }, value }));
}

const hasHttp = (entry: PolicyEntry): boolean => entry.value.http !== undefined;

/**
 * The slots in use, by content.
 *
 * @example
 * ```ts
 * const slots = new SlotTable(names);
 * const slot = slots.acquire(content, diff.policyUpserts); // a new slot's entries go to the upserts
 * slots.release(oldContentKey);
 * slots.sweep(diff.policyRemovals); // after every acquire of the commit
 * ```
 */
export class SlotTable {
  readonly #names: TemplateNames;
  readonly #slots = new Map<string, SlotRecord>();
  /** The slots having an entry whose flows HTTP rules judge: what the node's proxy is told. */
  readonly #httpSlots = new Set<SlotRecord>();
  #nextSlot = 1;
  #released: SlotRecord[] = [];
  #entries = 0;

  /** An empty table; its slots' groups are the users of `names`, which builds their contents' keys. */
  constructor(names: TemplateNames) {
    this.#names = names;
  }

  /** The slot number of `content`, taking a reference; a new slot's entries are appended to `upserts`. */
  acquire(content: SlotContent, upserts: PolicyEntry[]): number {
    let slot = this.#slots.get(content.key);
    if (!slot) {
      const number = this.#nextSlot++;
      slot = { content, slot: number, users: 0, entries: [] };
      this.#slots.set(content.key, slot);
      // Loops, not spreads: a slot of a large CIDR allow-list has more entries than a call takes arguments.
      for (const group of content.groups) {
        this.#names.retain(group.template);
        for (const entry of groupEntries(number, group)) {
          slot.entries.push(entry);
          upserts.push(entry);
        }
      }
      this.#entries += slot.entries.length;
      if (slot.entries.some(hasHttp)) this.#httpSlots.add(slot);
    }
    slot.users++;
    return slot.slot;
  }

  /** Drops a reference to the slot of `contentKey`; the slot stays until {@link SlotTable.sweep}. */
  release(contentKey: string): void {
    const slot = this.#slots.get(contentKey) as SlotRecord;
    slot.users--;
    this.#released.push(slot);
  }

  /** The content of the slot of `contentKey`. */
  content(contentKey: string): SlotContent {
    return (this.#slots.get(contentKey) as SlotRecord).content;
  }

  /** How many references the slot of `contentKey` has. */
  users(contentKey: string): number {
    return this.#slots.get(contentKey)?.users ?? 0;
  }

  /**
   * Gives the slot of `from` the content `to` in place, keeping its number and
   * references, when no slot has `to` yet and `change` (what `to` drops from
   * the slot's content and adds to it, see `SlotContentBuilder.change`) is of
   * identities `mutable` accepts; otherwise changes nothing. The added groups'
   * entries are appended to `upserts` and the dropped ones' keys to
   * `removals`. That is atomic for packets only for identities no packet
   * carries while they are written: one that no ipcache entry or endpoint has
   * before the ipcache upserts (new), or after the ipcache removals (gone),
   * which is what the order of `StateDiff` gives. The caller moves the slot's
   * users to `to` (acquire `to`, release `to.key`), or lets them switch away.
   *
   * @returns the slot number, or `undefined` when the slot was left as it was.
   *
   * @example
   * ```ts
   * slots.reshape(endpoint.contentKey, patched, builder.change(current, patched), (id) => isNewOrGone(id), diff.policyUpserts, diff.policyRemovals); // 7
   * ```
   */
  reshape(
    from: string,
    to: SlotContent,
    change: ContentChange,
    mutable: (identity: number) => boolean,
    upserts: PolicyEntry[],
    removals: PolicyKey[],
  ): number | undefined {
    const slot = this.#slots.get(from);
    if (!slot || this.#slots.has(to.key)) return undefined;
    const { dropped, added } = change;
    if (!dropped.every((group) => mutable(group.identity)) || !added.every((group) => mutable(group.identity))) return undefined;
    const { entries } = slot;
    let http = this.#httpSlots.has(slot);
    for (const { identity, direction, template } of dropped) {
      this.#names.release(template);
      const at = groupBound(entries, entryGroup, direction, identity);
      const gone = entries.splice(at, template.entries.length);
      for (const entry of gone) removals.push(entry.key);
      if (http && gone.some(hasHttp)) http = entries.some(hasHttp);
    }
    for (const group of added) {
      this.#names.retain(group.template);
      const fresh = groupEntries(slot.slot, group);
      entries.splice(groupBound(entries, entryGroup, group.direction, group.identity), 0, ...fresh);
      upserts.push(...fresh);
      http ||= fresh.some(hasHttp);
    }
    this.#entries += added.reduce((sum, group) => sum + group.template.entries.length, 0) - dropped.reduce((sum, group) => sum + group.template.entries.length, 0);
    this.#slots.delete(from);
    this.#slots.set(to.key, slot);
    slot.content = to;
    if (http) this.#httpSlots.add(slot);
    else this.#httpSlots.delete(slot);
    return slot.slot;
  }

  /**
   * Removes the released slots nobody took again, appending their keys to
   * `removals`, and forgets the template names no slot uses. Called last in
   * a commit, so a slot released by one endpoint and taken by another survives.
   */
  sweep(removals: PolicyKey[]): void {
    for (const slot of this.#released) {
      if (slot.users > 0 || this.#slots.get(slot.content.key) !== slot) continue;
      this.#slots.delete(slot.content.key);
      this.#entries -= slot.entries.length;
      this.#httpSlots.delete(slot);
      for (const entry of slot.entries) removals.push(entry.key);
      for (const group of slot.content.groups) this.#names.release(group.template);
    }
    this.#released = [];
    this.#names.sweep();
  }

  /** Every entry of every slot. */
  *entries(): IterableIterator<PolicyEntry> {
    for (const slot of this.#slots.values()) yield* slot.entries;
  }

  /** Every entry of the slots having an entry with HTTP rules (few slots: visiting them costs nothing at scale). */
  *httpSlotEntries(): IterableIterator<PolicyEntry> {
    for (const slot of this.#httpSlots) yield* slot.entries;
  }

  /** How many entries the slots hold. */
  get size(): number {
    return this.#entries;
  }
}
