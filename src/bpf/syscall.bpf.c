// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Syscall profile of one process: raw_syscalls sys_enter/sys_exit, timed per
 * thread, aggregated per (syscall number, thread family) in a per-CPU hash.
 * Nothing reaches userspace per call; it reads the map once per interval.
 *
 * The same logic is compiled into three program pairs; userspace loads only
 * the pair the kernel supports, best first:
 *   tp_btf     (5.5+)  BTF-typed raw tracepoint, cheapest (no perf event);
 *   raw_tp     (4.17+) untyped raw tracepoint, same cost class;
 *   tracepoint         classic perf-event tracepoint, works everywhere but
 *                      pays for building the trace record (~+12 ns/syscall
 *                      more here) and needs tracefs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "epoch.bpf.h"

#define MAX_THREADS 16384
#define MAX_KEYS 1024	/* userspace may resize before load */

/* exit and exit_group never return: they are not timed. */
#if defined(__TARGET_ARCH_arm64)
#define NR_EXIT 93
#define NR_EXIT_GROUP 94
#define NR_FUTEX 98
#else
#define NR_EXIT 60
#define NR_EXIT_GROUP 231
#define NR_FUTEX 202
#endif
#define NR_FUTEX_WAITV 449	/* same number on every architecture */

/*
 * futex(2) commands that wait (uapi/linux/futex.h): FUTEX_WAIT,
 * FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2.
 * The op carries flags (PRIVATE 128, CLOCK_REALTIME 256) above the command.
 */
#define SC_FUTEX_CMD(op) ((op) & 0x7f)
#define SC_FUTEX_WAITS(cmd) \
	((cmd) == 0 || (cmd) == 6 || (cmd) == 9 || (cmd) == 11 || (cmd) == 13)

/* Load-time knob (rodata): only this process, 0 = every process. */
const volatile __u32 targ_tgid = 0;

struct sc_start {
	__u64 ts;
	__u32 nr;
	__u32 wait;	/* a futex wait-family call (see waits) */
};

/*
 * tid -> the syscall it is in. Each thread's slot is created once and then
 * rewritten in place (ts = 0 when not in a syscall): an update or delete per
 * syscall takes the bucket lock and recycles an element, which measured
 * ~250 ns more per syscall here. Slots of dead threads are never deleted;
 * the LRU evicts them when the map fills.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_THREADS);
	__type(key, __u32);
	__type(value, struct sc_start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_KEYS);	/* 1 when shared_stats */
	__type(key, struct sc_key);
	__type(value, struct sc_stats);
} stats SEC(".maps");

/*
 * The same rows once for all CPUs, with atomic adds, where a copy per CPU
 * would take more kernel memory than userspace allows (big hosts); as in
 * rocksdb.bpf.c. Userspace sizes the one not used to 1 entry.
 */
const volatile bool shared_stats = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);	/* MAX_KEYS when shared_stats */
	__type(key, struct sc_key);
	__type(value, struct sc_stats);
} stats_shared SEC(".maps");

/*
 * waits[0]: futex calls of the wait family (FUTEX_WAIT and kin, and
 * futex_waitv) that returned, counted at exit like `stats`. The anomaly
 * detector's futex contention rule wants the share of futex calls that
 * wait; the (nr, family) key cannot tell a wait from a wake.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} waits SEC(".maps");

static struct sc_stats zero_stats;

static __always_inline bool is_target(void)
{
	return !targ_tgid || (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

/* `op`: futex(2)'s second argument when nr is futex, else unused. */
static __always_inline int on_enter(long nr, __u64 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sc_start *sp, s = {};
	__u32 tid = id;
	__u32 wait;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	if (nr < 0 || nr == NR_EXIT || nr == NR_EXIT_GROUP)
		return 0;
	wait = (nr == NR_FUTEX && SC_FUTEX_WAITS(SC_FUTEX_CMD(op))) ||
	       nr == NR_FUTEX_WAITV;
	sp = bpf_map_lookup_elem(&starts, &tid);
	if (sp) {
		sp->nr = nr;
		sp->wait = wait;
		sp->ts = bpf_ktime_get_ns();
		return 0;
	}
	s.ts = bpf_ktime_get_ns();
	s.nr = nr;
	s.wait = wait;
	if (bpf_map_update_elem(&starts, &tid, &s, BPF_ANY))
		count_drop(drops, DROP_STARTS_FULL);
	return 0;
}

