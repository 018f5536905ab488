/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Connection tracking primitives. An entry is keyed by the endpoint and the
 * canonical form of the tuple of a flow's first packet with the direction
 * of the hook that admitted it (see pal_ct_key): both directions of a flow
 * find it with one lookup, and the same flow seen by both endpoints of a
 * node-local connection has one entry per endpoint.
 */
#ifndef PAL_CONNTRACK_H
#define PAL_CONNTRACK_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "config.h"
#include "maps.h"
#include "parse.h"

#define PAL_NSEC_PER_SEC 1000000000ULL

static __always_inline __u8 pal_dir_opposite(__u8 dir)
{
	return dir == PAL_DIR_INGRESS ? PAL_DIR_EGRESS : PAL_DIR_INGRESS;
}

/* Reverses key in place: addresses and ports swapped, direction flipped. */
static __always_inline void pal_ct_reverse_in_place(struct pal_ct_key *key)
{
	__u32 *s = (__u32 *)key->saddr;
	__u32 *d = (__u32 *)key->daddr;
	__be16 sport_be = key->sport_be;
	__u32 word;
	int i;

	for (i = 0; i < 4; i++) {
		word = s[i];
		s[i] = d[i];
		d[i] = word;
	}
	key->sport_be = key->dport_be;
	key->dport_be = sport_be;
	key->direction = pal_dir_opposite(key->direction);
}

/* Whether the tuple's source end orders above its destination end: the
 * addresses compared as four host-order 32-bit words, then the ports as
 * host-order 16-bit integers (any total order serves; userspace's
 * isCanonicalCtKey uses the same). */
static __always_inline bool pal_ct_tuple_above(const struct pal_ct_key *t)
{
	const __u32 *s = (const __u32 *)t->saddr;
	const __u32 *d = (const __u32 *)t->daddr;

	if (s[0] != d[0])
		return s[0] > d[0];
	if (s[1] != d[1])
		return s[1] > d[1];
	if (s[2] != d[2])
		return s[2] > d[2];
	if (s[3] != d[3])
		return s[3] > d[3];
	return t->sport_be > t->dport_be;
}

/* Turns the tuple t of a packet (direction and endpoint_id set) into its
 * canonical key in place and returns whether that reversed it: a reply has
 * the same key as its flow's first packet, and the opposite answer.
 * Reversing t again (pal_ct_reverse_in_place) when it did gives the tuple
 * back. */
static __always_inline __u8 pal_ct_canonicalize(struct pal_ct_key *t)
{
	__u8 swapped = pal_ct_tuple_above(t);

	if (swapped)
		pal_ct_reverse_in_place(t);
	return swapped;
}

/* Writes into key the canonical key of a packet of tuple t (as
 * pal_ct_canonicalize, t left as it is). */
static __always_inline __u8 pal_ct_canonical(const struct pal_ct_key *t, struct pal_ct_key *key)
{
	__builtin_memcpy(key, t, sizeof(*key));
	return pal_ct_canonicalize(key);
}

/* Whether a packet is a reply of the flow whose entry (of key) it found:
 * swapped (0 or 1) says whether key is the packet's tuple reversed; the
 * flag whether it is the flow's first packet's reversed. Arithmetic, not a
 * branch on swapped, so that the verifier can prune the paths that differ
 * only in it. */
static __always_inline bool pal_ct_is_reply(const struct pal_ct_value *entry, __u8 swapped)
{
	return (swapped ^ (entry->ct_flags >> PAL_CT_F_ORIG_SWAPPED_SHIFT)) & 1;
}

/* The source address of the flow's first packet: the key's own source,
 * or its destination if the key is that packet's tuple reversed. */
static __always_inline const __u8 *pal_ct_origin_saddr(const struct pal_ct_key *key,
						       const struct pal_ct_value *entry)
{
	return entry->ct_flags & PAL_CT_F_ORIG_SWAPPED ? key->daddr : key->saddr;
}

/* The PAL_CT_SEEN_* bits a TCP flags byte adds, travelling in the flow's
 * reply direction or not. */
static __always_inline __u8 pal_ct_tcp_bits(__u8 tcp_flags, bool reply)
{
	__u8 bits = 0;

	if (tcp_flags & PAL_TCP_SYN)
		bits |= PAL_CT_SEEN_SYN;
	if (tcp_flags & PAL_TCP_FIN)
		bits |= PAL_CT_SEEN_FIN | (reply ? PAL_CT_SEEN_FIN_REPLY : PAL_CT_SEEN_FIN_ORIG);
	if (tcp_flags & PAL_TCP_RST)
		bits |= PAL_CT_SEEN_RST;
	return bits;
}

/* A TCP flow is over once an RST was seen, or a FIN each way. */
static __always_inline bool pal_ct_tcp_closed(__u8 seen)
{
	return (seen & PAL_CT_SEEN_RST) ||
	       (seen & (PAL_CT_SEEN_FIN_ORIG | PAL_CT_SEEN_FIN_REPLY)) ==
		       (PAL_CT_SEEN_FIN_ORIG | PAL_CT_SEEN_FIN_REPLY);
}

