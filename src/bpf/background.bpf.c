// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * RocksDB background work, traced on its C++ internals: compaction jobs,
 * flush jobs, write stalls (DBImpl::DelayWrite) and the WriteController
 * tokens that start them. One entry and one return program serve every
 * function; the BPF cookie says which enum bg_kind it is. These functions
 * run a few times a second at most, so even a single-stepped first
 * instruction (~20 µs a hit) costs nothing measurable, and a ring-buffer
 * record per finished call is affordable.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "epoch.bpf.h"

#define MAX_RUNNING 4096

/* Load-time knobs (set through the skeleton's rodata before load). */
const volatile __u32 targ_tgid = 0;	/* 0 = every process of the file */
const volatile bool events_enabled = false;

/* Calls in progress: (thread, kind) -> entry time and `this`. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_RUNNING);
	__type(key, struct bg_start_key);
	__type(value, struct bg_start);
} running SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BG_KIND_MAX);
	__type(key, __u32);
	__type(value, struct bg_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline int enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct bg_start_key key = {};
	struct bg_start s;
	struct bg_stats *st;
	__u32 kind;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	kind = bpf_get_attach_cookie(ctx);
	if (kind >= BG_KIND_MAX)
		return 0;
	key.pid_tgid = id;
	key.kind = kind;
	s.ts_ns = bpf_ktime_get_ns();
	s.obj = PT_REGS_PARM1(ctx);	/* `this` of the member function */
	if (bpf_map_update_elem(&running, &key, &s, BPF_ANY)) {
		count_drop(drops, DROP_STARTS_FULL);
		return 0;
	}
	st = bpf_map_lookup_elem(&stats, &kind);
	if (st)
		st->started++;
	return 0;
}

static __always_inline int leave(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct bg_start_key key = {};
	struct bg_start *s;
	struct bg_stats *st;
	struct bg_event *e;
	__u64 dur, obj;

	if (kind >= BG_KIND_MAX)
		return 0;
	key.pid_tgid = id;
	key.kind = kind;
	/* No entry: the call began before we attached; it was never counted. */
	s = bpf_map_lookup_elem(&running, &key);
	if (!s)
		return 0;
	dur = bpf_ktime_get_ns() - s->ts_ns;
	obj = s->obj;
	bpf_map_delete_elem(&running, &key);

	st = bpf_map_lookup_elem(&stats, &kind);
	if (!st)
		return 0;
	st->finished++;
	st->total_ns += dur;
	st->hist[lat_slot(dur)]++;
	record_max(st, dur);

	if (!events_enabled)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(drops, DROP_RINGBUF);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->dur_ns = dur;
	e->obj = obj;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->kind = kind;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/*
 * The kind comes from the attach cookie at entry; a return probe gets the
 * same cookie, so both ends agree without storing it. Two attach flavours,
 * as in rocksdb.bpf.c: uprobe_multi links (6.6+) or one uprobe per function.
 */
SEC("uprobe.multi")
int bg_enter_m(struct pt_regs *ctx) { return enter(ctx); }

SEC("uretprobe.multi")
int bg_exit_m(struct pt_regs *ctx) { return leave(ctx, bpf_get_attach_cookie(ctx)); }

SEC("uprobe")
int bg_enter(struct pt_regs *ctx) { return enter(ctx); }

SEC("uretprobe")
int bg_exit(struct pt_regs *ctx) { return leave(ctx, bpf_get_attach_cookie(ctx)); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
