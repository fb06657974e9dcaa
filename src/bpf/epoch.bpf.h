/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the aggregating layers (rocksdb, background, syscall) share: their
 * drop counters and the exact per-interval maximum. Userspace reads both
 * with probe::{read_drops, bump_epoch, interval_max}.
 */
#ifndef __EPOCH_BPF_H
#define __EPOCH_BPF_H

#include "common.bpf.h"

/* Observations the kernel side could not record, per enum drop_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* ctl[0]: the interval epoch, bumped by userspace at every report. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ctl SEC(".maps");

/*
 * Exact maximum per interval without userspace ever writing the stats: a
 * stats value `st` (any struct with max_ns[2] and max_epoch[2]) keeps two
 * slots, the one of the current epoch's parity is written; a slot left from
 * an older epoch is restarted. After userspace bumps the epoch, the closed
 * interval's slot no longer moves and is read.
 */
#define record_max(st, lat)                                             \
	({                                                              \
		__u32 __zero = 0;                                       \
		__u64 *__epp = bpf_map_lookup_elem(&ctl, &__zero);      \
		__u64 __ep = __epp ? *__epp : 0;                        \
		__u32 __i = __ep & 1;                                   \
		__u64 __lat = (lat);                                    \
		if ((st)->max_epoch[__i] != __ep) {                     \
			(st)->max_epoch[__i] = __ep;                    \
			(st)->max_ns[__i] = __lat;                      \
		} else if (__lat > (st)->max_ns[__i]) {                 \
			(st)->max_ns[__i] = __lat;                      \
		}                                                       \
	})

#endif /* __EPOCH_BPF_H */
