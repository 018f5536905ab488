/**
 * Which pod an address belongs to when several pods' statuses claim it (a
 * stale pod whose address was handed on, or a forged status): the oldest
 * claimant keeps it, by creation time, then by namespace/name, so a pod
 * created later can never take over the identity of one already running.
 * The agent and the operator feed the compiler only the addresses a pod
 * owns, through one of these.
 *
 * @module
 */
import { keysOf, withKey, withoutKey } from "./key-set.ts";
import type { KeySet } from "./key-set.ts";

/** A pod's claim on its addresses. */
interface Claim {
  /** `metadata.creationTimestamp` (RFC 3339, so text order is time order). */
  createdAt: string;
  ips: string[];
}

/** What a change of claims means for the pods. */
export interface ClaimChange {
  /** The addresses the pod owns now, in the order it listed them. */
  owned: string[];
  /** Addresses the pod claims that another pod owns, with that pod's key. */
  taken: { ip: string; owner: string }[];
  /** Other pods whose owned addresses changed: feed them again. */
  changed: string[];
}

/**
 * Claims on addresses by pod key (`namespace/name`).
 *
 * @example
 * ```ts
 * const claims = new PodAddressClaims();
 * claims.claim("x/a", "2026-01-01T00:00:00Z", ["10.0.0.5"]).owned;          // ["10.0.0.5"]
 * claims.claim("bad/impostor", "2026-01-02T00:00:00Z", ["10.0.0.5"]).taken; // [{ ip: "10.0.0.5", owner: "x/a" }]
 * claims.release("x/a").changed;                                            // ["bad/impostor"]
 * ```
 */
export class PodAddressClaims {
  readonly #claims = new Map<string, Claim>();
  /** The pod keys claiming each address. */
  readonly #claimants = new Map<string, KeySet>();

  /** Records what pod `key` claims (replacing its earlier claim) and says what it owns. */
  claim(key: string, createdAt: string, ips: readonly string[]): ClaimChange {
    const before = this.#ownersOf(this.#affected(key, ips));
    this.#drop(key);
    this.#claims.set(key, { createdAt, ips: [...ips] });
    for (const ip of ips) this.#claimants.set(ip, withKey(this.#claimants.get(ip), key));
    const owned: string[] = [];
    const taken: { ip: string; owner: string }[] = [];
    for (const ip of ips) {
      const owner = this.#owner(ip) as string;
      if (owner === key) owned.push(ip);
      else taken.push({ ip, owner });
    }
    return { owned, taken, changed: this.#changedOwners(before, key) };
  }

  /** Forgets pod `key`'s claim; says which pods own more now. */
  release(key: string): { changed: string[] } {
    const claim = this.#claims.get(key);
    if (claim === undefined) return { changed: [] };
    const before = this.#ownersOf(claim.ips);
    this.#drop(key);
    return { changed: this.#changedOwners(before, key) };
  }

  /** The addresses pod `key` owns. */
  owned(key: string): string[] {
    return (this.#claims.get(key)?.ips ?? []).filter((ip) => this.#owner(ip) === key);
  }

  /** The addresses whose owner may change when `key` claims `ips`: those it claims now and those it claimed before. */
  #affected(key: string, ips: readonly string[]): string[] {
    return [...new Set([...(this.#claims.get(key)?.ips ?? []), ...ips])];
  }

  #ownersOf(ips: readonly string[]): Map<string, string | undefined> {
    return new Map(ips.map((ip) => [ip, this.#owner(ip)]));
  }

  /** Pods other than `key` that own an address of `before` now and did not, or the reverse. */
  #changedOwners(before: Map<string, string | undefined>, key: string): string[] {
    const changed = new Set<string>();
    for (const [ip, owner] of before) {
      const now = this.#owner(ip);
      if (now === owner) continue;
      for (const pod of [owner, now]) if (pod !== undefined && pod !== key && this.#claims.has(pod)) changed.add(pod);
    }
    return [...changed].sort();
  }

  #owner(ip: string): string | undefined {
    let owner: string | undefined;
    for (const key of keysOf(this.#claimants.get(ip))) {
      if (owner === undefined || older(this.#claims.get(key) as Claim, key, this.#claims.get(owner) as Claim, owner)) owner = key;
    }
    return owner;
  }

  #drop(key: string): void {
    for (const ip of this.#claims.get(key)?.ips ?? []) {
      const rest = withoutKey(this.#claimants.get(ip), key);
      if (rest === undefined) this.#claimants.delete(ip);
      else this.#claimants.set(ip, rest);
    }
    this.#claims.delete(key);
  }
}

/**
 * An object's `metadata.creationTimestamp` as RFC 3339 text, the form
 * {@link PodAddressClaims.claim} orders by (informers keep the JSON string,
 * typed clients a Date); `""` when absent.
 *
 * @example
 * ```ts
 * creationTime({ metadata: { creationTimestamp: "2026-01-01T00:00:00Z" } }); // "2026-01-01T00:00:00Z"
 * ```
 */
export function creationTime(obj: { metadata?: { creationTimestamp?: unknown } }): string {
  const time = obj.metadata?.creationTimestamp;
  return time instanceof Date ? time.toISOString().replace(/\.\d{3}Z$/, "Z") : typeof time === "string" ? time : "";
}

function older(a: Claim, aKey: string, b: Claim, bKey: string): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && aKey < bKey);
}
