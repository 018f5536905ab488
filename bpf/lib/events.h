/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Flow events to userspace through the ring buffer. A full buffer loses
 * the event, never the packet: the verdict does not wait for a reader.
 */
#ifndef PAL_EVENTS_H
#define PAL_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "maps.h"

/* What an event says beyond the packet it is about. */
struct pal_event_info {
	__u32 endpoint_id;
	__u32 remote_identity;
	__u32 rule_id;
	__u8 direction;
	__u8 kind;   /* PAL_EVENT_* */
	__u8 reason; /* enum pal_reason */
	__u8 pad;
};

/* Emits one event about the packet in skb whose tuple is t. */
static __always_inline void pal_event_emit(struct __sk_buff *skb, const struct pal_ct_key *t,
					   const struct pal_event_info *info)
{
	struct pal_flow_event *ev;

	ev = bpf_ringbuf_reserve(&PAL_MAP_EVENTS, sizeof(*ev), 0);
	if (!ev)
		return;
	ev->timestamp_ns = bpf_ktime_get_ns();
	ev->endpoint_id = info->endpoint_id;
	ev->ifindex = skb->ifindex;
	ev->remote_identity = info->remote_identity;
	ev->rule_id = info->rule_id;
	__builtin_memcpy(ev->saddr, t->saddr, sizeof(ev->saddr));
	__builtin_memcpy(ev->daddr, t->daddr, sizeof(ev->daddr));
	ev->sport_be = t->sport_be;
	ev->dport_be = t->dport_be;
	ev->family = t->family;
	ev->protocol = t->protocol;
	ev->direction = info->direction;
	ev->kind = info->kind;
	ev->reason = info->reason;
	ev->pad[0] = 0;
	ev->pad[1] = 0;
	ev->pad[2] = 0;
	ev->packet_len = skb->len;
	bpf_ringbuf_submit(ev, 0);
}

#endif /* PAL_EVENTS_H */
