// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * RocksDB C API tracing: one generic entry program and one generic return
 * program, attached to every traced function with a cookie (struct rdb_spec)
 * that tells them which arguments carry sizes and what the return value is.
 * Everything is aggregated here, per CPU; only operations over the --slow
 * threshold reach userspace one by one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "epoch.bpf.h"

#define MAX_HANDLES 65536
#define MAX_KEYS 4096

/* Load-time knobs (set through the skeleton's rodata before load). */
const volatile __u32 targ_tgid = 0;	/* 0 = every process of the file */
const volatile bool slow_enabled = false;
const volatile __u64 slow_ns = 0;
/* Benchmarks only: attach empty programs (the kernel's floor), see below. */
const volatile bool empty_programs = false;

struct rdb_start {
	__u64 ts;
	__u64 cookie;
	__u64 db;
	__u64 bytes;	/* known at entry (key + value lengths) */
	__u64 vptr;	/* size_t *vallen, read at return */
	__u64 id;	/* pid_tgid: the return side need not ask again */
};

/*
 * The entry of the call in flight, per thread. Task storage rather than a
 * hash keyed by pid_tgid: after a thread's first call it is a cached
 * pointer lookup with no bucket lock, no element allocation and no delete
 * per call (update + delete were ~40 % of the programs' run time), and the
 * kernel frees it when the thread exits. A finished call is marked by
 * ts = 0 instead of being deleted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rdb_start);
} starts SEC(".maps");

/* iterator / transaction handle -> the db handle it was created from */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_HANDLES);
	__type(key, __u64);
	__type(value, __u64);
} handles SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_KEYS);
	__type(key, struct rdb_key);
	__type(value, struct rdb_stats);
} stats SEC(".maps");

/*
 * Slow operations only (none below the threshold). 1 MiB holds ~14 K events
 * (72 bytes with the header). The drain writes events in batches; measured
 * with --threshold 0: 0 lost at ~56 K events/s, ~2 % lost at ~77 K/s (the
 * printer, not the ring, is then the limit; 4 MiB lost as much). The ring
 * is mapped twice into the tool, so each MiB here is 2 MiB of its RSS.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 * 1024 * 1024);
} events SEC(".maps");

static struct rdb_stats zero_stats;

static __always_inline __u64 read_arg(struct pt_regs *ctx, __u32 n)
{
	switch (n) {
	case 1: return PT_REGS_PARM1(ctx);
	case 2: return PT_REGS_PARM2(ctx);
	case 3: return PT_REGS_PARM3(ctx);
	case 4: return PT_REGS_PARM4(ctx);
	case 5: return PT_REGS_PARM5(ctx);
#if defined(__TARGET_ARCH_x86)
	case 6: return PT_REGS_PARM6(ctx);
	case 7:
	case 8: {
		/* At function entry [rsp] is the return address, then args 7, 8. */
		__u64 v = 0;

		bpf_probe_read_user(&v, sizeof(v),
				    (void *)(PT_REGS_SP(ctx) + 8 * (n - 6)));
		return v;
	}
#elif defined(__TARGET_ARCH_arm64)
	case 6: return PT_REGS_PARM6(ctx);
	case 7: return BPF_CORE_READ((struct user_pt_regs *)ctx, regs[6]);
	case 8: return BPF_CORE_READ((struct user_pt_regs *)ctx, regs[7]);
#endif
	default: return 0;
	}
}

