/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Packet parsing: Ethernet (with at most two in-frame VLAN tags), IPv4 with
 * options, IPv6 with a bounded extension-header walk, the ports of TCP, UDP
 * and SCTP, ICMP and ICMPv6 echo identifiers, and the packet an ICMP error
 * quotes.
 *
 * Everything is read with bpf_skb_load_bytes: it works on non-linear skbs
 * (GSO, paged fragments) without pulling them, and keeps the variable
 * offsets of IPv4 options and extension headers out of packet-pointer
 * bounds checks.
 */
#ifndef PAL_PARSE_H
#define PAL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"

#define PAL_VLAN_MAX_TAGS 2
#define PAL_VLAN_HLEN 4
#define PAL_IPV6_MAX_EXT_HDRS 8

#define PAL_IPV4_MF 0x2000
#define PAL_IPV4_OFFSET 0x1fff
#define PAL_IPV6_FRAG_OFFSET 0xfff8
#define PAL_IPV6_FRAG_MF 0x0001

/* TCP flags, byte 13 of the header. */
#define PAL_TCP_FLAGS_OFFSET 13
#define PAL_TCP_FIN 0x01
#define PAL_TCP_SYN 0x02
#define PAL_TCP_RST 0x04
#define PAL_TCP_PSH 0x08
#define PAL_TCP_ACK 0x10
#define PAL_TCP_URG 0x20

/* ICMP header size, and so where an error's quoted packet starts. */
#define PAL_ICMP_HLEN 8

#define PAL_ICMP_ECHO_REPLY 0
#define PAL_ICMP_DEST_UNREACH 3
#define PAL_ICMP_SOURCE_QUENCH 4
#define PAL_ICMP_REDIRECT 5
#define PAL_ICMP_ECHO_REQUEST 8
#define PAL_ICMP_TIME_EXCEEDED 11
#define PAL_ICMP_PARAMETER_PROBLEM 12

#define PAL_ICMPV6_DEST_UNREACH 1
#define PAL_ICMPV6_PACKET_TOO_BIG 2
#define PAL_ICMPV6_TIME_EXCEEDED 3
#define PAL_ICMPV6_PARAMETER_PROBLEM 4
#define PAL_ICMPV6_ECHO_REQUEST 128
#define PAL_ICMPV6_ECHO_REPLY 129
#define PAL_ICMPV6_NEIGHBOR_SOLICIT 135
#define PAL_ICMPV6_NEIGHBOR_ADVERT 136

/* RFC 4861: neighbor discovery is only valid with this hop limit, which
 * proves the sender is on the link. */
#define PAL_ND_HOP_LIMIT 255

/* Where a packet sits in a fragmented datagram. */
#define PAL_FRAG_NONE 0
#define PAL_FRAG_FIRST 1 /* offset 0, more follow: carries the L4 header */
#define PAL_FRAG_LATER 2 /* offset > 0: no L4 header */

/* pal_parse() result when the packet is IP and fully parsed; otherwise it
 * returns PAL_REASON_NOT_IP or PAL_REASON_MALFORMED. */
#define PAL_PARSE_OK 0

struct pal_frag_info {
	__u32 id;
	__u8 kind;     /* PAL_FRAG_* */
	__u8 protocol; /* what every fragment names: the IPv4 protocol, or the
			* next header of the IPv6 fragment header */
	__u8 pad[2];
};

/* What the datapath needs to know about one packet. */
struct pal_pkt {
	struct pal_ct_key tuple; /* direction and endpoint_id are the caller's */
	struct pal_ct_key inner; /* ICMP error: the quoted packet, if has_inner */
	struct pal_frag_info frag;
	__u8 tcp_flags; /* TCP: the header's flags byte */
	__u8 has_inner;
	__u8 pad[2];
};

/* Reads the IPv4 header at *off into t and frag and advances *off to the
 * L4 header. Returns -1 if the header is cut short or garbled. */
static __always_inline int pal_parse_ipv4(struct __sk_buff *skb, __u32 *off,
					  struct pal_ct_key *t,
					  struct pal_frag_info *frag)
{
	struct iphdr ip;
	__u16 frag_off, tot_len;
	__u32 hlen;

	if (bpf_skb_load_bytes(skb, *off, &ip, sizeof(ip)))
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	hlen = ip.ihl * 4;
	tot_len = bpf_ntohs(ip.tot_len);
	/* 0 is legal: a BIG TCP super-packet keeps its length in the skb. */
	if (tot_len && tot_len < hlen)
		return -1;

