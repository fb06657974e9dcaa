/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by every layer's BPF programs. */
#ifndef __COMMON_BPF_H
#define __COMMON_BPF_H

#include "ckb_libbpf.h"

/* Bounded log2 for u64, branch-light (as in libbpf-tools' bits.bpf.h). */
static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32(v);
}

/*
 * Log-linear slot of a latency in ns; layout documented in ckb_libbpf.h.
 * Computed in 64 bits throughout: 32-bit intermediates make clang emit
 * zero-extensions on a copy, and the verifier then loses the clamp below.
 */
static __always_inline __u64 lat_slot(__u64 ns)
{
	__u64 p, slot;

	if (ns < LAT_SUBS)
		return ns;
	p = log2_u64(ns);
	slot = (p - LAT_SUB_BITS + 1) * LAT_SUBS +
	       ((ns >> (p - LAT_SUB_BITS)) & (LAT_SUBS - 1));
	if (slot > LAT_SLOTS - 1)
		slot = LAT_SLOTS - 1;
	return slot;
}

/* Count a lost observation; `drops` is a per-CPU array every layer defines. */
#define count_drop(map, reason)                                       \
	({                                                             \
		__u32 __k = (reason);                                  \
		__u64 *__v = bpf_map_lookup_elem(&(map), &__k);        \
		if (__v)                                               \
			(*__v)++;                                      \
	})

#endif /* __COMMON_BPF_H */