static __always_inline int enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	union rdb_cookie c;
	struct rdb_start *s;
	__u64 *db, bytes = 0;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;

	s = bpf_task_storage_get(&starts, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		count_drop(drops, DROP_STARTS_FULL);
		return 0;
	}
	c.raw = bpf_get_attach_cookie(ctx);
	s->id = id;
	s->cookie = c.raw;
	s->db = PT_REGS_PARM1(ctx);
	if (c.spec.arg1 == RDB_ARG1_HANDLE) {
		db = bpf_map_lookup_elem(&handles, &s->db);
		s->db = db ? *db : 0;
	}
	if (c.spec.klen_arg)
		bytes += read_arg(ctx, c.spec.klen_arg);
	if (c.spec.vlen_arg)
		bytes += read_arg(ctx, c.spec.vlen_arg);
	s->bytes = bytes;
	s->vptr = c.spec.vptr_arg ? read_arg(ctx, c.spec.vptr_arg) : 0;
	/* Last, so that the time spent above is not charged to the call. */
	s->ts = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int leave(struct pt_regs *ctx)
{
	struct rdb_start *s;
	struct rdb_stats *st;
	struct rdb_key key;
	union rdb_cookie c;
	__u64 id, lat, bytes, ret, v;
	bool miss = false;

	s = bpf_task_storage_get(&starts, bpf_get_current_task_btf(), 0, 0);
	if (!s || !s->ts)
		return 0;
	lat = bpf_ktime_get_ns() - s->ts;
	s->ts = 0;
	id = s->id;
	c.raw = s->cookie;
	bytes = s->bytes;
	key.db = s->db;
	ret = PT_REGS_RC(ctx);

	switch (c.spec.ret) {
	case RDB_RET_PINNABLE:
		/* rocksdb_pinnableslice_t wraps PinnableSlice: Slice {data_, size_} first. */
		if (!ret) {
			miss = true;
		} else {
			v = 0;
			bpf_probe_read_user(&v, sizeof(v), (void *)(ret + 8));
			bytes += v;
		}
		break;
	case RDB_RET_VLEN_PTR:
		if (!ret) {
			miss = true;
		} else if (s->vptr) {
			v = 0;
			bpf_probe_read_user(&v, sizeof(v), (void *)s->vptr);
			bytes += v;
		}
		break;
	case RDB_RET_HANDLE:
		if (ret)
			bpf_map_update_elem(&handles, &ret, &key.db, BPF_ANY);
		break;
	}

	key.tgid = id >> 32;
	key.func = c.spec.func;
	st = bpf_map_lookup_elem(&stats, &key);
	if (!st) {
		bpf_map_update_elem(&stats, &key, &zero_stats, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats, &key);
		if (!st) {
			count_drop(drops, DROP_STATS_FULL);
			return 0;
		}
	}
	st->count++;
	st->total_ns += lat;
	st->bytes += bytes;
	st->misses += miss;
	st->hist[lat_slot(lat)]++;
	record_max(st, lat);

	if (slow_enabled && lat >= slow_ns) {
		struct rdb_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			count_drop(drops, DROP_RINGBUF);
			return 0;
		}
		e->ts_ns = bpf_ktime_get_ns();
		e->lat_ns = lat;
		e->bytes = bytes;
		e->db = key.db;
		e->tgid = key.tgid;
		e->tid = (__u32)id;
		e->op = c.spec.op;
		e->func = c.spec.func;
		e->miss = miss;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

/*
 * Two attach flavours of the same programs, chosen at run time: one
 * uprobe_multi link per file and direction (Linux 6.6+; detaching it waits
 * for one RCU grace period instead of one per function, ~0.1 s each), or
 * one classic perf-event uprobe per function on older kernels.
 */
SEC("uprobe.multi")
int rdb_enter_m(struct pt_regs *ctx) { return enter(ctx); }

SEC("uretprobe.multi")
int rdb_exit_m(struct pt_regs *ctx) { return leave(ctx); }

SEC("uprobe")
int rdb_enter(struct pt_regs *ctx) { return enter(ctx); }

SEC("uretprobe")
int rdb_exit(struct pt_regs *ctx) { return leave(ctx); }

/*
 * The floor for `make bench`: the same links, cookies and functions with
 * programs that do nothing, so (ours - bare) / (empty - bare) isolates what
 * our programs add to what the kernel charges for a uprobe + uretprobe.
 */
SEC("uprobe.multi")
int rdb_empty_enter_m(struct pt_regs *ctx) { return 0; }

SEC("uretprobe.multi")
int rdb_empty_exit_m(struct pt_regs *ctx) { return 0; }

SEC("uprobe")
int rdb_empty_enter(struct pt_regs *ctx) { return 0; }

SEC("uretprobe")
int rdb_empty_exit(struct pt_regs *ctx) { return 0; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
