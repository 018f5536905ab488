/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * TCP connection limits per source address and rule
 * (tcp.maxConnectionsPerSource, tcp.newConnectionsPerSecond). A new TCP flow
 * admitted by a limited allow is charged to the rule that decided it: one
 * lookup of the rule's limits, one of its source's state. The flow's
 * conntrack entry then carries PAL_CT_F_COUNTED, and gives its unit back
 * once when it closes (RST, or FIN both ways), when a new SYN reuses its
 * tuple, or when re-validation revokes it or moves it to another rule.
 * Entries that expire or are evicted leak their unit until the agent's
 * conntrack GC recounts every source from the counted entries alive.
 */
#ifndef PAL_TCP_LIMIT_H
#define PAL_TCP_LIMIT_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "conntrack.h"
#include "maps.h"

static __always_inline void pal_tcp_source_key(struct pal_tcp_source_key *key, __u32 rule_id,
					       __u8 family, const __u8 *saddr)
{
	key->rule_id = rule_id;
	key->family = family;
	__builtin_memcpy(key->saddr, saddr, sizeof(key->saddr));
}

/* Takes a token from the source's bucket: GCRA on full_at_ns. The update is
 * a compare-and-swap, tried twice: concurrent SYNs of one source on other
 * CPUs never get more tokens than the bucket holds; one that loses both
 * races is refused (its retransmission tries again). */
static __always_inline bool pal_tcp_bucket_take(struct pal_tcp_source_value *src,
						const struct pal_tcp_limit *limit, __u64 now)
{
	__u64 interval = PAL_NSEC_PER_SEC / limit->rate;
	__u64 ahead = interval * limit->burst;
	__u64 seen = src->full_at_ns;
	__u64 next, prev;

	next = (seen > now ? seen : now) + interval;
	if (next - now > ahead)
		return false;
	prev = __sync_val_compare_and_swap(&src->full_at_ns, seen, next);
	if (prev == seen)
		return true;
	seen = prev;
	next = (seen > now ? seen : now) + interval;
	if (next - now > ahead)
		return false;
	return __sync_val_compare_and_swap(&src->full_at_ns, seen, next) == seen;
}

/* Charges a new TCP flow of tuple to rule_id if the rule has limits.
 * Returns false if a limit refuses it; *counted says whether it now holds a
 * unit of its source's connection count (only under maxConnectionsPerSource).
 * The connection count is exact across CPUs (atomic add, then undo if over);
 * a rule without limits in the map, or a source the map cannot hold, is
 * not limited. */
static __always_inline bool pal_tcp_limit_charge(const struct pal_ct_key *tuple, __u32 rule_id,
						 bool *counted)
{
	const struct pal_tcp_limit *limit;
	struct pal_tcp_source_value *src;
	struct pal_tcp_source_key key = {};
	struct pal_tcp_source_value fresh = {};
	__u64 before;

	*counted = false;
	limit = bpf_map_lookup_elem(&PAL_MAP_TCP_LIMITS, &rule_id);
	if (!limit)
		return true;
	pal_tcp_source_key(&key, rule_id, tuple->family, tuple->saddr);
	src = bpf_map_lookup_elem(&PAL_MAP_TCP_SOURCES, &key);
	if (!src) {
		/* No connections, a full bucket. NOEXIST: another CPU's
		 * entry made meanwhile stays. */
		bpf_map_update_elem(&PAL_MAP_TCP_SOURCES, &key, &fresh, BPF_NOEXIST);
		src = bpf_map_lookup_elem(&PAL_MAP_TCP_SOURCES, &key);
		if (!src)
			return true;
	}
	if (limit->max_conns) {
		before = __sync_fetch_and_add(&src->conns, 1);
		if ((__s64)before >= (__s64)limit->max_conns) {
			__sync_fetch_and_sub(&src->conns, 1);
			return false;
		}
		*counted = true;
	}
	/* The full clock, not conntrack's coarse one: rates go up to one
	 * connection a nanosecond apart. */
	if (limit->rate && !pal_tcp_bucket_take(src, limit, bpf_ktime_get_ns())) {
		if (*counted)
			__sync_fetch_and_sub(&src->conns, 1);
		*counted = false;
		return false;
	}
	return true;
}

/* Gives back one unit of the connection count of tuple's source under
 * rule_id. A source whose count the GC already corrected to 0 is left at 0. */
static __always_inline void pal_tcp_limit_refund(__u8 family, const __u8 *saddr, __u32 rule_id)
{
	struct pal_tcp_source_key src_key = {};
	struct pal_tcp_source_value *src;

	pal_tcp_source_key(&src_key, rule_id, family, saddr);
	src = bpf_map_lookup_elem(&PAL_MAP_TCP_SOURCES, &src_key);
	if (src && (__s64)src->conns > 0)
		__sync_fetch_and_sub(&src->conns, 1);
}

/* Gives back the unit a counted flow holds, exactly once (see
 * pal_ct_take_counted). key is the entry's own key, whose first packet's
 * source (pal_ct_origin_saddr) is the flow's source. */
static __always_inline void pal_tcp_release(const struct pal_ct_key *key,
					    struct pal_ct_value *entry)
{
	if (pal_ct_take_counted(entry))
		pal_tcp_limit_refund(key->family, pal_ct_origin_saddr(key, entry), entry->rule_id);
}

#endif /* PAL_TCP_LIMIT_H */
