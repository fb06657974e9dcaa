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

/* Load-time knobs (set through the skeleton's rodata before load). */
const volatile __u32 targ_tgid = 0;	/* 0 = every process of the file */
const volatile bool slow_enabled = false;
const volatile __u64 slow_ns = 0;
/* Benchmarks only: attach empty programs (the kernel's floor), see below. */
const volatile bool empty_programs = false;

/* (process, db) pairs `stats` has rows for (<= RDB_MAX_DBS; set at load). */
const volatile __u32 max_dbs = RDB_MAX_DBS;

/* Slots of `threads` - 1 (a power of two; set by userspace with its size). */
const volatile __u32 thread_mask = 0;

/* A slot whose owner has had a call in flight this long is taken over. */
#define STALE_NS (10ULL * 1000 * 1000 * 1000)

/*
 * One per thread: the call in flight, and what the thread looked up last
 * (its database's row base in `stats`, its last transaction or iterator
 * handle), which a thread nearly always reuses on its next call.
 */
struct rdb_thread {
	__u64 ts;	/* entry time of the call in flight; 0 = none */
	__u64 cookie;
	__u64 db;
	__u64 bytes;	/* known at entry (key + value lengths) */
	__u64 vptr;	/* size_t *vallen, read at return */
	__u64 id;	/* owner of the slot (pid_tgid: a tid reused by another
			 * process must not inherit the caches) */
	__u64 row_db;	/* db whose `stats` row base is row_base - 1 */
	__u32 row_base;	/* 0 = none cached */
	__u32 pad;
	__u64 handle;	/* last txn/iterator handle and its db */
	__u64 handle_db;
};

/*
 * The per-thread slots: an array indexed by tid & thread_mask. An array
 * lookup is inlined by the verifier (no helper call), which made both
 * programs cheaper than task storage or a hash keyed by pid_tgid. Userspace
 * sizes it to pid_max (rounded up to a power of two, so every tid has a
 * slot of its own) up to 64 K slots; beyond that two threads can share a
 * slot, and a call that finds it taken by another thread's call in flight
 * is counted as untimed (DROP_STARTS_FULL) instead of timed wrongly.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);	/* set at load */
	__type(key, __u32);
	__type(value, struct rdb_thread);
} threads SEC(".maps");

/* iterator / transaction handle -> the db handle it was created from */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_HANDLES);
	__type(key, __u64);
	__type(value, __u64);
} handles SEC(".maps");

/* (process, db) -> its index i: rows i * RDB_FUNC_SLOTS .. of `stats` */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RDB_MAX_DBS);
	__type(key, struct rdb_db_key);
	__type(value, __u32);
} dbs SEC(".maps");

/* index -> its (process, db): who holds each index of `dbs` */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RDB_MAX_DBS);
	__type(key, __u32);
	__type(value, struct rdb_db_key);
} db_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RDB_MAX_DBS * RDB_FUNC_SLOTS);
	__type(key, __u32);
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

/*
 * The db a transaction or iterator handle belongs to (0 if unknown). The
 * thread's cache can only be stale if a handle it used is freed and another
 * thread creates one at the same address on another db before this thread
 * uses it: the call is then attributed to the old db (still counted).
 */
static __always_inline __u64 handle_db(struct rdb_thread *t, __u64 handle)
{
	__u64 *db;

	if (t->handle == handle)
		return t->handle_db;
	db = bpf_map_lookup_elem(&handles, &handle);
	t->handle = handle;
	t->handle_db = db ? *db : 0;
	return t->handle_db;
}

