/**
 * Slot interning: policy entries live under a slot number, and slots are
 * content-addressed. Endpoints with identical entries share one slot; new
 * content gets a fresh number, whose entries are written before any endpoint
 * switches to it ("build new, then switch"), and a slot's entries are removed
 * only once no endpoint uses it.
 *
 * @module
 */
import type { PolicyEntry, PolicyKey } from "./desired-state.ts";
import type { SlotContent } from "./slot-content.ts";

interface SlotRecord {
  contentKey: string;
  slot: number;
  users: number;
  entries: PolicyEntry[];
}

/**
 * The slots in use, by content.
 *
 * @example
 * ```ts
 * const slots = new SlotTable();
 * const slot = slots.acquire(content, diff.policyUpserts); // a new slot's entries go to the upserts
 * slots.release(oldContentKey);
 * slots.sweep(diff.policyRemovals); // after every acquire of the commit
 * ```
 */
export class SlotTable {
  readonly #slots = new Map<string, SlotRecord>();
  /** The slots having an entry whose flows HTTP rules judge: what the node's proxy is told. */
  readonly #httpSlots = new Set<SlotRecord>();
  #nextSlot = 1;
  #released: SlotRecord[] = [];
  #entries = 0;

  /** The slot number of `content`, taking a reference; a new slot's entries are appended to `upserts`. */
  acquire(content: SlotContent, upserts: PolicyEntry[]): number {
    let slot = this.#slots.get(content.key);
    if (!slot) {
      const number = this.#nextSlot++;
      slot = { contentKey: content.key, slot: number, users: 0, entries: [] };
      this.#slots.set(content.key, slot);
      for (const { identity, direction, template } of content.groups) {
        for (const { protocol, port, portPrefixLen, value } of template.entries) {
          const entry: PolicyEntry = { key: { slot: number, identity, direction, protocol, port, portPrefixLen }, value };
          slot.entries.push(entry);
          upserts.push(entry);
        }
      }
      this.#entries += slot.entries.length;
      if (slot.entries.some((entry) => entry.value.http !== undefined)) this.#httpSlots.add(slot);
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

  /**
   * Removes the released slots nobody took again, appending their keys to
   * `removals`. Called last in a commit, so a slot released by one endpoint
   * and taken by another survives.
   */
  sweep(removals: PolicyKey[]): void {
    for (const slot of this.#released) {
      if (slot.users > 0 || !this.#slots.delete(slot.contentKey)) continue;
      this.#entries -= slot.entries.length;
      this.#httpSlots.delete(slot);
      for (const entry of slot.entries) removals.push(entry.key);
    }
    this.#released = [];
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