/* PAL_CT_F_COUNTED as a bit of the 64-bit word at remote_identity
 * (remote_identity, tcp_flags, ct_flags, pad[2]: offset 32, aligned), which
 * BPF atomics with fetch reach on every -mcpu (32-bit ones need v3).
 * ct_flags is byte 5 of that word. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PAL_CT_COUNTED_WORD_BIT ((__u64)PAL_CT_F_COUNTED << 40)
#else
#define PAL_CT_COUNTED_WORD_BIT ((__u64)PAL_CT_F_COUNTED << 16)
#endif

/* Clears PAL_CT_F_COUNTED atomically; true for the one caller that found it
 * set, who then owes the decrement. Other CPUs racing on the same flow
 * (both sides closing at once) find it clear. */
static __always_inline bool pal_ct_take_counted(struct pal_ct_value *entry)
{
	__u64 *word = (__u64 *)&entry->remote_identity;

	if (!(entry->ct_flags & PAL_CT_F_COUNTED))
		return false;
	return __sync_fetch_and_and(word, ~PAL_CT_COUNTED_WORD_BIT) & PAL_CT_COUNTED_WORD_BIT;
}

/* A SYN without ACK opens a connection; it is never part of one. */
static __always_inline bool pal_tcp_is_open(__u8 protocol, __u8 tcp_flags)
{
	return protocol == IPPROTO_TCP &&
	       (tcp_flags & (PAL_TCP_SYN | PAL_TCP_ACK)) == PAL_TCP_SYN;
}

/* tcp.strict: the only first packet of a TCP flow is a pure SYN (ACK, FIN
 * and RST clear; PSH, URG and the ECN bits may ride along, as ECN setup
 * sets them). Anything else opening a flow is a scan, a forged mid-stream
 * packet or a peer that lost its state. */
static __always_inline bool pal_tcp_is_pure_syn(__u8 tcp_flags)
{
	return (tcp_flags & (PAL_TCP_SYN | PAL_TCP_ACK | PAL_TCP_FIN | PAL_TCP_RST)) ==
	       PAL_TCP_SYN;
}

/* tcp.strict: flag combinations no conforming TCP sends within a flow:
 * SYN+FIN, SYN+RST, FIN without ACK, or none of the six classic flags
 * (ECN bits alone carry no meaning), as nf_conntrack's tcp_valid_flags
 * also refuses them. Straight-line tests on one byte, no table. */
static __always_inline bool pal_tcp_flags_invalid(__u8 tcp_flags)
{
	__u8 classic = tcp_flags & (PAL_TCP_FIN | PAL_TCP_SYN | PAL_TCP_RST | PAL_TCP_PSH |
				    PAL_TCP_ACK | PAL_TCP_URG);

	return classic == 0 ||
	       (classic & (PAL_TCP_SYN | PAL_TCP_FIN)) == (PAL_TCP_SYN | PAL_TCP_FIN) ||
	       (classic & (PAL_TCP_SYN | PAL_TCP_RST)) == (PAL_TCP_SYN | PAL_TCP_RST) ||
	       (classic & (PAL_TCP_FIN | PAL_TCP_ACK)) == PAL_TCP_FIN;
}

/* How long an entry lives after a packet, by protocol and the state its
 * PAL_CT_SEEN_* bits describe. TCP without a reply yet gets the short SYN
 * timeout, whether or not the SYN itself was seen. */
static __always_inline __u64 pal_ct_timeout_ns(const struct pal_config *cfg,
					       __u8 protocol, __u8 seen)
{
	__u32 s;

	if (protocol == IPPROTO_TCP) {
		if (seen & (PAL_CT_SEEN_FIN | PAL_CT_SEEN_RST))
			s = pal_config_timeout_s(cfg ? cfg->ct_timeout_closing_s : 0,
						 PAL_CT_DEFAULT_CLOSING_S);
		else if (seen & PAL_CT_SEEN_REPLY)
			s = pal_config_timeout_s(cfg ? cfg->ct_timeout_established_s : 0,
						 PAL_CT_DEFAULT_ESTABLISHED_S);
		else
			s = pal_config_timeout_s(cfg ? cfg->ct_timeout_syn_s : 0,
						 PAL_CT_DEFAULT_SYN_S);
	} else if (protocol == IPPROTO_UDP) {
		s = pal_config_timeout_s(cfg ? cfg->ct_timeout_udp_s : 0, PAL_CT_DEFAULT_UDP_S);
	} else {
		s = pal_config_timeout_s(cfg ? cfg->ct_timeout_other_s : 0,
					 PAL_CT_DEFAULT_OTHER_S);
	}
	return (__u64)s * PAL_NSEC_PER_SEC;
}

/* Looks up a live entry. An expired one counts as absent and is deleted
 * here rather than left for userspace garbage collection, so it cannot be
 * revived by a late packet. */
