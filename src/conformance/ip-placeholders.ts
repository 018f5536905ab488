/**
 * ipBlock placeholders: upstream builds some CIDRs from live pod IPs. A
 * ported case writes `@x/b` (the pod's host CIDR, /32 or /128) or `@x/b/4`
 * (the /4 around the pod's address) in `ipBlock.cidr` and `except`; at run
 * time each such peer becomes one peer per IP family of the run.
 *
 * @module
 */
import { canonicalIp, type NetworkPolicy, type PolicyPeer } from "../policy/index.ts";
import type { Family } from "./model.ts";

/** A placeholder names a pod with no address of the family asked for. */
export class PlaceholderError extends Error {
  /** Names this error class in stack traces and messages. */
  override name = "PlaceholderError";
}

const PLACEHOLDER = /^@([a-z0-9-]+\/[a-z0-9-]+)(?:\/(\d+))?$/;

function familyOf(ip: string): Family {
  return ip.includes(":") ? "ipv6" : "ipv4";
}

/** The network of `ip` with `prefix` bits, as a CIDR. */
export function networkOf(ip: string, prefix: number): string {
  if (familyOf(ip) === "ipv4") {
    const value = ip.split(".").reduce((n, octet) => (n << 8n) | BigInt(octet), 0n);
    const masked = prefix === 0 ? 0n : (value >> BigInt(32 - prefix)) << BigInt(32 - prefix);
    return `${[24n, 16n, 8n, 0n].map((shift) => String((masked >> shift) & 255n)).join(".")}/${prefix}`;
  }
  const [head = "", tail = ""] = ip.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  const groups = ip.includes("::") ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups] : head.split(":");
  const value = groups.reduce((n, group) => (n << 16n) | BigInt(`0x${group}`), 0n);
  const masked = prefix === 0 ? 0n : (value >> BigInt(128 - prefix)) << BigInt(128 - prefix);
  const out = Array.from({ length: 8 }, (_, i) => ((masked >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return `${canonicalIp(out.join(":"))}/${prefix}`;
}

function resolve(text: string, family: Family, addresses: ReadonlyMap<string, readonly string[]>): string {
  const match = PLACEHOLDER.exec(text);
  if (!match) return text;
  const ref = match[1] ?? "";
  const ip = addresses.get(ref)?.find((address) => familyOf(address) === family);
  if (ip === undefined) throw new PlaceholderError(`Cannot fill ipBlock placeholder "${text}": pod "${ref}" has no ${family} address`);
  const prefix = match[2] === undefined ? (family === "ipv4" ? 32 : 128) : Number(match[2]);
  return networkOf(ip, prefix);
}

function isPlaceholder(peer: PolicyPeer): boolean {
  return peer.ipBlock !== undefined && PLACEHOLDER.test(peer.ipBlock.cidr);
}

/**
 * `policy` with every placeholder peer replaced by one peer per family in
 * `families`, filled from `addresses` (`ns/name` → the pod's IPs).
 *
 * @example
 * ```ts
 * fillPlaceholders(policy, ["ipv4"], new Map([["y/b", ["10.244.1.12"]]]));
 * // an egress peer { ipBlock: { cidr: "@y/b" } } becomes { ipBlock: { cidr: "10.244.1.12/32" } }
 * ```
 */
export function fillPlaceholders(policy: NetworkPolicy, families: readonly Family[], addresses: ReadonlyMap<string, readonly string[]>): NetworkPolicy {
  const peers = (list: PolicyPeer[] | undefined): PolicyPeer[] | undefined =>
    list?.flatMap((peer) => {
      if (!isPlaceholder(peer) || peer.ipBlock === undefined) return [peer];
      const block = peer.ipBlock;
      return families.map((family) => ({
        ipBlock: {
          cidr: resolve(block.cidr, family, addresses),
          ...(block.except !== undefined && { except: block.except.map((cidr) => resolve(cidr, family, addresses)) }),
        },
      }));
    });
  const { ingress, egress } = policy.spec;
  return {
    ...policy,
    spec: {
      ...policy.spec,
      ...(ingress !== undefined && { ingress: ingress.map((rule) => ({ ...rule, ...(rule.from !== undefined && { from: peers(rule.from) }) })) }),
      ...(egress !== undefined && { egress: egress.map((rule) => ({ ...rule, ...(rule.to !== undefined && { to: peers(rule.to) }) })) }),
    },
  };
}
