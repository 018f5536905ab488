/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Policy decision for one flow: the remote address's identity from the
 * ipcache, then two longest-prefix lookups in the policy trie (that
 * identity, and any peer). Userspace stores in every trie entry the
 * combination of all rules covering it, so these three lookups are the
 * whole cost, however many rules exist. Each longest-prefix lookup first
 * tries a hash of the trie's full-length entries (the common case: pod
 * addresses, exact ports), which is the same answer when it hits.
 */
#ifndef PAL_POLICY_H
#define PAL_POLICY_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "maps.h"

/* The outcome for one flow, enforced and as Audit-mode policies see it. */
struct pal_decision {
	__u32 remote_identity;
	__u32 rule_id;       /* rule behind the enforced verdict, 0 if none */
	__u32 audit_rule_id; /* rule behind the audit verdict, 0 if none */
	__u8 allowed;
	__u8 reason; /* enum pal_reason */
	__u8 audit_allowed;
	__u8 audit_reason;
	__u8 flags;       /* PAL_POLICY_F_* every entry allowing the enforced verdict has,
			   * and the PAL_POLICY_F_ANY_ENTRY ones any entry found has */
	__u8 audit_flags; /* the same for the audit verdict (read its AUDIT_ bits) */
	__u8 pad[2];
};

/* Whether the enforced allow of d holds only under tcp.strict. */
static __always_inline bool pal_decision_strict(const struct pal_decision *d)
{
	return d->flags & PAL_POLICY_F_TCP_STRICT;
}

/* The port policy matches: ICMP has none (its echo identifier lives in the
 * tuple only), so only protocol-wide entries cover it. */
static __always_inline __be16 pal_policy_port(__u8 protocol, __be16 dport_be)
{
	return (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6) ? 0 : dport_be;
}

/* Whether a new flow of protocol decided by d goes to the node's proxy:
 * TCP only, allowed by the enforced verdict, and an HTTP or TLS rule
 * (allow or deny) to judge it by, enforced or audit. The audit bits count
 * only when the audit verdict allows: a flow Audit-mode policy would deny at
 * L4 is reported as such, there is nothing of it to judge. */
static __always_inline bool pal_decision_needs_proxy(const struct pal_decision *d, __u8 protocol)
{
	return protocol == IPPROTO_TCP && d->allowed &&
	       ((d->flags & (PAL_POLICY_F_HTTP | PAL_POLICY_F_HTTP_DENY)) ||
		(d->audit_allowed &&
		 (d->audit_flags & (PAL_POLICY_F_AUDIT_HTTP | PAL_POLICY_F_AUDIT_HTTP_DENY))));
}

/* Looks up the identity of a remote address; unknown addresses are WORLD.
 * Pod and node addresses are host entries: one hash lookup; the trie only
 * for the others (CIDR classes, WORLD). */
static __always_inline void pal_ipcache_lookup(__u8 family, const __u8 *addr,
					       struct pal_ipcache_value *out)
{
	struct pal_ipcache_key key = {
		.prefixlen = 32 + (family == PAL_FAMILY_V4 ? 32 : 128),
		.family = family,
	};
	const struct pal_ipcache_value *value;

	__builtin_memcpy(key.addr, addr, sizeof(key.addr));
	value = bpf_map_lookup_elem(&PAL_MAP_IPCACHE_HOSTS, &key);
	if (!value)
		value = bpf_map_lookup_elem(&PAL_MAP_IPCACHE, &key);
	if (value) {
		*out = *value;
	} else {
		out->identity = PAL_ID_WORLD;
		out->flags = 0;
	}
}

/* Combines the verdicts of the identity entry and the any-peer entry: a
 * deny in either wins, then an allow in either, then isolation decides.
 * An allow has a flag (strict, limited, HTTP) only if every entry that
 * allows has it: the two entries stand for different rules, and a rule
 * without it admitting the flow admits it as it is (union of Allow
 * rules). Not isolated has none of those: no rule admitted the flow. The
 * PAL_POLICY_F_ANY_ENTRY flags (an HTTP or TLS Deny rule covers the entry)
 * are the OR over both entries whatever the outcome: a Deny rule applies to
 * every request or connection whichever rule, or no isolation, admits it.
 * An absent entry has flags 0. */