static __always_inline struct pal_ct_value *pal_ct_lookup(const struct pal_ct_key *key,
							  __u64 now)
{
	struct pal_ct_value *entry = bpf_map_lookup_elem(&PAL_MAP_CT, key);

	if (entry && now > entry->expires_ns) {
		bpf_map_delete_elem(&PAL_MAP_CT, key);
		return NULL;
	}
	return entry;
}

/* Finds the live entry of the flow whose canonical key is key (swapped as
 * pal_ct_canonical answered). While the table may hold older entries
 * (PAL_CFG_CT_LEGACY_KEYS), a miss also tries the other orientation, by
 * reversing key in place (and flipping *swapped, which keeps saying whether
 * key is the packet's tuple reversed): one key on the stack, not two. */
static __always_inline struct pal_ct_value *pal_ct_find(const struct pal_config *cfg,
							struct pal_ct_key *key, __u8 *swapped,
							__u64 now)
{
	struct pal_ct_value *entry = pal_ct_lookup(key, now);

	if (entry || !(pal_config_flags(cfg) & PAL_CFG_CT_LEGACY_KEYS))
		return entry;
	pal_ct_reverse_in_place(key);
	*swapped ^= 1;
	return pal_ct_lookup(key, now);
}

/* The clock of conntrack deadlines: CLOCK_MONOTONIC at tick resolution,
 * bpf_ktime_get_coarse_ns() (the time base userspace collects by). That is
 * a helper call, several ns of an established packet; bpf_jiffies64() is
 * inlined into one load. The coarse clock moves only at the tick that
 * moves jiffies, so each CPU keeps the last value it read with the jiffy
 * it read it in and reads the clock again only in a new jiffy: at most two
 * ticks behind the clock itself (one for the coarse clock, one for a tick
 * landing between the two reads). The time is written before its jiffy,
 * so that a program interrupting this one on the CPU never pairs the
 * current jiffy with an older time; a CPU's entry starts empty, and a time
 * of 0 is never taken. */
static __always_inline __u64 pal_ct_now(void)
{
	__u32 zero = 0;
	struct pal_clock *last = bpf_map_lookup_elem(&pal_clock, &zero);
	__u64 jiffies = bpf_jiffies64();
	__u64 now;

	if (last && last->jiffies == jiffies && last->now_ns)
		return last->now_ns;
	now = bpf_ktime_get_coarse_ns();
	if (last) {
		last->now_ns = now;
		asm volatile("" ::: "memory");
		last->jiffies = jiffies;
	}
	return now;
}

/* A packet moves its entry's deadline only if that moves it by more than
 * this (a quarter of the timeout, if shorter): a busy flow's entry is then
 * written about once a second instead of at every packet, and stays
 * shared in every CPU's cache. */
#define PAL_CT_REFRESH_SLACK_NS PAL_NSEC_PER_SEC

/* Accounts a packet to an entry: state bits and deadline. Nothing is
 * written unless the state changes or the deadline moves by more than the
 * slack. Concurrent packets of one flow may race on both; either writer's
 * value is a valid state. */
static __always_inline void pal_ct_refresh(struct pal_ct_value *entry,
					   const struct pal_config *cfg, __u8 protocol,
					   __u8 new_bits, __u64 now)
{
	__u8 seen = entry->tcp_flags | new_bits;
	__u64 timeout = pal_ct_timeout_ns(cfg, protocol, seen);
	__u64 slack = timeout >> 2 < PAL_CT_REFRESH_SLACK_NS ? timeout >> 2 : PAL_CT_REFRESH_SLACK_NS;
	__u64 expires = now + timeout;

	/* A new state may shorten the deadline (closing): always written. */
	if (seen != entry->tcp_flags) {
		entry->tcp_flags = seen;
		entry->expires_ns = expires;
	} else if (expires > entry->expires_ns + slack) {
		entry->expires_ns = expires;
	}
}

/* Creates (or replaces) the entry of a newly admitted flow whose first
 * packet has tuple t, under its canonical key; ct_flags are its other
 * PAL_CT_F_* bits. */
static __always_inline void pal_ct_create(const struct pal_ct_key *t,
					  const struct pal_config *cfg, __u8 tcp_flags,
					  __u8 ct_flags, __u32 rule_id, __u32 remote_identity,
					  __u64 now)
{
	struct pal_ct_key key;
	__u8 swapped = pal_ct_canonical(t, &key);
	__u8 seen = t->protocol == IPPROTO_TCP ? pal_ct_tcp_bits(tcp_flags, false) : 0;
	struct pal_ct_value entry = {
		.expires_ns = now + pal_ct_timeout_ns(cfg, t->protocol, seen),
		.revision = pal_config_revision(cfg),
		.rule_id = rule_id,
		.remote_identity = remote_identity,
		.tcp_flags = seen,
		.ct_flags = ct_flags | (swapped << PAL_CT_F_ORIG_SWAPPED_SHIFT),
	};

	bpf_map_update_elem(&PAL_MAP_CT, &key, &entry, BPF_ANY);
}

#endif /* PAL_CONNTRACK_H */