	t->family = PAL_FAMILY_V4;
	t->protocol = ip.protocol;
	__builtin_memcpy(t->saddr, &ip.saddr, 4);
	__builtin_memcpy(t->daddr, &ip.daddr, 4);

	frag_off = bpf_ntohs(ip.frag_off);
	if (frag_off & (PAL_IPV4_MF | PAL_IPV4_OFFSET)) {
		frag->id = bpf_ntohs(ip.id);
		frag->protocol = ip.protocol;
		frag->kind = (frag_off & PAL_IPV4_OFFSET) ? PAL_FRAG_LATER : PAL_FRAG_FIRST;
	}
	*off += hlen;
	return 0;
}

static __always_inline bool pal_ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT ||
	       nexthdr == IPPROTO_AH;
}

/* The first 8 bytes of any IPv6 extension header (none is shorter); the
 * last two fields only mean something in a fragment header. */
struct pal_ipv6_ext {
	__u8 nexthdr;
	__u8 len;
	__be16 frag_off;
	__be32 frag_id;
};

/* Walks at most PAL_IPV6_MAX_EXT_HDRS extension headers starting at *off,
 * the first being nexthdr. Leaves *off at the upper-layer header and its
 * protocol in *protocol; a later fragment stops at its fragment header
 * since what follows is payload. Returns -1 if a header is cut short or
 * the chain is longer than the limit: such a packet is refused rather than
 * judged by a header that was never read. */
static __always_inline int pal_ipv6_skip_ext(struct __sk_buff *skb, __u32 *off,
					     __u8 nexthdr, __u8 *protocol,
					     struct pal_frag_info *frag)
{
	struct pal_ipv6_ext ext;
	__u16 frag_off;
	int i;

	for (i = 0; i < PAL_IPV6_MAX_EXT_HDRS; i++) {
		if (!pal_ipv6_is_ext(nexthdr))
			break;
		if (bpf_skb_load_bytes(skb, *off, &ext, sizeof(ext)))
			return -1;
		if (nexthdr == IPPROTO_FRAGMENT) {
			frag_off = bpf_ntohs(ext.frag_off);
			frag->id = bpf_ntohl(ext.frag_id);
			frag->protocol = ext.nexthdr;
			if (frag_off & PAL_IPV6_FRAG_OFFSET) {
				frag->kind = PAL_FRAG_LATER;
				*protocol = ext.nexthdr;
				return 0;
			}
			/* Offset 0 without M is an atomic fragment (RFC
			 * 6946): a whole packet, nothing follows it. */
			if (frag_off & PAL_IPV6_FRAG_MF)
				frag->kind = PAL_FRAG_FIRST;
			*off += sizeof(ext);
		} else if (nexthdr == IPPROTO_AH) {
			*off += ((__u32)ext.len + 2) * 4;
		} else {
			*off += ((__u32)ext.len + 1) * 8;
		}
		nexthdr = ext.nexthdr;
	}
	if (pal_ipv6_is_ext(nexthdr))
		return -1;
	*protocol = nexthdr;
	return 0;
}

/* Reads the IPv6 header and its extension headers at *off into t and frag
 * and advances *off to the upper-layer header. Returns -1 if cut short or
 * garbled. */
static __always_inline int pal_parse_ipv6(struct __sk_buff *skb, __u32 *off,
					  struct pal_ct_key *t,
					  struct pal_frag_info *frag,
					  __u8 *hop_limit)
{
	struct ipv6hdr ip6;

	if (bpf_skb_load_bytes(skb, *off, &ip6, sizeof(ip6)))
		return -1;
	if (ip6.version != 6)
		return -1;

	t->family = PAL_FAMILY_V6;
	__builtin_memcpy(t->saddr, &ip6.saddr, 16);
	__builtin_memcpy(t->daddr, &ip6.daddr, 16);
	*hop_limit = ip6.hop_limit;
	*off += sizeof(ip6);
	return pal_ipv6_skip_ext(skb, off, ip6.nexthdr, &t->protocol, frag);
}

static __always_inline bool pal_icmp_is_echo_request(__u8 protocol, __u8 type)
{
	return protocol == IPPROTO_ICMP ? type == PAL_ICMP_ECHO_REQUEST
					: type == PAL_ICMPV6_ECHO_REQUEST;
}

static __always_inline bool pal_icmp_is_echo_reply(__u8 protocol, __u8 type)
{
	return protocol == IPPROTO_ICMP ? type == PAL_ICMP_ECHO_REPLY
					: type == PAL_ICMPV6_ECHO_REPLY;
}

