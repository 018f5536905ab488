// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The benchmark baseline: a tc program that passes every packet, so the
 * datapath's own cost is the difference to it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int pal_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
