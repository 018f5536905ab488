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
import { sameGroups } from "./slot-content.ts";
import type { ContentChange, SlotContent, TemplateNames } from "./slot-content.ts";

/**
 * A slot: its entries are made from its content's groups when asked
 * ({@link pushEntries}), not held: held, they would cost about 120 bytes each
 * (12 MB at 100k CIDRs) beside the groups and templates they are made of.
 */
interface SlotRecord {
  content: SlotContent;
  slot: number;
  users: number;
}

type Group = SlotContent["groups"][number];

/** The key of a template entry of `group` under slot number `slot`. */
const entryKey = (slot: number, { identity, direction }: Group, { protocol, port, portPrefixLen }: Group["template"]["entries"][number]): PolicyKey => ({ slot, identity, direction, protocol, port, portPrefixLen });

/**
 * Appends the entries of `groups` under slot number `slot` to `into`, in the
 * groups' order. Loops, not spreads or generators: a slot of a large CIDR
 * allow-list has more entries than a call takes arguments, and a full read
 * makes every entry of every slot (104k at full size).
 */
function pushEntries(slot: number, groups: readonly Group[], into: PolicyEntry[]): void {
  for (const group of groups) for (const entry of group.template.entries) into.push({ key: entryKey(slot, group, entry), value: entry.value });
}

/** Appends the keys of the entries of `groups` under slot number `slot` to `into` (no entry made to be dropped). */
function pushKeys(slot: number, groups: readonly Group[], into: PolicyKey[]): void {
  for (const group of groups) for (const entry of group.template.entries) into.push(entryKey(slot, group, entry));
}

/** How many entries `groups` make. */
const entryCount = (groups: readonly Group[]): number => groups.reduce((sum, group) => sum + group.template.entries.length, 0);

/** Whether a group has an entry whose flows HTTP rules judge. */
const hasHttp = (group: Group): boolean => group.template.entries.some((entry) => entry.value.http !== undefined);

/**
 * The slots in use, by content.
 *
 * @example
 * ```ts
 * const slots = new SlotTable(names);
 * const slot = slots.acquire(content, diff.policyUpserts); // a new slot's entries go to the upserts
 * slots.release(oldContent);
 * slots.sweep(diff.policyRemovals); // after every acquire of the commit
 * ```
 */
export class SlotTable {
  readonly #names: TemplateNames;
  /** By content hash: more than one slot only where unequal contents' hashes meet. */
  readonly #slots = new Map<number, SlotRecord[]>();
  /** The slots having an entry whose flows HTTP rules judge: what the node's proxy is told. */
  readonly #httpSlots = new Set<SlotRecord>();
  #nextSlot = 1;
  #released: SlotRecord[] = [];
  #entries = 0;

  /** An empty table; its slots' groups are the users of `names`, which names their templates. */
  constructor(names: TemplateNames) {
    this.#names = names;
  }

  /** The slot number of `content`, taking a reference; a new slot's entries are appended to `upserts`. */
  acquire(content: SlotContent, upserts: PolicyEntry[]): number {
    let slot = this.#find(content);
    if (!slot) {
      const number = this.#nextSlot++;
      slot = { content, slot: number, users: 0 };
      this.#add(slot);
      for (const group of content.groups) this.#names.retain(group.template);
      pushEntries(number, content.groups, upserts);
      this.#entries += entryCount(content.groups);
      if (content.groups.some(hasHttp)) this.#httpSlots.add(slot);
    }
    slot.users++;
    return slot.slot;
  }

  /** Drops a reference to the slot of `content`; the slot stays until {@link SlotTable.sweep}. */
  release(content: SlotContent): void {
    const slot = this.#find(content) as SlotRecord;
    slot.users--;
    this.#released.push(slot);
  }

  /** The content of the slot of `content` as the table holds it: an equal one, the same object for every user. */
  content(content: SlotContent): SlotContent {
    return (this.#find(content) as SlotRecord).content;
  }

  /** How many references the slot of `content` has. */
  users(content: SlotContent): number {
    return this.#find(content)?.users ?? 0;
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
   * users to `to` (acquire `to`, release `to`), or lets them switch away.
   *
   * @returns the slot number, or `undefined` when the slot was left as it was.
   *
   * @example
   * ```ts
   * slots.reshape(endpoint.content, patched, builder.change(current, patched), (id) => isNewOrGone(id), diff.policyUpserts, diff.policyRemovals); // 7
   * ```
   */
  reshape(
    from: SlotContent,
    to: SlotContent,
    change: ContentChange,
    mutable: (identity: number) => boolean,
    upserts: PolicyEntry[],
    removals: PolicyKey[],
  ): number | undefined {
    const slot = this.#find(from);
    if (!slot || this.#find(to)) return undefined;
    const { dropped, added } = change;
    if (!dropped.every((group) => mutable(group.identity)) || !added.every((group) => mutable(group.identity))) return undefined;
    for (const group of dropped) this.#names.release(group.template);
    for (const group of added) this.#names.retain(group.template);
    pushKeys(slot.slot, dropped, removals);
    pushEntries(slot.slot, added, upserts);
    this.#entries += entryCount(added) - entryCount(dropped);
    // The groups kept had HTTP entries as before; only a dropped HTTP group makes the whole content be looked at.
    const http = dropped.some(hasHttp) ? to.groups.some(hasHttp) : this.#httpSlots.has(slot) || added.some(hasHttp);
    this.#remove(slot);
    slot.content = to;
    this.#add(slot);
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
      // Released twice, a slot is gone at its first time here.
      if (slot.users > 0 || !this.#remove(slot)) continue;
      this.#entries -= entryCount(slot.content.groups);
      this.#httpSlots.delete(slot);
      pushKeys(slot.slot, slot.content.groups, removals);
      for (const group of slot.content.groups) this.#names.release(group.template);
    }
    this.#released = [];
    this.#names.sweep();
  }

  /** Every entry of every slot, made now. */
  entries(): PolicyEntry[] {
    const all: PolicyEntry[] = [];
    for (const bucket of this.#slots.values()) for (const slot of bucket) pushEntries(slot.slot, slot.content.groups, all);
    return all;
  }

  /** Every entry of the slots having an entry with HTTP rules (few slots: making them costs nothing at scale). */
  httpSlotEntries(): PolicyEntry[] {
    const all: PolicyEntry[] = [];
    for (const slot of this.#httpSlots) pushEntries(slot.slot, slot.content.groups, all);
    return all;
  }

  /** The slot of `content`: the one holding that very object (as its users do, see {@link SlotTable.content}), else an equal one. */
  #find(content: SlotContent): SlotRecord | undefined {
    const bucket = this.#slots.get(content.hash);
    return bucket?.find((slot) => slot.content === content) ?? bucket?.find((slot) => sameGroups(slot.content, content));
  }

  #add(slot: SlotRecord): void {
    const bucket = this.#slots.get(slot.content.hash);
    if (bucket) bucket.push(slot);
    else this.#slots.set(slot.content.hash, [slot]);
  }

  /** Takes `slot` out of the table; whether it was in. */
  #remove(slot: SlotRecord): boolean {
    const bucket = this.#slots.get(slot.content.hash);
    const at = bucket?.indexOf(slot) ?? -1;
    if (!bucket || at < 0) return false;
    if (bucket.length === 1) this.#slots.delete(slot.content.hash);
    else bucket.splice(at, 1);
    return true;
  }

  /** How many entries the slots hold. */
  get size(): number {
    return this.#entries;
  }
}
