/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract between the kernel datapath and userspace: map names, the
 * layout of every key and value, reserved identities, verdicts and reasons.
 * src/datapath/abi.ts mirrors this file field by field and checks its
 * offsets against the object's BTF at load, so a change here without the
 * matching change there fails loudly instead of corrupting maps.
 *
 * Multi-byte integers are host order unless the name says "be" (big endian,
 * network order). Every struct is padded explicitly: no implicit holes, so
 * userspace can zero-fill keys byte for byte.
 */
#ifndef PALISADE_ABI_H
#define PALISADE_ABI_H

#include <linux/types.h>

/* Address families as stored in keys. */
#define PAL_FAMILY_V4 4
#define PAL_FAMILY_V6 6

/* Reserved identities. Allocated identities start at PAL_ID_FIRST_ALLOCATED. */
#define PAL_ID_ANY 0   /* policy keys only: any remote peer */
#define PAL_ID_HOST 1  /* an address of this node */
#define PAL_ID_WORLD 2 /* an address no ipcache entry covers */
#define PAL_ID_FIRST_ALLOCATED 256

/* Direction from the endpoint's point of view. */
#define PAL_DIR_INGRESS 0 /* to the pod: host-side interface egress */
#define PAL_DIR_EGRESS 1  /* from the pod: host-side interface ingress */

/* Policy verdicts stored in policy values. */
#define PAL_POLICY_NONE 0
#define PAL_POLICY_ALLOW 1
#define PAL_POLICY_DENY 2

/* Endpoint flags: isolation per direction, enforced and audit (audit = with
 * Audit-mode policies counted too). Userspace writes policy entries of a
 * direction only into slots of endpoints isolated (enforced or audit) in it:
 * the kernel does not look entries up for a direction neither flag isolates. */
#define PAL_EP_ISOLATED_INGRESS (1u << 0)
#define PAL_EP_ISOLATED_EGRESS (1u << 1)
#define PAL_EP_AUDIT_ISOLATED_INGRESS (1u << 2)
#define PAL_EP_AUDIT_ISOLATED_EGRESS (1u << 3)
/* Set for an isolated direction whose slot holds no PAL_ID_ANY entry: that
 * lookup is skipped. Clear means "look it up", so older userspace stays right. */
#define PAL_EP_NO_ANY_PEER_INGRESS (1u << 4)
#define PAL_EP_NO_ANY_PEER_EGRESS (1u << 5)

/* Config flags. */
#define PAL_CFG_EVENTS_ALLOWED (1u << 0) /* emit an event per allowed new flow */
/* pal_ct may hold entries keyed the older way (the first packet's tuple,
 * not in canonical order): a lookup that misses tries that key too. Set by
 * userspace while it finds such entries (see pal_ct_key). */
#define PAL_CFG_CT_LEGACY_KEYS (1u << 1)

/* Event kinds. */
#define PAL_EVENT_ALLOWED 1     /* a new flow was allowed */
#define PAL_EVENT_DENIED 2      /* a packet was dropped */
#define PAL_EVENT_AUDIT 3       /* allowed, but Audit-mode policy would deny it */

/* Why a packet got its verdict. Shared with userspace (src/datapath/reasons.ts),
 * which checks every constant against the object's BTF at load. Reasons
 * below PAL_REASON_FIRST_DROP pass the packet, the others drop it. */
