/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Fragments: only the first fragment of a datagram carries the L4 header,
 * so its ports and verdict are remembered per hook, and later fragments
 * (which name the same addresses, id and protocol) follow it.
 */
#ifndef PAL_FRAG_H
#define PAL_FRAG_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "maps.h"
#include "parse.h"

/* The key of pkt's datagram at the hook of endpoint_id in direction dir. */
static __always_inline void pal_frag_key_of(const struct pal_pkt *pkt, __u32 endpoint_id,
					    __u8 dir, struct pal_frag_key *key)
{
	__builtin_memcpy(key->saddr, pkt->tuple.saddr, sizeof(key->saddr));
	__builtin_memcpy(key->daddr, pkt->tuple.daddr, sizeof(key->daddr));
	key->id = pkt->frag.id;
	key->endpoint_id = endpoint_id;
	key->protocol = pkt->frag.protocol;
	key->family = pkt->tuple.family;
	key->direction = dir;
	key->pad = 0;
}

/* Remembers the first fragment's ports, verdict and its reason. Returns 0.
 * A global function (verified once, pointer arguments possibly NULL to the
 * verifier), so that its key takes no room in the frames of the calls that
 * decide a packet: a call chain has 512 bytes of stack in all. */
__noinline int pal_frag_remember(const struct pal_pkt *pkt, __u32 endpoint_id, __u8 dir,
				 __u8 allowed, __u8 reason)
{
	struct pal_frag_key key;
	struct pal_frag_value value = {
		.allowed = allowed,
		.reason = reason,
	};

	if (!pkt)
		return 0;
	value.sport_be = pkt->tuple.sport_be;
	value.dport_be = pkt->tuple.dport_be;
	pal_frag_key_of(pkt, endpoint_id, dir, &key);
	bpf_map_update_elem(&PAL_MAP_FRAGS, &key, &value, BPF_ANY);
	return 0;
}

/* The first fragment's record for a later fragment, or NULL if unseen. */
static __always_inline const struct pal_frag_value *
pal_frag_lookup(const struct pal_pkt *pkt, __u32 endpoint_id, __u8 dir)
{
	struct pal_frag_key key;

	pal_frag_key_of(pkt, endpoint_id, dir, &key);
	return bpf_map_lookup_elem(&PAL_MAP_FRAGS, &key);
}

#endif /* PAL_FRAG_H */
