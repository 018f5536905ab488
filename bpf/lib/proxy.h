/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Steering to the node's transparent proxy (an L7 proxy listening with
 * IP_TRANSPARENT on one TCP port for IPv4 and IPv6, in the node's network
 * namespace). A packet goes to a local socket whatever its destination when
 * it carries PAL_MARK_TO_PROXY: userspace routes that mark to a local
 * table (TPROXY style). A packet opening a connection is handed to the
 * listener with bpf_sk_assign; the others find the proxy's sockets by their
 * addresses. bpf_sk_assign works at tc ingress only, so the to-pod hook
 * (tc egress) redirects its packets out of a veth whose peer runs
 * pal_to_proxy on its ingress, which does the rest there.
 *
 * A SYN whose exact tuple a socket of the node still holds (the proxy's
 * accepted socket in TIME_WAIT, when the proxy closed first and the client
 * opens again from the same port) must meet that socket, as it would
 * without the proxy: assigned to the listener, its request would clash
 * with the TIME_WAIT socket in the established hash and be dropped
 * unanswered. Such a SYN is only marked: the kernel's own lookup finds the
 * socket and applies its rules (a SYN that may reopen a TIME_WAIT tuple
 * ends it and goes to a listener lookup), and pal_proxy_lookup, the
 * node's sk_lookup program, answers that lookup with the proxy's listener.
 */
#ifndef PAL_PROXY_H
#define PAL_PROXY_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "conntrack.h"
#include "maps.h"
#include "parse.h"

/* The tuple of a SYN handed over to the kernel's lookup, as sk_lookup
 * sees it: remote = the client, local = the original destination. */
struct pal_proxy_syn_key {
	__u32 family; /* AF_INET or AF_INET6 */
	__be16 sport;
	__be16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Written by the tc programs, consumed by pal_proxy_lookup; an entry whose
 * SYN never got that far ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pal_proxy_syn_key);
	__type(value, __u8);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_proxy_syns SEC(".maps");

/* The proxy's listeners, by family (PAL_PROXY_SLOT_*), put here by the tc
 * programs from their lookup; a closed listener leaves the map by itself. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_proxy_listeners SEC(".maps");

#define PAL_PROXY_SLOT_V4 0
#define PAL_PROXY_SLOT_V6 1
#define PAL_AF_INET 2
#define PAL_AF_INET6 10

/* The proxy configuration, or NULL when there is no proxy to steer to. */
static __always_inline const struct pal_proxy_config *pal_proxy_config_get(void)
{
	__u32 index = 0;
	const struct pal_proxy_config *cfg = bpf_map_lookup_elem(&PAL_MAP_PROXY_CONFIG, &index);

	return cfg && cfg->ifindex && cfg->port_be ? cfg : NULL;
}

/* Whether the proxy sent the packet (its sockets' SO_MARK). Pods cannot
 * forge it: a packet crossing from the pod's namespace loses its mark. */
static __always_inline bool pal_from_proxy(const struct __sk_buff *skb)
{
	return (skb->mark & PAL_MARK_PROXY_MASK) == PAL_MARK_FROM_PROXY;
}

static __always_inline void pal_mark_to_proxy(struct __sk_buff *skb)
{
	skb->mark = (skb->mark & ~PAL_MARK_PROXY_MASK) | PAL_MARK_TO_PROXY;
}

/* Whether a tracked packet goes to the proxy: any packet of a proxied flow
 * but the proxy's own (the client reaches the proxy's accepted socket, the
 * server's replies its upstream socket), and the server's replies in a flow
 * the proxy opened. */
static __always_inline bool pal_ct_steers(__u8 ct_flags, bool reply, bool from_proxy)
{
	return !from_proxy && ((ct_flags & PAL_CT_F_PROXIED) ||
			       (reply && (ct_flags & PAL_CT_F_PROXY_UPSTREAM)));
}

/* The node's socket for tuple t with destination port port_be (referenced:
 * the caller releases it), or NULL. */
static __always_inline struct bpf_sock *pal_node_socket(struct __sk_buff *skb,
							const struct pal_ct_key *t, __be16 port_be)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;

	if (t->family == PAL_FAMILY_V4) {
		__builtin_memcpy(&tuple.ipv4.saddr, t->saddr, 4);
		__builtin_memcpy(&tuple.ipv4.daddr, t->daddr, 4);
		tuple.ipv4.sport = t->sport_be;
		tuple.ipv4.dport = port_be;
		sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(tuple.ipv6.saddr, t->saddr, 16);
		__builtin_memcpy(tuple.ipv6.daddr, t->daddr, 16);
		tuple.ipv6.sport = t->sport_be;
		tuple.ipv6.dport = port_be;
		sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	return sk;
}

/* The proxy's listening socket for a packet of tuple t (referenced: the
 * caller releases it), or NULL. The lookup asks for the packet's addresses
 * with the proxy's port: the listener is bound to the wildcard address. */