static __always_inline void pal_policy_combine(__u8 verdict_id, __u32 rule_id, __u8 flags_id,
					       __u8 verdict_any, __u32 rule_any, __u8 flags_any,
					       bool isolated, __u8 *allowed, __u8 *reason,
					       __u32 *rule, __u8 *flags)
{
	*flags = (flags_id | flags_any) & PAL_POLICY_F_ANY_ENTRY;
	if (verdict_id == PAL_POLICY_DENY || verdict_any == PAL_POLICY_DENY) {
		*allowed = 0;
		*reason = PAL_REASON_POLICY_DENY;
		*rule = verdict_id == PAL_POLICY_DENY ? rule_id : rule_any;
	} else if (verdict_id == PAL_POLICY_ALLOW || verdict_any == PAL_POLICY_ALLOW) {
		*allowed = 1;
		*reason = PAL_REASON_POLICY_ALLOW;
		*rule = verdict_id == PAL_POLICY_ALLOW ? rule_id : rule_any;
		*flags |= (verdict_id == PAL_POLICY_ALLOW ? flags_id : 0xff) &
			  (verdict_any == PAL_POLICY_ALLOW ? flags_any : 0xff) &
			  ~PAL_POLICY_F_ANY_ENTRY;
	} else if (isolated) {
		*allowed = 0;
		*reason = PAL_REASON_DEFAULT_DENY;
		*rule = 0;
	} else {
		*allowed = 1;
		*reason = PAL_REASON_NOT_ISOLATED;
		*rule = 0;
	}
}

/* A flow no rule decides, passed in both verdicts for reason. */
static __always_inline void pal_decision_pass(struct pal_decision *d, __u8 reason)
{
	d->allowed = 1;
	d->reason = reason;
	d->rule_id = 0;
	d->audit_allowed = 1;
	d->audit_reason = reason;
	d->audit_rule_id = 0;
	d->flags = 0;
	d->audit_flags = 0;
}

/* The policy entry of key (prefixlen PAL_POLICY_PREFIX_FULL): an exact-port
 * entry is found in the hash, anything shorter (port ranges, any port, any
 * protocol) in the trie. */
static __always_inline const struct pal_policy_value *
pal_policy_lookup(const struct pal_policy_key *key)
{
	const struct pal_policy_value *value = bpf_map_lookup_elem(&PAL_MAP_POLICY_EXACT, key);

	return value ? value : bpf_map_lookup_elem(&PAL_MAP_POLICY, key);
}

/* Decides into d a flow of endpoint ep: the flow whose first packet has
 * key's tuple and was seen by the hook of key's direction, or key's tuple
 * reversed at the opposite hook if reversed (a conntrack key that is its
 * flow's first packet reversed, PAL_CT_F_ORIG_SWAPPED). Returns 0.
 *
 * A global function: the verifier checks it once, by its BTF signature,
 * rather than at each caller along every path that reaches it, and the
 * callers then know nothing of d but its size, so the branches on the
 * verdict do not multiply with the ways of reaching it. (A global function
 * returns a scalar, and its pointer arguments may be NULL to the verifier.) */
__noinline int pal_policy_decide(const struct pal_endpoint_value *ep,
				 const struct pal_ct_key *key, __u8 reversed,
				 struct pal_decision *d)
{
	struct pal_policy_key pkey = {
		.prefixlen = PAL_POLICY_PREFIX_FULL,
	};
	const struct pal_policy_value *by_id, *by_any;
	struct pal_ipcache_value ipc;
	__u8 id_verdict = PAL_POLICY_NONE, id_audit = PAL_POLICY_NONE;
	__u8 any_verdict = PAL_POLICY_NONE, any_audit = PAL_POLICY_NONE;
	__u32 id_rule = 0, id_audit_rule = 0, any_rule = 0, any_audit_rule = 0;
	__u8 id_flags = 0, any_flags = 0;
	bool ingress;