enum pal_reason {
	PAL_REASON_NONE = 0,
	PAL_REASON_POLICY_ALLOW = 1,   /* an allow rule matched */
	PAL_REASON_NOT_ISOLATED = 2,   /* no policy isolates this direction */
	PAL_REASON_HOST = 3,           /* ingress from the node itself */
	PAL_REASON_ESTABLISHED = 4,    /* forward packet of a tracked flow */
	PAL_REASON_REPLY = 5,          /* reply packet of a tracked flow */
	PAL_REASON_RELATED = 6,        /* ICMP error about a tracked flow */
	PAL_REASON_NOT_IP = 7,         /* ARP and other non-IP frames */
	PAL_REASON_FRAGMENT = 8,       /* later fragment following its first */
	PAL_REASON_TO_PROXY = 9,       /* steered to the node's transparent proxy */
	PAL_REASON_POLICY_DENY = 16,   /* a deny rule matched */
	PAL_REASON_DEFAULT_DENY = 17,  /* isolated and no allow rule matched */
	PAL_REASON_NO_ENDPOINT = 18,   /* interface has no endpoint state: fail closed */
	PAL_REASON_MALFORMED = 19,     /* headers could not be parsed */
	PAL_REASON_FRAG_UNKNOWN = 20,  /* later fragment whose first was not seen */
	PAL_REASON_REVOKED = 21,       /* tracked flow no longer allowed by policy */
	PAL_REASON_TCP_INVALID = 22,   /* TCP flags a tcp.strict allow refuses */
	PAL_REASON_TCP_LIMIT = 23,     /* new TCP flow over its rule's per-source connection limits */
	PAL_REASON_PROXY_UNAVAILABLE = 24, /* needs the proxy, which is not configured or not listening */
	PAL_REASON_FIRST_DROP = PAL_REASON_POLICY_DENY,
	PAL_REASON_MAX = 32,
};

/* ipcache: LPM trie, IP or CIDR -> identity. prefixlen counts the 32 bits of
 * family+pad, then the address bits (v4: 32 + 0..32, v6: 32 + 0..128). */
struct pal_ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16]; /* IPv4 in addr[0..3], rest zero */
};

/* ipcache value flags. */
#define PAL_IPCACHE_HOST (1u << 0) /* an address of this node: ingress always allowed */

struct pal_ipcache_value {
	__u32 identity;
	__u32 flags; /* PAL_IPCACHE_* */
};

/* ipcache_hosts: hash, the ipcache's host entries (prefixlen 64 for IPv4,
 * 160 for IPv6) again, keyed and valued alike. A host entry is the longest
 * match its address can have, so a hit here is the trie's answer; a miss
 * asks the trie. Userspace keeps it a subset of the trie with the trie's
 * values: written after the trie, deleted before it. */

/* endpoints: hash, host-side ifindex -> endpoint state. A packet on an
 * interface without an entry is dropped (fail closed). */
struct pal_endpoint_key {
	__u32 ifindex;
};

struct pal_endpoint_value {
	__u32 endpoint_id; /* stable id, in events and conntrack keys */
	__u32 policy_slot; /* policy entries live under this slot */
	__u32 identity;    /* the endpoint's own identity (events) */
	__u32 flags;       /* PAL_EP_* */
};

/* endpoints_by_ifindex: array, __u32 ifindex -> the same value, for
 * interfaces whose index is below its size: an array lookup instead of a
 * hash lookup on every packet. An entry with endpoint_id 0 is empty: the
 * hash decides. Userspace keeps every other entry equal to the hash's:
 * written after the hash, emptied before it. */

/* policy: LPM trie. slot, identity and direction always match in full
 * (prefixlen >= 72); protocol 0 entries stop there (prefixlen 72 = any
 * protocol); prefixlen 80 = any port of that protocol; 80 + n = the first n
 * bits of dport_be. Userspace stores in every entry the combination of all
 * rules whose prefix covers it, so the longest match alone is the answer. */
struct pal_policy_key {
	__u32 prefixlen;
	__u32 slot;
	__u32 identity; /* PAL_ID_ANY = any peer */
	__u8 direction;
	__u8 protocol;
	__be16 dport_be;
};

/* policy_exact: hash, the policy trie's exact-port entries (prefixlen 96)
 * again, keyed and valued alike, kept by userspace as ipcache_hosts is: an
 * exact-port entry is the longest match its key can have, and holds the
 * combination of every rule covering it (Deny included), so a hit is the
 * trie's answer; a miss asks the trie. */

