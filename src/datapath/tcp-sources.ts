/**
 * Userspace halves of the TCP connection limits (`pal_tcp_sources`): the
 * recount that heals the kernel's per-source connection counts, and a mirror
 * of the kernel's token bucket arithmetic.
 *
 * The kernel counts a source's connections up when it admits a flow and
 * down when a counted flow closes, once, by its conntrack entry's
 * PAL_CT_F_COUNTED bit. An entry that expires, is evicted from the LRU map or
 * is replaced never closes, so its unit leaks; a source entry evicted from
 * its own LRU map loses its count. The agent's conntrack GC therefore
 * recounts every source from the counted conntrack entries alive and writes
 * the counts that differ, so drift lasts one GC period at most.
 *
 * @module
 */
import { PROTOCOL_NUMBERS } from "../policy/desired-state.ts";
import { ctFlow, type CtKey, type CtValue, type TcpSourceKey, type TcpSourceValue } from "./abi.ts";

/** The writes that make `pal_tcp_sources` agree with conntrack. */
export interface TcpSourceCorrection {
  /** Sources whose count was wrong (their bucket kept as read), or missing while they hold connections (a full bucket). */
  upserts: [TcpSourceKey, TcpSourceValue][];
  /** Idle sources (no counted connection, a full bucket), and sources of rules without limits any more. */
  removals: TcpSourceKey[];
}

/** The text of a source key, for maps. */
export function tcpSourceKeyString(key: TcpSourceKey): string {
  return `${key.ruleId}/${key.saddr}`;
}

/**
 * What to write so every source's count is the number of counted conntrack
 * entries of its rule and address. `sources` should be read before
 * `conntrack`: a flow opened between the two reads is then counted by the
 * conntrack read and written correctly, and one that closed in between was
 * given back in the kernel already. A flow that closes between the
 * conntrack read and the write stays counted until the next recount.
 *
 * Sources of rules not in `limitedRules` (what `pal_tcp_limits` holds) are
 * removed; so are sources with no counted connection whose bucket is full
 * at `nowNs` (bpf_ktime_get_ns()'s clock): the kernel makes them again,
 * empty and full, on their next connection.
 *
 * @example
 * ```ts
 * const { upserts, removals } = recountTcpSources(conntrack, sources, new Set([7]), nowNs);
 * ```
 */
export function recountTcpSources(
  conntrack: Iterable<{ key: CtKey; value: CtValue }>,
  sources: Iterable<readonly [TcpSourceKey, TcpSourceValue]>,
  limitedRules: ReadonlySet<number>,
  nowNs: bigint,
): TcpSourceCorrection {
  const counts = new Map<string, { key: TcpSourceKey; conns: bigint }>();
  for (const { key, value } of conntrack) {
    if (!value.counted || key.protocol !== PROTOCOL_NUMBERS.TCP || value.expiresNs < nowNs) continue;
    const source: TcpSourceKey = { ruleId: value.ruleId, family: key.family, saddr: ctFlow(key, value).saddr };
    const text = tcpSourceKeyString(source);
    const known = counts.get(text);
    if (known) known.conns++;
    else counts.set(text, { key: source, conns: 1n });
  }
  const correction: TcpSourceCorrection = { upserts: [], removals: [] };
  for (const [key, value] of sources) {
    const text = tcpSourceKeyString(key);
    const conns = counts.get(text)?.conns ?? 0n;
    counts.delete(text);
    if (!limitedRules.has(key.ruleId) || (conns === 0n && value.fullAtNs <= nowNs)) correction.removals.push(key);
    else if (value.conns !== conns) correction.upserts.push([key, { fullAtNs: value.fullAtNs, conns }]);
  }
  for (const { key, conns } of counts.values()) {
    if (limitedRules.has(key.ruleId)) correction.upserts.push([key, { fullAtNs: 0n, conns }]);
  }
  return correction;
}

/** A token bucket's state: {@link TcpSourceValue.fullAtNs}. */
export interface TokenBucket {
  fullAtNs: bigint;
}

/**
 * The kernel's token bucket (`pal_tcp_bucket_take` in bpf/lib/tcp_limit.h),
 * in userspace: whether a new connection at `nowNs` gets a token from a
 * bucket of `burst` refilled `rate` per second, and the bucket after it.
 * GCRA: `fullAtNs` is when the bucket is full again; a connection moves it
 * one interval (1 s / rate, truncated to whole ns as the kernel divides)
 * later, from now if it was past, and is refused if that would put it more
 * than `burst` intervals ahead.
 *
 * @example
 * ```ts
 * let bucket = { fullAtNs: 0n };
 * [bucketTake(bucket, 1n, 1, 2), ...]; // two at once, then one per second
 * ```
 */
export function bucketTake(bucket: TokenBucket, nowNs: bigint, rate: number, burst: number): { admitted: boolean; bucket: TokenBucket } {
  const interval = 1_000_000_000n / BigInt(rate);
  const next = (bucket.fullAtNs > nowNs ? bucket.fullAtNs : nowNs) + interval;
  if (next - nowNs > interval * BigInt(burst)) return { admitted: false, bucket };
  return { admitted: true, bucket: { fullAtNs: next } };
}