/*
 * "rocksdb:low12" -> "rocksdb:low": cut the trailing run of digits. Written
 * so that every path through the unrolled loops is told apart only by
 * `cut` (at most 17 values): a flag plus conditional stores per character
 * made the verifier walk 2^16 paths (2 s per load).
 */
static __always_inline void cut_digits(char *c)
{
	__u32 cut = 0;
	int i;

#pragma unroll
	for (i = 0; i < TASK_COMM_LEN; i++) {
		char ch = c[i];

		if (ch == 0)
			break;
		if (ch < '0' || ch > '9')
			cut = i + 1;
	}
#pragma unroll
	for (i = 0; i < TASK_COMM_LEN; i++) {
		if (i >= cut)
			c[i] = 0;
	}
}

/* `key`'s row of aggregation map `map` (stats or stats_shared), created
 * zeroed on first use; NULL when the map is full. */
static __always_inline struct sc_stats *stats_row(void *map, struct sc_key *key)
{
	struct sc_stats *st = bpf_map_lookup_elem(map, key);

	if (st)
		return st;
	bpf_map_update_elem(map, key, &zero_stats, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

static __always_inline int on_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sc_key key = {};
	struct sc_stats *st;
	struct sc_start *s;
	__u32 tid = id;
	__u64 lat;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	s = bpf_map_lookup_elem(&starts, &tid);
	if (!s || !s->ts)
		return 0;	/* entered before we attached */
	lat = bpf_ktime_get_ns() - s->ts;
	key.nr = s->nr;
	s->ts = 0;
	if (s->wait) {
		__u32 zero = 0;
		__u64 *w = bpf_map_lookup_elem(&waits, &zero);

		if (w)
			(*w)++;
	}

	bpf_get_current_comm(key.family, sizeof(key.family));
	cut_digits(key.family);
	st = shared_stats ? stats_row(&stats_shared, &key) : stats_row(&stats, &key);
	if (!st) {
		count_drop(drops, DROP_STATS_FULL);
		return 0;
	}
	if (shared_stats) {
		/* Counts exact; the maximum may keep the smaller of two
		 * raced at once (see rocksdb.bpf.c). */
		__sync_fetch_and_add(&st->count, 1);
		__sync_fetch_and_add(&st->total_ns, lat);
		if (ret < 0) {
			__sync_fetch_and_add(&st->errors, 1);
		} else if (ret > 0) {
			__sync_fetch_and_add(&st->positive, 1);
			__sync_fetch_and_add(&st->ret_sum, ret);
		}
		__sync_fetch_and_add(&st->hist[lat_slot(lat)], 1);
		record_max(st, lat);
		return 0;
	}
	st->count++;
	st->total_ns += lat;
	if (ret < 0) {
		st->errors++;
	} else if (ret > 0) {
		st->positive++;
		st->ret_sum += ret;
	}
	st->hist[lat_slot(lat)]++;
	record_max(st, lat);
	return 0;
}

/* futex(2)'s `op`: the second syscall argument in the user registers. */
static __always_inline __u64 futex_op(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(regs, regs[1]);
#else
	return BPF_CORE_READ(regs, si);
#endif
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sc_enter_btf, struct pt_regs *regs, long id)
{
	return on_enter(id, id == NR_FUTEX && is_target() ? futex_op(regs) : 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sc_exit_btf, struct pt_regs *regs, long ret)
{
	return on_exit(ret);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sc_enter_raw, struct pt_regs *regs, long id)
{
	return on_enter(id, id == NR_FUTEX && is_target() ? futex_op(regs) : 0);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sc_exit_raw, struct pt_regs *regs, long ret)
{
	return on_exit(ret);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sc_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(ctx->id, ctx->args[1]);
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sc_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