static __always_inline int enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, slot = tid & thread_mask;
	union rdb_cookie c;
	struct rdb_thread *t;
	__u64 bytes = 0;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;

	t = bpf_map_lookup_elem(&threads, &slot);
	if (!t)
		return 0;
	if (t->id != id) {
		/* Another thread's slot: tids beyond the table's size, or a
		 * thread that is gone. */
		if (t->ts && bpf_ktime_get_ns() - t->ts < STALE_NS) {
			count_drop(drops, DROP_STARTS_FULL);
			return 0;
		}
		t->id = id;
		t->row_base = 0;
		t->handle = 0;
	}
	c.raw = bpf_get_attach_cookie(ctx);
	t->cookie = c.raw;
	t->db = PT_REGS_PARM1(ctx);
	if (c.spec.arg1 == RDB_ARG1_HANDLE)
		t->db = handle_db(t, t->db);
	if (c.spec.klen_arg)
		bytes += read_arg(ctx, c.spec.klen_arg);
	if (c.spec.vlen_arg)
		bytes += read_arg(ctx, c.spec.vlen_arg);
	t->bytes = bytes;
	t->vptr = c.spec.vptr_arg ? read_arg(ctx, c.spec.vptr_arg) : 0;
	/* Last, so that the time spent above is not charged to the call. */
	t->ts = bpf_ktime_get_ns();
	return 0;
}

/*
 * Row base + 1 of (tgid, db) in `stats`, 0 if the table is full. A new pair
 * claims the lowest free index in `db_owners` (an insert that fails when
 * taken: no atomics, which older clang/-mcpu cannot return); two threads
 * racing on the same new pair both claim one, the loser gives its back.
 */
static __always_inline __u32 row_base(struct rdb_thread *t, __u32 tgid, __u64 db)
{
	struct rdb_db_key k = { .db = db, .tgid = tgid };
	__u32 *v, i = RDB_MAX_DBS, n;

	if (t->row_base && t->row_db == db)
		return t->row_base;
	v = bpf_map_lookup_elem(&dbs, &k);
	if (!v) {
		/* Unrolled: a loop over an index passed by address defeats
		 * the verifier's bounded-loop check. */
#pragma unroll
		for (n = 0; n < RDB_MAX_DBS; n++) {
			__u32 claim = n;

			if (n >= max_dbs)
				break;
			if (!bpf_map_update_elem(&db_owners, &claim, &k, BPF_NOEXIST)) {
				i = n;
				break;
			}
		}
		if (i >= max_dbs)
			return 0;
		if (bpf_map_update_elem(&dbs, &k, &i, BPF_NOEXIST))
			bpf_map_delete_elem(&db_owners, &i);
		v = bpf_map_lookup_elem(&dbs, &k);
		if (!v)
			return 0;
	}
	t->row_db = db;
	t->row_base = *v * RDB_FUNC_SLOTS + 1;
	return t->row_base;
}

static __always_inline int leave(struct pt_regs *ctx)
{
	struct rdb_thread *t;
	struct rdb_stats *st;
	union rdb_cookie c;
	__u64 id, lat, bytes, ret, v, db;
	__u32 tid, slot, row;
	bool miss = false;

	id = bpf_get_current_pid_tgid();
	tid = id;
	slot = tid & thread_mask;
	t = bpf_map_lookup_elem(&threads, &slot);
	if (!t || t->id != id || !t->ts)
		return 0;
	lat = bpf_ktime_get_ns() - t->ts;
	t->ts = 0;
	c.raw = t->cookie;
	bytes = t->bytes;
	db = t->db;
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
		} else if (t->vptr) {
			v = 0;
			bpf_probe_read_user(&v, sizeof(v), (void *)t->vptr);
			bytes += v;
		}
		break;
	case RDB_RET_HANDLE:
		if (ret) {
			bpf_map_update_elem(&handles, &ret, &db, BPF_ANY);
			t->handle = ret;
			t->handle_db = db;
		}
		break;
	}

	row = row_base(t, id >> 32, db);
	if (!row) {
		count_drop(drops, DROP_STATS_FULL);
		return 0;
	}
	row += c.spec.func % RDB_FUNC_SLOTS - 1;
	st = bpf_map_lookup_elem(&stats, &row);
	if (!st)
		return 0;
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
		e->db = db;
		e->tgid = id >> 32;
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