	if (!ep || !key || !d)
		return 0;
	/* The first packet's direction; its remote end is its source at
	 * ingress and its destination at egress, which are key's own ends
	 * swapped if reversed. */
	ingress = (key->direction == PAL_DIR_INGRESS) != !!reversed;
	pkey.slot = ep->policy_slot;
	pkey.direction = ingress ? PAL_DIR_INGRESS : PAL_DIR_EGRESS;
	pkey.protocol = key->protocol;
	pkey.dport_be = pal_policy_port(key->protocol, reversed ? key->sport_be : key->dport_be);
	pal_ipcache_lookup(key->family, ingress != !!reversed ? key->saddr : key->daddr, &ipc);
	d->remote_identity = ipc.identity;
	if (ingress && (ipc.flags & PAL_IPCACHE_HOST)) {
		pal_decision_pass(d, PAL_REASON_HOST);
		return 0;
	}

	/* No policy of this direction applies to the endpoint, so its slot
	 * holds no entry for it (the contract in palisade_abi.h): both
	 * lookups would miss. */
	if (!(ep->flags & (ingress ? PAL_EP_ISOLATED_INGRESS | PAL_EP_AUDIT_ISOLATED_INGRESS
				   : PAL_EP_ISOLATED_EGRESS | PAL_EP_AUDIT_ISOLATED_EGRESS))) {
		pal_decision_pass(d, PAL_REASON_NOT_ISOLATED);
		return 0;
	}

	pkey.identity = ipc.identity;
	by_id = pal_policy_lookup(&pkey);
	if (by_id) {
		id_verdict = by_id->verdict;
		id_rule = by_id->rule_id;
		id_audit = by_id->audit_verdict;
		id_audit_rule = by_id->audit_rule_id;
		id_flags = by_id->flags;
	}
	pkey.identity = PAL_ID_ANY;
	by_any = ep->flags & (ingress ? PAL_EP_NO_ANY_PEER_INGRESS : PAL_EP_NO_ANY_PEER_EGRESS)
			 ? NULL
			 : pal_policy_lookup(&pkey);
	if (by_any) {
		any_verdict = by_any->verdict;
		any_rule = by_any->rule_id;
		any_audit = by_any->audit_verdict;
		any_audit_rule = by_any->audit_rule_id;
		any_flags = by_any->flags;
	}

	pal_policy_combine(id_verdict, id_rule, id_flags, any_verdict, any_rule, any_flags,
			   ep->flags & (ingress ? PAL_EP_ISOLATED_INGRESS : PAL_EP_ISOLATED_EGRESS),
			   &d->allowed, &d->reason, &d->rule_id, &d->flags);
	pal_policy_combine(id_audit, id_audit_rule, id_flags, any_audit, any_audit_rule, any_flags,
			   ep->flags & (ingress ? PAL_EP_AUDIT_ISOLATED_INGRESS
						: PAL_EP_AUDIT_ISOLATED_EGRESS),
			   &d->audit_allowed, &d->audit_reason, &d->audit_rule_id,
			   &d->audit_flags);
	return 0;
}

/* tcp.strict: a new TCP flow whose first packet is not a pure SYN is
 * refused by a strict allow, in the enforced and in the audit verdict
 * alike. The rule ids stay: the strict rule is what refused. */
static __always_inline void pal_decision_refuse_strict(struct pal_decision *d)
{
	if (pal_decision_strict(d)) {
		d->allowed = 0;
		d->reason = PAL_REASON_TCP_INVALID;
	}
	if (d->audit_flags & PAL_POLICY_F_AUDIT_TCP_STRICT) {
		d->audit_allowed = 0;
		d->audit_reason = PAL_REASON_TCP_INVALID;
	}
}

#endif /* PAL_POLICY_H */
