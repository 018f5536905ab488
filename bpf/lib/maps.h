/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Every map of the datapath. BTF-defined so userspace reads the key and
 * value layouts from the object; pinned by name so a restarted agent
 * re-adopts the kernel state instead of starting empty. max_entries are
 * defaults: userspace resizes before load.
 */
#ifndef PAL_MAPS_H
#define PAL_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct pal_ipcache_key);
	__type(value, struct pal_ipcache_value);
	/* Not preallocated: the room for 100k CIDRs and every pod costs only the entries written. */
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_IPCACHE SEC(".maps");

/* Host entries of the ipcache, for one hash lookup instead of a trie walk.
 * Not preallocated either; max_entries follows the trie's (userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pal_ipcache_key);
	__type(value, struct pal_ipcache_value);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_IPCACHE_HOSTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pal_endpoint_key);
	__type(value, struct pal_endpoint_value);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_ENDPOINTS SEC(".maps");

/* Interface indexes grow with every interface the host makes (two per pod
 * started): 65,536 of them, 1 MiB, cover most nodes' lifetime; the hash
 * serves the others. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pal_endpoint_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_ENDPOINTS_BY_IFINDEX SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct pal_policy_key);
	__type(value, struct pal_policy_value);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_POLICY SEC(".maps");

/* Exact-port entries of the policy trie, for one hash lookup instead of a
 * trie walk. Not preallocated; max_entries follows the trie's (userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct pal_policy_key);
	__type(value, struct pal_policy_value);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_POLICY_EXACT SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pal_ct_key);
	__type(value, struct pal_ct_value);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_CT SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pal_frag_key);
	__type(value, struct pal_frag_value);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_FRAGS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pal_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct pal_counter);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_RULE_STATS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct pal_counter);
	__uint(max_entries, PAL_REASON_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_REASON_STATS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct pal_tcp_limit);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_TCP_LIMITS SEC(".maps");

/* An evicted source starts over (no connections, a full bucket) until the
 * agent's conntrack GC recounts its connections. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pal_tcp_source_key);
	__type(value, struct pal_tcp_source_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_TCP_SOURCES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pal_proxy_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_PROXY_CONFIG SEC(".maps");

/* The conntrack clock's last reading on each CPU (pal_ct_now). Not pinned:
 * a cache, which each loaded object keeps for its own programs. */
struct pal_clock {
	__u64 jiffies; /* the jiffy now_ns was read in */
	__u64 now_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct pal_clock);
	__uint(max_entries, 1);
} pal_clock SEC(".maps");

/* Pinned too, although it holds no state worth keeping: a restarted agent
 * then reads the same buffer the running programs write to. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PAL_MAP_EVENTS SEC(".maps");

#endif /* PAL_MAPS_H */