/* ICMP messages that quote the packet they are about. */
static __always_inline bool pal_icmp_is_error(__u8 protocol, __u8 type)
{
	if (protocol == IPPROTO_ICMP)
		return type == PAL_ICMP_DEST_UNREACH || type == PAL_ICMP_SOURCE_QUENCH ||
		       type == PAL_ICMP_REDIRECT || type == PAL_ICMP_TIME_EXCEEDED ||
		       type == PAL_ICMP_PARAMETER_PROBLEM;
	if (protocol == IPPROTO_ICMPV6)
		return type >= PAL_ICMPV6_DEST_UNREACH &&
		       type <= PAL_ICMPV6_PARAMETER_PROBLEM;
	return false;
}

/* The first 8 bytes of an ICMP or ICMPv6 message. */
struct pal_icmp_head {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 id;  /* echo */
	__be16 seq; /* echo */
};

/* Fills t's ports from the L4 header at off: TCP, UDP and SCTP ports (at
 * the same offsets in all three); for ICMP echo the identifier, in sport
 * for a request and in dport for a reply so that a reply's tuple is the
 * exact reverse of its request's. Other protocols keep ports 0. Stores the
 * ICMP type in *icmp_type. Returns -1 if the header is cut short. */
static __always_inline int pal_parse_ports(struct __sk_buff *skb, __u32 off,
					   struct pal_ct_key *t, __u8 *icmp_type)
{
	struct pal_icmp_head icmp;
	__be16 ports[2];

	switch (t->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
			return -1;
		t->sport_be = ports[0];
		t->dport_be = ports[1];
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (bpf_skb_load_bytes(skb, off, &icmp, sizeof(icmp)))
			return -1;
		*icmp_type = icmp.type;
		if (pal_icmp_is_echo_request(t->protocol, icmp.type))
			t->sport_be = icmp.id;
		else if (pal_icmp_is_echo_reply(t->protocol, icmp.type))
			t->dport_be = icmp.id;
		return 0;
	default:
		return 0;
	}
}

/* Parses the packet an ICMP error quotes, starting at off, into
 * pkt->inner. Sets has_inner only when the quoted tuple is complete: a
 * quote too short to read is no reason to drop the error, it just cannot
 * be related to a flow. */
static __always_inline void pal_parse_icmp_quote(struct __sk_buff *skb, __u32 off,
						 struct pal_pkt *pkt)
{
	struct pal_frag_info frag = {};
	__u8 hop_limit, icmp_type;
	int err;

	if (pkt->tuple.family == PAL_FAMILY_V4)
		err = pal_parse_ipv4(skb, &off, &pkt->inner, &frag);
	else
		err = pal_parse_ipv6(skb, &off, &pkt->inner, &frag, &hop_limit);
	if (err || frag.kind == PAL_FRAG_LATER)
		return;
	if (pal_parse_ports(skb, off, &pkt->inner, &icmp_type))
		return;
	pkt->has_inner = 1;
}

/* Ports (and TCP flags) of a TCP, UDP or SCTP header read in place at l4:
 * false if the linear data ends before them or the protocol is another. */
static __always_inline bool pal_parse_direct_l4(void *l4, void *data_end, __u8 protocol,
						struct pal_pkt *pkt)
{
	__be16 *ports = l4;

	if (protocol == IPPROTO_TCP) {
		if (l4 + PAL_TCP_FLAGS_OFFSET + 1 > data_end)
			return false;
		pkt->tcp_flags = *(__u8 *)(l4 + PAL_TCP_FLAGS_OFFSET);
	} else if (protocol != IPPROTO_UDP && protocol != IPPROTO_SCTP) {
		return false;
	}
	if ((void *)(ports + 2) > data_end)
		return false;
	pkt->tuple.sport_be = ports[0];
	pkt->tuple.dport_be = ports[1];
	pkt->tuple.protocol = protocol;
	return true;
}

/* The common case read in place, without a helper call per header: an
 * untagged IPv4 packet without options or an IPv6 packet without extension
 * headers, not a fragment, carrying TCP, UDP or SCTP, all within the
 * linear data. Returns false, having set nothing pal_parse() would not set
 * again, for anything else: pal_parse() then reads it the general way,
 * which also decides what is malformed. */
