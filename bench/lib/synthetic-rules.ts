/**
 * Synthetic rule sets for the benchmarks: N filler rules spread over a number
 * of peers (remote addresses, each its own identity in Palisade) and ports,
 * generated the same way for Palisade, iptables and nftables so each engine
 * holds the same rules. Fillers never match the measured traffic.
 *
 * @module
 */

/** Filler peers live in 10.128.0.0/10 (peer j is the j-th address), far from the test pods. */
const PEER_BASE = (10 << 24) | (128 << 16);
/** Filler ports start here; the measured flows use ports below it. */
export const FILLER_PORT_BASE = 1024;
/** Ports per (peer, slot) before the fillers spill into the next policy slot. */
export const FILLER_PORTS = 64000;

/** One synthetic rule: peer `peer` (its index), TCP port `port`, in the `slotOffset`-th policy slot. */
export interface SyntheticRule {
  peer: number;
  port: number;
  slotOffset: number;
}

/**
 * The i-th synthetic rule over `peers` peers: peers cycle fastest, then ports,
 * then slots, so every (peer, port, slot) is distinct. `peerOffset` rotates
 * which peer rule 0 uses.
 *
 * @example
 * ```ts
 * syntheticRule(0, 1000, 500); // { peer: 500, port: 1024, slotOffset: 0 }
 * syntheticRule(1000, 1000);   // { peer: 0, port: 1025, slotOffset: 0 }
 * ```
 */
export function syntheticRule(i: number, peers: number, peerOffset = 0): SyntheticRule {
  const round = Math.floor(i / peers);
  return {
    peer: (i + peerOffset) % peers,
    port: FILLER_PORT_BASE + (round % FILLER_PORTS),
    slotOffset: Math.floor(round / FILLER_PORTS),
  };
}

/**
 * The IPv4 address of filler peer `j`.
 *
 * @example
 * ```ts
 * peerAddress(258); // "10.128.1.2"
 * ```
 */
export function peerAddress(j: number): string {
  const n = PEER_BASE + j;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