static __always_inline struct bpf_sock *pal_proxy_listener(struct __sk_buff *skb,
							   const struct pal_ct_key *t,
							   __be16 port_be)
{
	struct bpf_sock *sk = pal_node_socket(skb, t, port_be);

	if (sk && sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		sk = NULL;
	}
	return sk;
}

/* Whether a socket of the node holds t's exact tuple (a listener on the
 * destination's port holds none). */
static __always_inline bool pal_tuple_held(struct __sk_buff *skb, const struct pal_ct_key *t)
{
	struct bpf_sock *sk = pal_node_socket(skb, t, t->dport_be);
	bool held;

	if (!sk)
		return false;
	held = sk->state != BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return held;
}

/* Leaves a SYN on a held tuple to the kernel's lookup: records its tuple
 * for pal_proxy_lookup, with the listener it is to get. */
static __always_inline long pal_proxy_defer(const struct pal_ct_key *t, struct bpf_sock *listener)
{
	bool v4 = t->family == PAL_FAMILY_V4;
	struct pal_proxy_syn_key key = {
		.family = v4 ? PAL_AF_INET : PAL_AF_INET6,
		.sport = t->sport_be,
		.dport = t->dport_be,
	};
	__u32 slot = v4 ? PAL_PROXY_SLOT_V4 : PAL_PROXY_SLOT_V6;
	__u8 one = 1;
	long err;

	__builtin_memcpy(key.saddr, t->saddr, 16);
	__builtin_memcpy(key.daddr, t->daddr, 16);
	err = bpf_map_update_elem(&pal_proxy_listeners, &slot, listener, BPF_ANY);
	return err ? err : bpf_map_update_elem(&pal_proxy_syns, &key, &one, BPF_ANY);
}

/* Hands a packet opening a connection to the proxy's listener (tc ingress
 * only), directly or, on a held tuple, through the kernel's lookup; with
 * assign false only checks that it listens. */
static __always_inline bool pal_proxy_take(struct __sk_buff *skb, const struct pal_ct_key *t,
					   __be16 port_be, bool assign)
{
	struct bpf_sock *sk = pal_proxy_listener(skb, t, port_be);
	long err = 0;

	if (!sk)
		return false;
	if (assign)
		err = pal_tuple_held(skb, t) ? pal_proxy_defer(t, sk) : bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return !err;
}

/* The node's sk_lookup program: gives a lookup for a SYN that
 * pal_proxy_defer recorded the proxy's listener; every other lookup goes on
 * as usual. Runs on listener lookups only (a new connection, or a SYN that
 * reopens a TIME_WAIT tuple), TCP and UDP. */
static __always_inline int pal_proxy_lookup_run(struct bpf_sk_lookup *ctx)
{
	struct pal_proxy_syn_key key = {
		.family = ctx->family,
		.sport = ctx->remote_port,
		.dport = bpf_htons(ctx->local_port),
	};
	__u32 slot = ctx->family == PAL_AF_INET ? PAL_PROXY_SLOT_V4 : PAL_PROXY_SLOT_V6;
	struct bpf_sock *sk;
	long err;

	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (ctx->family == PAL_AF_INET) {
		__builtin_memcpy(key.saddr, &ctx->remote_ip4, 4);
		__builtin_memcpy(key.daddr, &ctx->local_ip4, 4);
	} else {
		__builtin_memcpy(key.saddr, ctx->remote_ip6, 16);
		__builtin_memcpy(key.daddr, ctx->local_ip6, 16);
	}
	if (!bpf_map_lookup_elem(&pal_proxy_syns, &key))
		return SK_PASS;
	/* One lookup per SYN: a retransmission is recorded again by tc. */
	bpf_map_delete_elem(&pal_proxy_syns, &key);
	sk = bpf_map_lookup_elem(&pal_proxy_listeners, &slot);
	/* The proxy went away: the SYN is refused, never given to another socket. */
	if (!sk)
		return SK_DROP;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

/* Steers a packet to the proxy from the hook of direction dir. A pure SYN
 * opens a connection, which the listener must take: at the from-pod hook
 * (tc ingress) it is assigned here, at the to-pod hook pal_to_proxy assigns
 * it after the redirect, and here it is only checked that the proxy
 * listens. Sets *redirect to the interface the to-pod hook redirects to (0
 * at the from-pod hook). False when there is no proxy (the caller drops:
 * fail closed). */
static __always_inline bool pal_proxy_steer(struct __sk_buff *skb, const struct pal_pkt *pkt,
					    __u8 dir, __u32 *redirect)
{
	const struct pal_proxy_config *cfg = pal_proxy_config_get();
	bool at_ingress = dir == PAL_DIR_EGRESS;

	if (!cfg)
		return false;
	if (pal_tcp_is_pure_syn(pkt->tcp_flags) &&
	    !pal_proxy_take(skb, &pkt->tuple, cfg->port_be, at_ingress))
		return false;
	pal_mark_to_proxy(skb);
	*redirect = at_ingress ? 0 : cfg->ifindex;
	return true;
}

#endif /* PAL_PROXY_H */