#define PAL_POLICY_PREFIX_ANY_PROTO 72
#define PAL_POLICY_PREFIX_ANY_PORT 80
#define PAL_POLICY_PREFIX_FULL 96

/* Policy value flags. The TCP ones are set only when every Allow rule
 * behind that verdict has the property (userspace folds the union);
 * meaningless unless the verdict is PAL_POLICY_ALLOW, and only TCP flows
 * are affected. Limited: the rule behind the verdict (rule_id,
 * audit_rule_id) has connection limits in pal_tcp_limits and is charged for
 * the flow. HTTP: the allow holds only through rules the proxy judges,
 * HTTP or TLS rules (AND over the allowing entries of a lookup, like the
 * TCP flags). HTTP_DENY: a Deny rule the proxy judges (HTTP or TLS) covers
 * the entry, whatever its verdict (NONE or ALLOW; it is no L4 deny); OR
 * over every entry a lookup finds. The names are HTTP's, the first rules
 * the proxy judged; they mean "judged by the proxy". A TCP flow the enforced
 * verdict allows goes to the node's proxy when its decision has HTTP or
 * HTTP_DENY, or is allowed in the audit verdict with AUDIT_HTTP or
 * AUDIT_HTTP_DENY. */
#define PAL_POLICY_F_TCP_STRICT (1u << 0)        /* the enforced allow is strict */
#define PAL_POLICY_F_AUDIT_TCP_STRICT (1u << 1)  /* the audit allow is strict */
#define PAL_POLICY_F_TCP_LIMITED (1u << 2)       /* the enforced allow is limited */
#define PAL_POLICY_F_AUDIT_TCP_LIMITED (1u << 3) /* the audit allow is limited */
#define PAL_POLICY_F_HTTP (1u << 4)              /* the enforced allow is by HTTP/TLS rules only */
#define PAL_POLICY_F_HTTP_DENY (1u << 5)         /* an enforced HTTP/TLS Deny rule covers it */
#define PAL_POLICY_F_AUDIT_HTTP (1u << 6)        /* the audit allow is by HTTP/TLS rules only */
#define PAL_POLICY_F_AUDIT_HTTP_DENY (1u << 7)   /* an HTTP/TLS Deny rule covers it (audit) */
/* The flags a lookup ORs over its entries; the others it ANDs over the
 * allowing ones. */
#define PAL_POLICY_F_ANY_ENTRY (PAL_POLICY_F_HTTP_DENY | PAL_POLICY_F_AUDIT_HTTP_DENY)

struct pal_policy_value {
	__u8 verdict;       /* PAL_POLICY_*, Enforce-mode policies only */
	__u8 audit_verdict; /* PAL_POLICY_*, all policies incl. Audit mode */
	__u8 flags;         /* PAL_POLICY_F_* */
	__u8 pad;
	__u32 rule_id;       /* rule behind verdict, 0 if none */
	__u32 audit_rule_id; /* rule behind audit_verdict, 0 if none */
};

/* conntrack: LRU hash. One entry per flow per endpoint, found from either
 * direction with one lookup: the key is canonical. Its tuple is the flow's
 * first packet's when (saddr, sport) orders at or below (daddr, dport),
 * else that tuple reversed (pal_ct_canonical), with PAL_CT_F_ORIG_SWAPPED in
 * the value; direction is the first packet's hook direction, flipped when
 * the tuple was reversed. So a reply (the reversed tuple at the opposite
 * hook) has the same key as the flow's first packet.
 *
 * Entries written before 2026-12-07 are keyed by the first packet's tuple
 * and hook direction whatever their order, without the flag: read the same
 * way (the key reversed iff the flag is set is the first packet's), they
 * are found by the canonical key when that tuple was in order, and by the
 * other orientation (PAL_CFG_CT_LEGACY_KEYS) otherwise. */
