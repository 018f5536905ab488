// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The endpoint programs, attached to the host-side interface of every pod:
 * pal_from_pod on its ingress (the pod's egress) and pal_to_pod on its
 * egress (the pod's ingress). Both return TC_ACT_OK or TC_ACT_SHOT, which
 * equal TCX_PASS and TCX_DROP, so the object works under tcx and tc alike.
 *
 * Per packet: endpoint state, parse, later fragments follow their first,
 * conntrack (one lookup of the canonical key for a packet either way, one
 * more for an ICMP error's quoted packet; TCP flags checked on
 * strict flows; a counted flow that closes gives back its connection),
 * then policy for a new flow (and, under a limited allow, its source's
 * connection limits). TCP flows whose policy has HTTP or TLS rules go to the
 * node's transparent proxy (proxy.h): marked for local delivery at the
 * from-pod hook, redirected through the proxy device at the to-pod hook,
 * where pal_to_proxy takes them. Every step is a bounded number of map
 * lookups.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "config.h"
#include "conntrack.h"
#include "events.h"
#include "frag.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"
#include "proxy.h"
#include "stats.h"
#include "tcp_limit.h"

/* Puts enum pal_reason into the object's BTF, where userspace checks its
 * reason codes at load: no map or program has a field of the enum's type
 * (they store reasons in a __u8), so the compiler would leave it out. libbpf
 * makes no map of this section. */
enum pal_reason pal_reason_btf __attribute__((used)) SEC(".palisade.btf");

/* A packet's verdict and what explains it. */
struct pal_verdict {
	__u32 rule_id;
	__u32 remote_identity;
	__u8 reason; /* enum pal_reason */
	__u8 drop;
	__u8 steer; /* goes to the proxy, if it is there (pal_proxy_steer) */
	__u8 pad;
};

static __always_inline void pal_verdict_set(struct pal_verdict *v, bool drop, __u8 reason,
					    __u32 rule_id, __u32 remote_identity)
{
	v->drop = drop;
	v->steer = 0;
	v->reason = reason;
	v->rule_id = rule_id;
	v->remote_identity = remote_identity;
}

/* The PAL_CT_F_* bits of a flow decided by d: strict only for TCP. */
static __always_inline __u8 pal_ct_flags_of(__u8 protocol, const struct pal_decision *d)
{
	return protocol == IPPROTO_TCP && pal_decision_strict(d) ? PAL_CT_F_TCP_STRICT : 0;
}

/* Steers v's packet (at the hook of its tuple's direction) to the proxy;
 * when the proxy is not there the packet is dropped instead (fail closed).
 * Returns 0 then, else 1. Global, so that the socket lookup's locals take
 * no room in its callers' frames (a call chain has 512 bytes of stack). */
__noinline int pal_steer_to_proxy(struct __sk_buff *skb, const struct pal_pkt *pkt,
				  struct pal_verdict *v, __u32 *redirect)
{
	if (!pkt || !v || !redirect)
		return 0;
	if (pal_proxy_steer(skb, pkt, pkt->tuple.direction, redirect)) {
		v->reason = PAL_REASON_TO_PROXY;
		return 1;
	}
	v->drop = 1;
	v->steer = 0;
	v->reason = PAL_REASON_PROXY_UNAVAILABLE;
	return 0;
}

/* Steers v's packet to the proxy if v says so (pal_steer_to_proxy).
 * Returns false if it was dropped instead. */
static __always_inline bool pal_steer(struct __sk_buff *skb, const struct pal_pkt *pkt,
				      struct pal_verdict *v, __u32 *redirect)
{
	return !v->steer || v->drop || pal_steer_to_proxy(skb, pkt, v, redirect);
}

/* Re-checks a tracked flow whose entry predates the current policy
 * revision, for the flow's original direction and remote peer. Returns
 * true if the flow is still allowed (the entry now carries the current
 * revision); otherwise deletes the entry and sets a REVOKED drop. */
static __always_inline bool pal_ct_revalidate(const struct pal_endpoint_value *ep,
					      const struct pal_config *cfg,
					      const struct pal_ct_key *key,
					      struct pal_ct_value *entry, struct pal_verdict *v)
{
	struct pal_decision d = {};

	pal_policy_decide(ep, key, entry->ct_flags & PAL_CT_F_ORIG_SWAPPED, &d);
	/* A connection cannot move into the proxy mid-stream: one that
	 * policy now sends there is revoked (its client reconnects, through
	 * the proxy). A proxied one stays proxied while L4 allows it. */
	if (pal_decision_needs_proxy(&d, key->protocol) &&
	    !(entry->ct_flags & (PAL_CT_F_PROXIED | PAL_CT_F_PROXY_UPSTREAM)))
		d.allowed = 0;
	if (!d.allowed) {
		pal_tcp_release(key, entry);
		bpf_map_delete_elem(&PAL_MAP_CT, key);
		pal_verdict_set(v, true, PAL_REASON_REVOKED, d.rule_id, d.remote_identity);
		return false;
	}
	/* A counted flow is charged to the rule that admitted it: one now
	 * decided by another rule, or no longer limited, gives its unit back
	 * (and is not charged again: limits count connections as they open). */
	if (d.rule_id != entry->rule_id || !(d.flags & PAL_POLICY_F_TCP_LIMITED))
		pal_tcp_release(key, entry);
	entry->revision = pal_config_revision(cfg);
	entry->rule_id = d.rule_id;
	entry->remote_identity = d.remote_identity;
	/* Strictness follows the policy in force, as the verdict does: a flow
	 * is not re-opened, so only its later packets are checked (or no
	 * longer checked). The other bits stay. */
	entry->ct_flags = (entry->ct_flags & ~PAL_CT_F_TCP_STRICT) | pal_ct_flags_of(key->protocol, &d);
	return true;
}

/* Passes a packet of the tracked flow of entry, forward or reply, as
 * ESTABLISHED or REPLY (v, not steered) and accounts it to the entry: the
 * state its TCP flags add and the deadline (pal_ct_refresh). */
static __always_inline void pal_track_pass(struct pal_ct_value *entry,
					   const struct pal_config *cfg, __u8 protocol,
					   __u8 tcp_flags, bool reply, __u64 now,
					   struct pal_verdict *v)
{
	__u8 bits = protocol == IPPROTO_TCP ? pal_ct_tcp_bits(tcp_flags, reply) : 0;

	pal_verdict_set(v, false, reply ? PAL_REASON_REPLY : PAL_REASON_ESTABLISHED, entry->rule_id,
			entry->remote_identity);
	if (reply)
		bits |= PAL_CT_SEEN_REPLY;
	pal_ct_refresh(entry, cfg, protocol, bits, now);
}

/* The established fast path, inlined into the programs' entry: what
 * pal_track decides for most packets, without a call (each costs a few ns
 * through the kernel's return thunk). It takes a packet that is no
 * fragment and, for TCP, neither opens a connection (a SYN without ACK,
 * which pal_track looks up once: a new flow's lookup is not repeated) nor
 * carries an invalid flag combination, whose canonical key finds a live
 * entry of the current policy revision that does not steer it to the proxy
 * and holds no connection-limit unit it might have to give back (counted,
 * and closing or closed). The key is made in the packet's own tuple and the
 * tuple put back, so that the frame of handle, which pal_admit's call
 * chain shares, holds no second key. Returns true if it passed the packet
 * (v set); false, having changed nothing, for pal_track to decide. */
static __always_inline bool pal_track_fast(struct __sk_buff *skb, struct pal_pkt *pkt,
					   struct pal_verdict *v)
{
	const struct pal_config *cfg;
	struct pal_ct_value *entry;
	__u8 swapped;
	bool reply;
	__u64 now;

	if (pkt->frag.kind != PAL_FRAG_NONE ||
	    (pkt->tuple.protocol == IPPROTO_TCP &&
	     (pal_tcp_is_open(IPPROTO_TCP, pkt->tcp_flags) || pal_tcp_flags_invalid(pkt->tcp_flags))))
		return false;
	swapped = pal_ct_canonicalize(&pkt->tuple);
	entry = bpf_map_lookup_elem(&PAL_MAP_CT, &pkt->tuple);
	if (swapped)
		pal_ct_reverse_in_place(&pkt->tuple);
	if (!entry)
		return false;
	cfg = pal_config_get();
	now = pal_ct_now();
	reply = pal_ct_is_reply(entry, swapped);
	if (now > entry->expires_ns || entry->revision != pal_config_revision(cfg) ||
	    pal_ct_steers(entry->ct_flags, reply, pal_from_proxy(skb)) ||
	    ((entry->ct_flags & PAL_CT_F_COUNTED) &&
	     ((pkt->tcp_flags & (PAL_TCP_FIN | PAL_TCP_RST)) ||
	      (entry->tcp_flags & (PAL_CT_SEEN_FIN | PAL_CT_SEEN_RST)))))
		return false;
	pal_track_pass(entry, cfg, pkt->tuple.protocol, pkt->tcp_flags, reply, now, v);
	return true;
}

/* Conntrack: one lookup of the packet's canonical key, a second only for
 * an ICMP error's quoted packet or while older entries may be in the table.
 * Returns 1 if the packet (of the hook direction its tuple has) belongs to
 * a tracked flow, which then decided it (v is set); 0 for a new flow.
 *
 * This and pal_admit are global functions, verified once by their BTF
 * signatures, each on a stack frame of its own: the endpoint programs'
 * frames then stay within the 512 bytes a call chain may use, and the
 * paths before them (fragments, the two hook directions) do not multiply
 * the states of each. Their pointer arguments may be NULL to the verifier,
 * never in fact. */
__noinline int pal_track(struct __sk_buff *skb, const struct pal_endpoint_value *ep,
			 struct pal_pkt *pkt, struct pal_verdict *v)
{
	const struct pal_config *cfg = pal_config_get();
	__u64 now = pal_ct_now();
	struct pal_ct_key ckey;
	const struct pal_ct_key *key = &ckey;
	struct pal_ct_value *entry;
	__u8 swapped, reason, dir;
	bool opening, invalid;
	bool reply;

	if (!ep || !pkt || !v)
		return 0;
	dir = pkt->tuple.direction;
	opening = pal_tcp_is_open(pkt->tuple.protocol, pkt->tcp_flags);
	invalid = pkt->tuple.protocol == IPPROTO_TCP && pal_tcp_flags_invalid(pkt->tcp_flags);
	swapped = pal_ct_canonical(&pkt->tuple, &ckey);
	entry = pal_ct_find(cfg, &ckey, &swapped, now);
	reply = entry && pal_ct_is_reply(entry, swapped);
	/* A new connection on the tuple of a closing one starts over, so
	 * that policy sees it; a SYN+FIN or SYN+RST on a strict flow opens
	 * nothing and is dropped below instead. The proxy's SYN on a proxied
	 * entry opens no new connection: it is the upstream leg of that one,
	 * on the same tuple at the same hook (steering at the server's hook),
	 * after a client that closed its side before the proxy connected
	 * (a request and its FIN at once). Started over, the entry would be
	 * the upstream leg's and send the client's last ACK to the server,
	 * leaving the proxy's socket in LAST-ACK. */
	if (entry && opening && !reply && (entry->tcp_flags & (PAL_CT_SEEN_FIN | PAL_CT_SEEN_RST)) &&
	    !(invalid && (entry->ct_flags & PAL_CT_F_TCP_STRICT)) &&
	    !(pal_from_proxy(skb) && (entry->ct_flags & PAL_CT_F_PROXIED))) {
		pal_tcp_release(key, entry);
		bpf_map_delete_elem(&PAL_MAP_CT, key);
		entry = NULL;
	}
	/* A SYN without ACK is never a reply: a peer opening a connection
	 * along a flow's reversed tuple still goes to policy (and, allowed,
	 * replaces the entry: one key serves both directions). SYN+FIN and
	 * SYN+RST are replies of a strict flow, so that it drops them from
	 * either side; other flows leave them to policy, as they always did. */
	if (entry && opening && reply && !(invalid && (entry->ct_flags & PAL_CT_F_TCP_STRICT)))
		entry = NULL;
	reason = reply ? PAL_REASON_REPLY : PAL_REASON_ESTABLISHED;
	if (!entry && pkt->has_inner) {
		/* The quoted packet left from our side, seen by the opposite
		 * hook: the forward or the reply packet of a tracked flow, one
		 * key either way. */
		pkt->inner.direction = pal_dir_opposite(dir);
		pkt->inner.endpoint_id = ep->endpoint_id;
		swapped = pal_ct_canonical(&pkt->inner, &ckey);
		reason = PAL_REASON_RELATED;
		entry = pal_ct_find(cfg, &ckey, &swapped, now);
	}
	if (!entry)
		return 0;

	if (entry->revision != pal_config_revision(cfg) &&
	    !pal_ct_revalidate(ep, cfg, key, entry, v))
		return 1;

	/* An ICMP error neither proves the flow alive nor changes its state. */
	if (reason == PAL_REASON_RELATED) {
		pal_verdict_set(v, false, reason, entry->rule_id, entry->remote_identity);
		return 1;
	}
	/* A flow admitted under a strict allow carries no invalid flag
	 * combination either way. The packet is dropped, the flow stays:
	 * one forged segment must not tear down the connection. */
	if (invalid && (entry->ct_flags & PAL_CT_F_TCP_STRICT)) {
		pal_verdict_set(v, true, PAL_REASON_TCP_INVALID, entry->rule_id,
				entry->remote_identity);
		return 1;
	}
	pal_track_pass(entry, cfg, key->protocol, pkt->tcp_flags, reply, now, v);
	v->steer = pal_ct_steers(entry->ct_flags, reply, pal_from_proxy(skb));
	/* The only work of connection limits on a tracked flow: a counted
	 * one that just closed gives its unit back. */
	if ((entry->ct_flags & PAL_CT_F_COUNTED) && pal_ct_tcp_closed(entry->tcp_flags))
		pal_tcp_release(key, entry);
	return 1;
}

/* Policy for a new flow; an allowed one is tracked from here on. Every
 * allowed flow gets an entry, not only TCP SYNs: mid-stream packets after
 * an agent restart are judged by policy once and then tracked. A strict
 * allow (tcp.strict) is the exception: its TCP flows open with a pure SYN
 * only, so an adopted mid-stream flow under it has to reconnect. The
 * packet's hook direction is its tuple's. Returns 0. */
__noinline int pal_admit(struct __sk_buff *skb, const struct pal_endpoint_value *ep,
			 const struct pal_pkt *pkt, struct pal_verdict *v, __u32 *redirect)
{
	const struct pal_config *cfg = pal_config_get();
	__u64 now = pal_ct_now();
	struct pal_event_info info = {};
	bool from_proxy = pal_from_proxy(skb);
	struct pal_decision d = {};
	bool counted = false;
	__u8 ct_flags, dir;

	if (!ep || !pkt || !v || !redirect)
		return 0;
	dir = pkt->tuple.direction;
	info.endpoint_id = ep->endpoint_id;
	info.direction = dir;
	pal_policy_decide(ep, &pkt->tuple, 0, &d);
	if (pkt->tuple.protocol == IPPROTO_TCP && !pal_tcp_is_pure_syn(pkt->tcp_flags)) {
		pal_decision_refuse_strict(&d);
		/* The proxy takes only connections it sees open: a flow
		 * steered to it is strict about its first packet too. */
		if (!from_proxy && pal_decision_needs_proxy(&d, pkt->tuple.protocol)) {
			d.allowed = 0;
			d.reason = PAL_REASON_TCP_INVALID;
		}
	}
	/* Connection limits charge every TCP flow a limited allow lets the
	 * node start tracking, whatever its first packet (so a forged ACK
	 * cannot open an uncharged flow for a SYN to follow), except one that
	 * opens already closing (FIN or RST): it holds nothing, and a SYN on
	 * its tuple starts over through policy. */
	if (d.allowed && (d.flags & PAL_POLICY_F_TCP_LIMITED) &&
	    pkt->tuple.protocol == IPPROTO_TCP &&
	    !(pkt->tcp_flags & (PAL_TCP_FIN | PAL_TCP_RST)) &&
	    !pal_tcp_limit_charge(&pkt->tuple, d.rule_id, &counted)) {
		d.allowed = 0;
		d.reason = PAL_REASON_TCP_LIMIT;
	}
	pal_verdict_set(v, !d.allowed, d.reason, d.rule_id, d.remote_identity);
	/* The proxy's own connections (its upstream legs) are judged like
	 * any other but never steered back to it. */
	v->steer = !from_proxy && pal_decision_needs_proxy(&d, pkt->tuple.protocol);
	if (!pal_steer(skb, pkt, v, redirect) && counted)
		pal_tcp_limit_refund(pkt->tuple.family, pkt->tuple.saddr, d.rule_id);
	if (d.rule_id)
		pal_count_rule(d.rule_id, skb->len);
	if (v->drop)
		return 0;

	ct_flags = pal_ct_flags_of(pkt->tuple.protocol, &d) | (counted ? PAL_CT_F_COUNTED : 0);
	/* Only the proxy's SYN opens an upstream leg (from the client's
	 * address to the server). Its other packets that find no entry are
	 * the client leg's (from the server's address, e.g. a late FIN or RST
	 * once the client reused its port): marked upstream, their reverse
	 * tuple would send a later direct connection's packets on that tuple
	 * to the proxy's TIME_WAIT sockets. */
	if (v->steer)
		ct_flags |= PAL_CT_F_PROXIED;
	else if (from_proxy && pkt->tuple.protocol == IPPROTO_TCP && pal_tcp_is_pure_syn(pkt->tcp_flags))
		ct_flags |= PAL_CT_F_PROXY_UPSTREAM;
	pal_ct_create(&pkt->tuple, cfg, pkt->tcp_flags, ct_flags, d.rule_id, d.remote_identity,
		      now);
	info.remote_identity = d.remote_identity;
	if (pal_config_flags(cfg) & PAL_CFG_EVENTS_ALLOWED) {
		info.kind = PAL_EVENT_ALLOWED;
		info.reason = d.reason;
		info.rule_id = d.rule_id;
		pal_event_emit(skb, &pkt->tuple, &info);
	}
	if (!d.audit_allowed) {
		info.kind = PAL_EVENT_AUDIT;
		info.reason = d.audit_reason;
		info.rule_id = d.audit_rule_id;
		pal_event_emit(skb, &pkt->tuple, &info);
	}
	return 0;
}

/* A later fragment of pkt (at the hook of its tuple's direction) shares its
 * first's fate: passed as FRAGMENT, or dropped for the first's own reason;
 * it takes the first's ports. Returns 0. Global, like pal_frag_remember. */
__noinline int pal_follow_first(struct pal_pkt *pkt, __u32 endpoint_id, struct pal_verdict *v)
{
	const struct pal_frag_value *first;

	if (!pkt || !v)
		return 0;
	first = pal_frag_lookup(pkt, endpoint_id, pkt->tuple.direction);
	if (!first) {
		pal_verdict_set(v, true, PAL_REASON_FRAG_UNKNOWN, 0, 0);
		return 0;
	}
	pkt->tuple.sport_be = first->sport_be;
	pkt->tuple.dport_be = first->dport_be;
	if (first->allowed)
		pal_verdict_set(v, false, PAL_REASON_FRAGMENT, 0, 0);
	else
		pal_verdict_set(v, true, first->reason, 0, 0);
	return 0;
}

/* Counts the verdict, reports a drop, and turns it into a tc action. */
static __always_inline int pal_finish(struct __sk_buff *skb, const struct pal_endpoint_value *ep,
				      const struct pal_pkt *pkt, __u8 dir,
				      const struct pal_verdict *v, __u32 redirect)
{
	struct pal_event_info info = {
		.endpoint_id = ep ? ep->endpoint_id : 0,
		.remote_identity = v->remote_identity,
		.rule_id = v->rule_id,
		.direction = dir,
		.kind = PAL_EVENT_DENIED,
		.reason = v->reason,
	};

	pal_count_reason(v->reason, skb->len);
	if (!v->drop)
		return redirect ? bpf_redirect(redirect, 0) : TC_ACT_OK;
	pal_event_emit(skb, &pkt->tuple, &info);
	return TC_ACT_SHOT;
}

/* The endpoint state of the interface, or NULL. The array answers for
 * small interface indexes (inlined by the verifier), the hash for the rest
 * and for anything the array does not hold. */
static __always_inline const struct pal_endpoint_value *pal_endpoint_lookup(__u32 ifindex)
{
	const struct pal_endpoint_value *ep = bpf_map_lookup_elem(&PAL_MAP_ENDPOINTS_BY_IFINDEX, &ifindex);
	struct pal_endpoint_key key = { .ifindex = ifindex };

	return ep && ep->endpoint_id ? ep : bpf_map_lookup_elem(&PAL_MAP_ENDPOINTS, &key);
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	const struct pal_endpoint_value *ep = pal_endpoint_lookup(skb->ifindex);
	struct pal_verdict v = {};
	struct pal_pkt pkt = {};
	__u32 redirect = 0;
	int parsed = PAL_PARSE_OK;

	/* The common packet read in place here, the others by the general
	 * parse (a call), which also takes every packet of an interface
	 * without an endpoint. */
	if (!ep || !pal_parse_direct(skb, &pkt))
		parsed = pal_parse(skb, &pkt);
	if (!ep) {
		/* Fail closed: an interface we were attached to but know
		 * nothing about must not carry traffic. */
		pal_verdict_set(&v, true, PAL_REASON_NO_ENDPOINT, 0, 0);
		return pal_finish(skb, ep, &pkt, dir, &v, redirect);
	}
	if (parsed != PAL_PARSE_OK) {
		pal_verdict_set(&v, parsed == PAL_REASON_MALFORMED, parsed, 0, 0);
		return pal_finish(skb, ep, &pkt, dir, &v, redirect);
	}
	pkt.tuple.direction = dir;
	pkt.tuple.endpoint_id = ep->endpoint_id;

	if (pkt.frag.kind == PAL_FRAG_LATER) {
		pal_follow_first(&pkt, ep->endpoint_id, &v);
		return pal_finish(skb, ep, &pkt, dir, &v, redirect);
	}

	if (pal_track_fast(skb, &pkt, &v))
		return pal_finish(skb, ep, &pkt, dir, &v, redirect);
	if (pal_track(skb, ep, &pkt, &v))
		pal_steer(skb, &pkt, &v, &redirect);
	else
		pal_admit(skb, ep, &pkt, &v, &redirect);
	if (pkt.frag.kind == PAL_FRAG_FIRST)
		pal_frag_remember(&pkt, ep->endpoint_id, dir, !v.drop, v.reason);
	return pal_finish(skb, ep, &pkt, dir, &v, redirect);
}

SEC("tc")
int pal_from_pod(struct __sk_buff *skb)
{
	return handle(skb, PAL_DIR_EGRESS);
}

SEC("tc")
int pal_to_pod(struct __sk_buff *skb)
{
	return handle(skb, PAL_DIR_INGRESS);
}

/* On the ingress of the proxy device's receiving end: the packets the
 * to-pod hook steered (and marked), now where bpf_sk_assign works. The
 * destination MAC becomes the device's own and the packet is for this host
 * (it was addressed to the pod), so the stack takes it in; the mark routes
 * it to a local socket; a pure SYN is handed to the listener. Nothing else
 * comes this way: anything without the mark is dropped. */
SEC("tc")
int pal_to_proxy(struct __sk_buff *skb)
{
	const struct pal_proxy_config *cfg = pal_proxy_config_get();
	struct pal_pkt pkt = {};

	if ((skb->mark & PAL_MARK_PROXY_MASK) != PAL_MARK_TO_PROXY || !cfg)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, cfg->mac, ETH_ALEN, 0) ||
	    bpf_skb_change_type(skb, PACKET_HOST))
		return TC_ACT_SHOT;
	if (pal_parse(skb, &pkt) != PAL_PARSE_OK || pkt.tuple.protocol != IPPROTO_TCP)
		return TC_ACT_SHOT;
	if (pal_tcp_is_pure_syn(pkt.tcp_flags) && !pal_proxy_take(skb, &pkt.tuple, cfg->port_be, true)) {
		/* The listener went away since the to-pod hook checked. */
		pal_count_reason(PAL_REASON_PROXY_UNAVAILABLE, skb->len);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

/* On the node's network namespace (sk_lookup): see pal_proxy_lookup_run. */
SEC("sk_lookup")
int pal_proxy_lookup(struct bpf_sk_lookup *ctx)
{
	return pal_proxy_lookup_run(ctx);
}

char LICENSE[] SEC("license") = "GPL";
