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
 */
#ifndef PAL_PROXY_H
#define PAL_PROXY_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "conntrack.h"
#include "maps.h"
#include "parse.h"

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

/* The proxy's listening socket for a packet of tuple t (referenced: the
 * caller releases it), or NULL. The lookup asks for the packet's addresses
 * with the proxy's port: the listener is bound to the wildcard address. */
static __always_inline struct bpf_sock *pal_proxy_listener(struct __sk_buff *skb,
							   const struct pal_ct_key *t,
							   __be16 port_be)
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
	if (sk && sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		sk = NULL;
	}
	return sk;
}

/* Hands a packet opening a connection to the proxy's listener (tc ingress
 * only); with assign false only checks that it listens. */
static __always_inline bool pal_proxy_take(struct __sk_buff *skb, const struct pal_ct_key *t,
					   __be16 port_be, bool assign)
{
	struct bpf_sock *sk = pal_proxy_listener(skb, t, port_be);
	long err = 0;

	if (!sk)
		return false;
	if (assign)
		err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return !err;
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