struct pal_ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport_be; /* ICMP echo: identifier in sport (request) */
	__be16 dport_be; /* ICMP echo: identifier in dport (reply) */
	__u8 protocol;
	__u8 family;
	__u8 direction;
	__u8 pad;
	__u32 endpoint_id;
};

/* TCP state bits in pal_ct_value.tcp_flags (union of flags seen). */
#define PAL_CT_SEEN_SYN (1u << 0)
#define PAL_CT_SEEN_REPLY (1u << 1)
#define PAL_CT_SEEN_FIN (1u << 2)
#define PAL_CT_SEEN_RST (1u << 3)
#define PAL_CT_SEEN_FIN_ORIG (1u << 4)  /* a FIN in the flow's first direction */
#define PAL_CT_SEEN_FIN_REPLY (1u << 5) /* a FIN in the reply direction */

/* Flow bits in pal_ct_value.ct_flags. */
#define PAL_CT_F_TCP_STRICT (1u << 0) /* admitted (or last re-checked) under a strict allow */
#define PAL_CT_F_COUNTED (1u << 1)    /* holds one unit of its source's pal_tcp_sources conns,
				       * under rule_id; given back once, by whoever clears it */
#define PAL_CT_F_PROXIED (1u << 2)    /* steered to the proxy: every packet of it without the
				       * from-proxy mark, either way, goes to the proxy */
#define PAL_CT_F_PROXY_UPSTREAM (1u << 3) /* opened by the proxy (first packet from-proxy
					   * marked): never steered; replies go back to it */
/* The key is the first packet's tuple reversed, at the opposite hook direction;
 * conntrack moves the bit to and from a 0-or-1 value by its shift. */
#define PAL_CT_F_ORIG_SWAPPED_SHIFT 4
#define PAL_CT_F_ORIG_SWAPPED (1u << PAL_CT_F_ORIG_SWAPPED_SHIFT)

struct pal_ct_value {
	__u64 expires_ns;  /* deadline, CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns()) */
	__u64 unused[2];   /* zero; were per-flow packet and byte counts, an atomic
			    * add each per packet (the reason counters count
			    * packets); kept so that pinned maps keep their size */
	__u32 revision;    /* pal_config.revision when policy last admitted it */
	__u32 rule_id;     /* rule that admitted the flow */
	__u32 remote_identity;
	__u8 tcp_flags;    /* PAL_CT_SEEN_* */
	__u8 ct_flags;     /* PAL_CT_F_* */
	__u8 pad[2];
};

/* tcp_limits: hash, rule id (__u32) -> the connection limits of a rule with
 * tcp.maxConnectionsPerSource or tcp.newConnectionsPerSecond, written by
 * userspace. A limited policy entry whose rule has no entry here is not
 * limited. */
struct pal_tcp_limit {
	__u32 max_conns; /* concurrent connections per source, 0 = no limit */
	__u32 rate;      /* new connections per second per source, 0 = no limit */
	__u32 burst;     /* bucket size in connections (>= rate) */
	__u32 pad;
};

/* tcp_sources: LRU hash, the state of one source address under one limited
 * rule. saddr is the flow's source (the first packet's): the remote peer
 * for ingress, the pod for egress. */
struct pal_tcp_source_key {
	__u32 rule_id;
	__u8 family;
	__u8 pad[3];
	__u8 saddr[16]; /* IPv4 in saddr[0..3], rest zero */
};

struct pal_tcp_source_value {
	/* Token bucket as a virtual schedule (GCRA): the bpf_ktime_get_ns()
	 * time at which the bucket is full again; 0 or past = full. A new
	 * connection moves it one interval (1 s / rate) later, from now if it
	 * was past, and is refused if that puts it more than burst intervals
	 * ahead of now. */
	__u64 full_at_ns;
	__u64 conns; /* counted flows open (atomic; read as signed, never below 0) */
};

