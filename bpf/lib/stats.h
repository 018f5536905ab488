/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Per-CPU counters: one per reason for every packet, one per rule for the
 * new-flow verdicts it decided. Per-CPU values need no atomics; userspace
 * sums the CPUs.
 */
#ifndef PAL_STATS_H
#define PAL_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "maps.h"

static __always_inline void pal_count_reason(__u8 reason, __u32 len)
{
	__u32 key = reason;
	struct pal_counter *counter = bpf_map_lookup_elem(&PAL_MAP_REASON_STATS, &key);

	if (counter) {
		counter->packets += 1;
		counter->bytes += len;
	}
}

static __always_inline void pal_count_rule(__u32 rule_id, __u32 len)
{
	struct pal_counter *counter = bpf_map_lookup_elem(&PAL_MAP_RULE_STATS, &rule_id);
	struct pal_counter first = { .packets = 1, .bytes = len };

	if (!counter) {
		if (!bpf_map_update_elem(&PAL_MAP_RULE_STATS, &rule_id, &first, BPF_NOEXIST))
			return;
		/* Another CPU created it in between (or the map is full). */
		counter = bpf_map_lookup_elem(&PAL_MAP_RULE_STATS, &rule_id);
		if (!counter)
			return;
	}
	counter->packets += 1;
	counter->bytes += len;
}

#endif /* PAL_STATS_H */