static __always_inline bool pal_parse_direct(struct __sk_buff *skb, struct pal_pkt *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct ipv6hdr *ip6 = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		/* ihl 5 and a total length of 0 (BIG TCP) or at least the
		 * header: anything else goes the general way. */
		if (ip->version != 4 || ip->ihl != 5 ||
		    (ip->tot_len && bpf_ntohs(ip->tot_len) < sizeof(*ip)) ||
		    (ip->frag_off & bpf_htons(PAL_IPV4_MF | PAL_IPV4_OFFSET)))
			return false;
		if (!pal_parse_direct_l4(ip + 1, data_end, ip->protocol, pkt))
			return false;
		pkt->tuple.family = PAL_FAMILY_V4;
		__builtin_memcpy(pkt->tuple.saddr, &ip->saddr, 4);
		__builtin_memcpy(pkt->tuple.daddr, &ip->daddr, 4);
		return true;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		if ((void *)(ip6 + 1) > data_end || ip6->version != 6 ||
		    !pal_parse_direct_l4(ip6 + 1, data_end, ip6->nexthdr, pkt))
			return false;
		pkt->tuple.family = PAL_FAMILY_V6;
		__builtin_memcpy(pkt->tuple.saddr, &ip6->saddr, 16);
		__builtin_memcpy(pkt->tuple.daddr, &ip6->daddr, 16);
		return true;
	}
	return false;
}

/* Parses the Ethernet frame in skb into pkt. Returns PAL_PARSE_OK,
 * PAL_REASON_NOT_IP for frames that are not IP or only resolve link-layer
 * addresses (ARP, IPv6 neighbor solicitations and advertisements: without
 * them no IP packet could be delivered at all), or PAL_REASON_MALFORMED.
 *
 * A global function: the verifier checks it once, by its BTF signature,
 * and its callers then know nothing of pkt but its size. So the IPv4 and
 * IPv6 paths, each protocol's and the fast and the general parse's, end
 * here instead of each carrying on through conntrack and policy as a
 * verifier state of its own. The endpoint programs read the common packet
 * in place themselves (pal_parse_direct, for their established fast path)
 * and call this for the others, which then take the in-place read's few
 * instructions twice. */
__noinline int pal_parse(struct __sk_buff *skb, struct pal_pkt *pkt)
{
	__u32 off = ETH_HLEN;
	__u8 hop_limit = 0, icmp_type = 0;
	__be16 proto;
	int i, err;

	/* A global function's pointer arguments may be NULL to the verifier. */
	if (!pkt)
		return PAL_REASON_MALFORMED;
	if (pal_parse_direct(skb, pkt))
		return PAL_PARSE_OK;
	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto)))
		return PAL_REASON_MALFORMED;
	/* Tags the kernel left in the frame rather than in skb metadata: the
	 * IP packet behind them is judged like any other. */
	for (i = 0; i < PAL_VLAN_MAX_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (bpf_skb_load_bytes(skb, off + 2, &proto, sizeof(proto)))
			return PAL_REASON_MALFORMED;
		off += PAL_VLAN_HLEN;
	}

	if (proto == bpf_htons(ETH_P_IP))
		err = pal_parse_ipv4(skb, &off, &pkt->tuple, &pkt->frag);
	else if (proto == bpf_htons(ETH_P_IPV6))
		err = pal_parse_ipv6(skb, &off, &pkt->tuple, &pkt->frag, &hop_limit);
	else if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return PAL_REASON_MALFORMED; /* more tags than we look behind */
	else
		return PAL_REASON_NOT_IP;
	if (err)
		return PAL_REASON_MALFORMED;
	if (pkt->frag.kind == PAL_FRAG_LATER)
		return PAL_PARSE_OK;

	if (pal_parse_ports(skb, off, &pkt->tuple, &icmp_type))
		return PAL_REASON_MALFORMED;
	if (pkt->tuple.protocol == IPPROTO_TCP &&
	    bpf_skb_load_bytes(skb, off + PAL_TCP_FLAGS_OFFSET, &pkt->tcp_flags, 1))
		return PAL_REASON_MALFORMED;
	if (pal_icmp_is_error(pkt->tuple.protocol, icmp_type))
		pal_parse_icmp_quote(skb, off + PAL_ICMP_HLEN, pkt);
	if (pkt->tuple.protocol == IPPROTO_ICMPV6 && hop_limit == PAL_ND_HOP_LIMIT &&
	    (icmp_type == PAL_ICMPV6_NEIGHBOR_SOLICIT || icmp_type == PAL_ICMPV6_NEIGHBOR_ADVERT))
		return PAL_REASON_NOT_IP;
	return PAL_PARSE_OK;
}

#endif /* PAL_PARSE_H */