/* fragments: LRU hash. The first fragment's ports and verdict, per hook, so
 * later fragments (which carry no L4 header) follow it. */
struct pal_frag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 id; /* IPv4: 16-bit id; IPv6: 32-bit id */
	__u32 endpoint_id;
	__u8 protocol;
	__u8 family;
	__u8 direction;
	__u8 pad;
};

struct pal_frag_value {
	__be16 sport_be;
	__be16 dport_be;
	__u8 allowed;
	__u8 reason; /* enum pal_reason of the first fragment's verdict */
	__u8 pad[2];
};

/* skb->mark bits of proxy steering (mask PAL_MARK_PROXY_MASK; the other
 * bits are left alone). TO: deliver to a local socket whatever the
 * destination (a fwmark rule routes it to a local table). FROM: sent by
 * the proxy (its sockets' SO_MARK): judged by policy, never steered. */
#define PAL_MARK_PROXY_MASK 0x0f00
#define PAL_MARK_TO_PROXY 0x0a00
#define PAL_MARK_FROM_PROXY 0x0b00

/* proxy_config: array with one entry at index 0, written by userspace.
 * ifindex 0 or port 0: no proxy, so flows that need it are dropped
 * (PAL_REASON_PROXY_UNAVAILABLE). */
struct pal_proxy_config {
	__u32 ifindex; /* the to-pod hook redirects steered packets out of it */
	__be16 port_be; /* the proxy's transparent listener, IPv4 and IPv6 */
	__u8 mac[6];   /* MAC of the device that receives them (ifindex's veth peer) */
};

/* config: array with one entry at index 0. */
struct pal_config {
	__u32 revision; /* bumped by userspace whenever policy or identities change */
	__u32 flags;    /* PAL_CFG_* */
	__u32 ct_timeout_syn_s;
	__u32 ct_timeout_established_s;
	__u32 ct_timeout_closing_s;
	__u32 ct_timeout_udp_s;
	__u32 ct_timeout_other_s; /* ICMP, SCTP before userspace knows better */
	__u32 pad;
};

/* rule_stats: per-CPU hash, rule id -> counters of new-flow verdicts it decided.
 * reason_stats: per-CPU array indexed by enum pal_reason. */
struct pal_counter {
	__u64 packets;
	__u64 bytes;
};

/* events: ring buffer of these. */
struct pal_flow_event {
	__u64 timestamp_ns;
	__u32 endpoint_id;
	__u32 ifindex;
	__u32 remote_identity;
	__u32 rule_id;
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport_be;
	__be16 dport_be;
	__u8 family;
	__u8 protocol;
	__u8 direction;
	__u8 kind;   /* PAL_EVENT_* */
	__u8 reason; /* enum pal_reason */
	__u8 pad[3];
	__u32 packet_len;
};

/* Map names as pinned under the pin root (LIBBPF_PIN_BY_NAME). */
#define PAL_MAP_IPCACHE pal_ipcache
#define PAL_MAP_IPCACHE_HOSTS pal_ipcache_hosts
#define PAL_MAP_ENDPOINTS pal_endpoints
#define PAL_MAP_ENDPOINTS_BY_IFINDEX pal_endpoints_by_ifindex
#define PAL_MAP_POLICY pal_policy
#define PAL_MAP_POLICY_EXACT pal_policy_exact
#define PAL_MAP_CT pal_ct
#define PAL_MAP_FRAGS pal_frags
#define PAL_MAP_CONFIG pal_config_map
#define PAL_MAP_RULE_STATS pal_rule_stats
#define PAL_MAP_REASON_STATS pal_reason_stats
#define PAL_MAP_EVENTS pal_events
#define PAL_MAP_TCP_LIMITS pal_tcp_limits
#define PAL_MAP_TCP_SOURCES pal_tcp_sources
#define PAL_MAP_PROXY_CONFIG pal_proxy_config

#endif /* PALISADE_ABI_H */
