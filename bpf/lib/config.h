/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Access to pal_config. A missing entry reads as all zero, and a zero
 * timeout means the default, so the datapath works before userspace has
 * written its configuration.
 */
#ifndef PAL_CONFIG_H
#define PAL_CONFIG_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "palisade_abi.h"
#include "maps.h"

#define PAL_CT_DEFAULT_SYN_S 60
#define PAL_CT_DEFAULT_ESTABLISHED_S 21600
#define PAL_CT_DEFAULT_CLOSING_S 10
#define PAL_CT_DEFAULT_UDP_S 60
#define PAL_CT_DEFAULT_OTHER_S 60

/* The configuration entry, or NULL when userspace has not written it. */
static __always_inline const struct pal_config *pal_config_get(void)
{
	__u32 index = 0;

	return bpf_map_lookup_elem(&PAL_MAP_CONFIG, &index);
}

static __always_inline __u32 pal_config_revision(const struct pal_config *cfg)
{
	return cfg ? cfg->revision : 0;
}

static __always_inline __u32 pal_config_flags(const struct pal_config *cfg)
{
	return cfg ? cfg->flags : 0;
}

/* A timeout in seconds, or fallback_s when it is not configured. */
static __always_inline __u32 pal_config_timeout_s(__u32 configured_s, __u32 fallback_s)
{
	return configured_s ? configured_s : fallback_s;
}

#endif /* PAL_CONFIG_H */
