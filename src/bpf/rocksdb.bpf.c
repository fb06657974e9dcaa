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

/* Load-time knobs (set through the skeleton's rodata before load). */
const volatile __u32 targ_tgid = 0;	/* 0 = every process of the file */
const volatile bool slow_enabled = false;
const volatile __u64 slow_ns = 0;
/* Benchmarks only: attach empty programs (the kernel's floor), see below. */
const volatile bool empty_programs = false;

/* (process, db, cf) triples `stats` has rows for (<= RDB_MAX_KEYS; set at load). */
const volatile __u32 max_keys = RDB_MAX_KEYS;

/* Rows per key: the planned functions' cookie slots (set at load). */
const volatile __u32 nslots = RDB_FUNC_SLOTS;

/*
 * Object layouts learnt from the target's code (src/node/layout.rs); 0 = not
 * learnt. dbiter_off: the DBIter * inside an ArenaWrappedDBIter (a plain
 * iterator's rep). wb_size_off: a write batch's data size.
 */
const volatile __u32 dbiter_off = 0;
const volatile __u32 wb_size_off = 0;
/* C++ iterator stand-ins are attached (userspace's plan). */
const volatile bool stand_ins = false;
/*
 * Read each GET's value size at return (--value-sizes). Off by default: it
 * is one bpf_probe_read_user a GET, measured at ~110 ns on a host with
 * speculative-return mitigations, a quarter of what the programs cost on a
 * real node's import (BENCHMARKS.md §4). Misses are counted either way.
 */
const volatile bool value_sizes = false;

/* Slots of `threads` - 1 (a power of two; set by userspace with its size). */
const volatile __u32 thread_mask = 0;

/* A slot whose owner has had a call in flight this long is taken over. */
#define STALE_NS (10ULL * 1000 * 1000 * 1000)

/* A (db, cf) whose `stats` rows start at row - 1 (0 = empty entry). */
struct rdb_row_cache {
	__u64 db;
	__u64 cf;
	__u32 row;
	__u32 pad;
};

/*
 * One per thread: the call in flight, and what the thread looked up last:
 * the rows of the (db, cf) pairs it used recently (direct-mapped: a CKB
 * thread importing a block cycles through ~10 of the chain's 19 families,
 * and each entry saves a hash lookup in `keys`), and its last transaction
 * or iterator handle, which it nearly always reuses on its next call.
 */
struct rdb_thread {
	__u64 ts;	/* entry time of the call in flight; 0 = none */
	__u64 cookie;
	__u64 db;
	__u64 cf;
	__u64 bytes;	/* known at entry (key + value lengths) */
	__u64 vptr;	/* size_t *vallen, read at return */
	__u64 id;	/* owner of the slot (pid_tgid: a tid reused by another
			 * process must not inherit the caches) */
	__u64 handle;	/* last txn/iterator handle and its (db, cf) */
	__u64 handle_db;
	__u64 handle_cf;
	__u64 done;	/* return time of the owner's last call */
	struct rdb_row_cache rows[RDB_ROW_CACHE];
};

/* A slot whose owner made no call for this long may be taken over (its
 * thread is likely gone, its tid reused or colliding). */
#define IDLE_NS (1000ULL * 1000 * 1000)

/*
 * The per-thread slots: an array indexed by tid & thread_mask. An array
 * lookup is inlined by the verifier (no helper call), which made both
 * programs cheaper than task storage or a hash keyed by pid_tgid. Userspace
 * sizes it to pid_max (rounded up to a power of two, so every tid has a
 * slot of its own) up to 64 K slots; beyond that two threads can share a
 * slot, and a call that finds it taken by another thread's call in flight
 * is kept in `spilled` instead (untimed, DROP_STARTS_FULL, only if that is
 * full too).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);	/* set at load */
	__type(key, __u32);
	__type(value, struct rdb_thread);
} threads SEC(".maps");

/*
 * Threads whose slot of `threads` another thread holds with a call in
 * flight (tids that collide in the table: above its size, 64 K slots at
 * most, with pid_max up to 4 M) keep their call here, by pid_tgid, until it
 * returns: a hash lookup on that path only, and no call is left untimed
 * while it has room.
 */
#define MAX_SPILLED 1024	/* calls in flight at once in colliding threads */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SPILLED);
	__type(key, __u64);
	__type(value, struct rdb_thread);
} spilled SEC(".maps");

static const struct rdb_thread no_thread;

/* The in-flight state of thread `id` if it is spilled, else NULL. */
static __always_inline struct rdb_thread *spilled_call(__u64 id)
{
	struct rdb_thread *s = bpf_map_lookup_elem(&spilled, &id);

	return s && s->ts ? s : NULL;
}

/*
 * Fibonacci hashing: the top `bits` bits of the product mix every bit of x
 * (heap pointers differ in their middle bits).
 */
static __always_inline __u32 fib_hash(__u64 x, int bits)
{
	return (x * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
}

/*
 * What an iterator or transaction handle was created on: a direct-mapped
 * table indexed by a hash of the handle. Registering a handle is a few
 * array stores, where an LRU hash's update cost ~350 ns here (its lock and
 * list) on every ITER_CREATE and TXN_BEGIN. A handle whose entry another
 * handle overwrote (two live handles hashing alike: 1 in 64 K per pair) is
 * no longer known: its calls are counted without their database (db@0x0,
 * as for an iterator created before the probes), never on another
 * handle's (db, cf). The handle field is cleared while db and cf are
 * written and checked again after they are read, so a lookup racing a
 * registration on another CPU misses instead of mixing two entries
 * (program order of the stores and loads is kept by barrier(); x86-64
 * keeps it between CPUs).
 */
#define HANDLE_BITS 16
struct rdb_origin {
	__u64 handle;	/* 0 = empty or being written */
	__u64 db;
	__u64 cf;	/* create_iterator_cf's family; 0 = none */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << HANDLE_BITS);
	__type(key, __u32);
	__type(value, struct rdb_origin);
} handles SEC(".maps");

#define barrier() asm volatile("" ::: "memory")

static __always_inline struct rdb_origin *handle_entry(__u64 handle)
{
	__u32 k = fib_hash(handle, HANDLE_BITS);

	return bpf_map_lookup_elem(&handles, &k);
}

static __always_inline void handle_put(__u64 handle, __u64 db, __u64 cf)
{
	struct rdb_origin *o = handle_entry(handle);

	if (!o)
		return;
	*(volatile __u64 *)&o->handle = 0;
	barrier();
	o->db = db;
	o->cf = cf;
	barrier();
	*(volatile __u64 *)&o->handle = handle;
}

/* The (db, cf) handle was created on into *db, *cf; left as they are if
 * unknown. */
static __always_inline void handle_get(__u64 handle, __u64 *db, __u64 *cf)
{
	struct rdb_origin *o = handle_entry(handle);
	__u64 d, c;

	if (!o || *(volatile __u64 *)&o->handle != handle)
		return;
	barrier();
	d = o->db;
	c = o->cf;
	barrier();
	if (*(volatile __u64 *)&o->handle != handle)
		return;
	*db = d;
	*cf = c;
}

/* (process, db, cf) -> its index i: rows i * nslots .. of `stats` */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RDB_MAX_KEYS);
	__type(key, struct rdb_key);
	__type(value, __u32);
} keys SEC(".maps");

/* index -> its (process, db, cf): who holds each index of `keys` */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RDB_MAX_KEYS);
	__type(key, __u32);
	__type(value, struct rdb_key);
} key_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);	/* max_keys * nslots, set at load */
	__type(key, __u32);
	__type(value, struct rdb_stats);
} stats SEC(".maps");

/*
 * The same rows once for all CPUs, updated with atomic adds: used instead of
 * `stats` where a copy per CPU would take more kernel memory than userspace
 * allows (a 96-CPU host), so the maps stay bounded whatever the CPU count.
 * Userspace sizes the one not used to 1 entry.
 */
const volatile bool shared_stats = false;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);	/* max_keys * nslots when shared_stats */
	__type(key, __u32);
	__type(value, struct rdb_stats);
} stats_shared SEC(".maps");

/*
 * Slow operations only (none below the threshold). 1 MiB holds ~13 K events
 * (80 bytes with the header). The drain writes events in batches; measured
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
 * The (db, cf) a transaction or iterator handle was created on (0 if
 * unknown) into t->db, t->cf. The thread's cache can only be stale if a
 * handle it used is freed and another thread creates one at the same
 * address on another (db, cf) before this thread uses it: the call is then
 * attributed to the old one (still counted).
 */
static __always_inline void handle_origin(struct rdb_thread *t, __u64 handle)
{
	if (t->handle != handle) {
		__u64 db = 0, cf = 0;

		handle_get(handle, &db, &cf);
		t->handle = handle;
		t->handle_db = db;
		t->handle_cf = cf;
	}
	t->db = t->handle_db;
	t->cf = t->handle_cf;
}

/*
 * The C++ object behind a new iterator handle, for the stand-ins: the
 * handle is a rocksdb_iterator_t { Iterator *rep; }; a plain iterator's rep
 * is an ArenaWrappedDBIter, which forwards to the DBIter at dbiter_off; a
 * transaction's is the BaseDeltaIterator itself. Registered with the
 * handle's origin, only when stand-ins are attached (and a DBIter only
 * when its offset was learnt: userspace plans no DBIter stand-in otherwise).
 */
static __always_inline void remember_rep(__u64 handle, __u64 db, __u64 cf, bool plain)
{
	__u64 rep = 0, obj = 0;

	if (!stand_ins || (plain && !dbiter_off))
		return;
	bpf_probe_read_user(&rep, sizeof(rep), (void *)handle);
	if (!rep)
		return;
	if (plain)
		bpf_probe_read_user(&obj, sizeof(obj), (void *)(rep + dbiter_off));
	else
		obj = rep;
	if (obj)
		handle_put(obj, db, cf);
}

/*
 * pid_tgid and the attach cookie of this run. uprobe_multi programs read
 * both through the current task: one helper call instead of two (~13 ns
 * less a program run on a real node's import), from where
 * bpf_get_attach_cookie reads the cookie (the run context's bpf_uprobe).
 * CO-RE: a kernel whose BTF lacks those fields takes the helpers.
 */
static __always_inline __u64 who(struct pt_regs *ctx, bool multi, __u64 *cookie)
{
	if (multi && bpf_core_field_exists(struct bpf_uprobe_multi_run_ctx, uprobe) &&
	    bpf_core_field_exists(struct bpf_uprobe, cookie)) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct bpf_uprobe_multi_run_ctx *rc =
			bpf_core_cast(task->bpf_ctx, struct bpf_uprobe_multi_run_ctx);

		*cookie = rc->uprobe->cookie;
		return (__u64)task->tgid << 32 | (__u32)task->pid;
	}
	*cookie = bpf_get_attach_cookie(ctx);
	return bpf_get_current_pid_tgid();
}

static __always_inline int enter(struct pt_regs *ctx, bool multi)
{
	__u64 raw_cookie;
	__u64 id = who(ctx, multi, &raw_cookie);
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
		 * thread that is gone. A call of this thread in flight in
		 * `spilled` (a stand-in nested in it) stays there. */
		struct rdb_thread *s = spilled_call(id);
		__u64 owner = t->id, now = bpf_ktime_get_ns();
		/* A live owner's slot is never taken: its fast path above
		 * writes without atomics. Free (never used) or idle for a
		 * second: claimed by compare-and-swap, so of two threads
		 * meeting there at once one wins and the other spills. */
		bool idle = !owner || (now - t->done > IDLE_NS &&
				       (!t->ts || now - t->ts > STALE_NS));

		if (s) {
			t = s;
		} else if (idle && __sync_val_compare_and_swap(&t->id, owner, id) == owner) {
			t->ts = 0;
			t->handle = 0;
#pragma unroll
			for (int i = 0; i < RDB_ROW_CACHE; i++)
				t->rows[i].row = 0;
		} else {
			/* The owner is live: this call goes to `spilled`. */
			bpf_map_update_elem(&spilled, &id, &no_thread, BPF_ANY);
			t = bpf_map_lookup_elem(&spilled, &id);
			if (!t) {
				count_drop(drops, DROP_STARTS_FULL);
				return 0;
			}
			t->id = id;
		}
	}
	c.raw = raw_cookie;
	if (c.spec.arg1 == RDB_ARG1_CXX_ITER) {
		/*
		 * A C++ iterator method standing in for a C function. A
		 * transaction's BaseDeltaIterator calls its own DBIter: that
		 * inner call starts while the outer one is in flight on this
		 * thread, and is not counted (nothing is written: the slot
		 * holds the outer call; its return is told apart by its
		 * cookie in leave). The (db, cf) is the one the iterator was
		 * created on (remember_rep), unknown for iterators created
		 * before the probes.
		 */
		if (t->ts && bpf_ktime_get_ns() - t->ts < STALE_NS) {
			count_drop(drops, DROP_NESTED);
			return 0;
		}
		handle_origin(t, PT_REGS_PARM1(ctx));
	} else if (c.spec.arg1 == RDB_ARG1_HANDLE) {
		handle_origin(t, PT_REGS_PARM1(ctx));
	} else {
		t->db = PT_REGS_PARM1(ctx);
		t->cf = 0;
	}
	t->cookie = c.raw;
	/* An explicit family wins over the handle's (a transaction's
	 * *_cf calls name theirs). */
	if (c.spec.cf_arg)
		t->cf = read_arg(ctx, c.spec.cf_arg);
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
 * The index of a new (tgid, db, cf), or RDB_MAX_KEYS if the table is full.
 * Claims the lowest free index in `key_owners` (an insert that fails when
 * taken: no atomics, which older clang/-mcpu cannot return); two threads
 * racing on the same new triple both claim one, the loser gives its back.
 * A subprogram: its unrolled loop (thousands of instructions, run once per
 * triple) stays out of the return program's hot path.
 */
static __noinline __u32 claim_key(struct rdb_key *k)
{
	__u32 n, i = RDB_MAX_KEYS;

	/* Unrolled: a loop over an index passed by address defeats the
	 * verifier's bounded-loop check. */
#pragma unroll
	for (n = 0; n < RDB_MAX_KEYS; n++) {
		__u32 claim = n;

		if (n >= max_keys)
			break;
		if (!bpf_map_update_elem(&key_owners, &claim, k, BPF_NOEXIST)) {
			i = n;
			break;
		}
	}
	if (i >= max_keys)
		return RDB_MAX_KEYS;
	if (bpf_map_update_elem(&keys, k, &i, BPF_NOEXIST))
		bpf_map_delete_elem(&key_owners, &i);
	return i;
}

/*
 * Row base + 1 of (tgid, db, cf) in `stats`, 0 if the table is full. The
 * thread's cache is direct-mapped on a hash of (db, cf); on a miss `keys`
 * is looked up, and a new triple gets an index (claim_key).
 */
static __always_inline __u32 row_base(struct rdb_thread *t, __u32 tgid, __u64 db, __u64 cf)
{
	struct rdb_key k = { .db = db, .cf = cf, .tgid = tgid };
	struct rdb_row_cache *e;
	__u32 *v, h;

	h = fib_hash(db ^ (cf << 1), __builtin_ctz(RDB_ROW_CACHE));
	e = &t->rows[h & (RDB_ROW_CACHE - 1)];
	if (e->row && e->db == db && e->cf == cf)
		return e->row;
	v = bpf_map_lookup_elem(&keys, &k);
	if (!v) {
		if (claim_key(&k) >= RDB_MAX_KEYS)
			return 0;
		v = bpf_map_lookup_elem(&keys, &k);
		if (!v)
			return 0;
	}
	e->db = db;
	e->cf = cf;
	e->row = *v * nslots + 1;
	return e->row;
}

static __always_inline int leave(struct pt_regs *ctx, bool multi)
{
	__u64 raw_cookie;
	struct rdb_thread *t;
	struct rdb_stats *st;
	union rdb_cookie c;
	__u64 id, lat, bytes, ret, v, db, cf;
	__u32 tid, slot, row;
	bool miss = false, spill = false;

	id = who(ctx, multi, &raw_cookie);
	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	tid = id;
	slot = tid & thread_mask;
	t = bpf_map_lookup_elem(&threads, &slot);
	if (!t)
		return 0;
	if (t->id != id || !t->ts) {
		/* Not in this thread's slot: maybe spilled (see enter). */
		t = spilled_call(id);
		if (!t)
			return 0;
		spill = true;
	}
	/* The return of the call in flight, not of an uncounted one nested in
	 * it (a stand-in's inner DBIter call; see enter). */
	if (raw_cookie != t->cookie)
		return 0;
	v = bpf_ktime_get_ns();
	lat = v - t->ts;
	t->ts = 0;
	t->done = v;
	c.raw = t->cookie;
	bytes = t->bytes;
	db = t->db;
	cf = t->cf;
	ret = PT_REGS_RC(ctx);

	switch (c.spec.ret) {
	case RDB_RET_PINNABLE:
		/* rocksdb_pinnableslice_t wraps PinnableSlice: Slice {data_, size_} first. */
		if (!ret) {
			miss = true;
		} else if (value_sizes) {
			v = 0;
			bpf_probe_read_user(&v, sizeof(v), (void *)(ret + 8));
			bytes += v;
		}
		break;
	case RDB_RET_VLEN_PTR:
		if (!ret) {
			miss = true;
		} else if (value_sizes && t->vptr) {
			v = 0;
			bpf_probe_read_user(&v, sizeof(v), (void *)t->vptr);
			bytes += v;
		}
		break;
	case RDB_RET_HANDLE:
	case RDB_RET_ITER:
	case RDB_RET_TXN_ITER:
		if (ret) {
			handle_put(ret, db, cf);
			t->handle = ret;
			t->handle_db = db;
			t->handle_cf = cf;
			if (c.spec.ret != RDB_RET_HANDLE)
				remember_rep(ret, db, cf, c.spec.ret == RDB_RET_ITER);
		}
		break;
	case RDB_RET_BATCH:
		/* rocksdb_write(db, options, batch, errptr): the batch's data
		 * size, unchanged by the write. */
		if (wb_size_off && t->vptr) {
			v = 0;
			bpf_probe_read_user(&v, sizeof(v), (void *)(t->vptr + wb_size_off));
			bytes += v;
		}
		break;
	}

	row = row_base(t, id >> 32, db, cf);
	/* A spilled call is over: give its entry back (t is not used below). */
	if (spill)
		bpf_map_delete_elem(&spilled, &id);
	if (!row) {
		count_drop(drops, DROP_STATS_FULL);
		return 0;
	}
	row += c.spec.slot - 1;
	if (shared_stats) {
		st = bpf_map_lookup_elem(&stats_shared, &row);
		if (!st)
			return 0;
		/* Atomic adds (their results unused: plain XADD, which every
		 * clang -mcpu emits). The maximum is not atomic: two CPUs
		 * raising it at once can keep the smaller (the counts, sums
		 * and histogram stay exact). */
		__sync_fetch_and_add(&st->count, 1);
		__sync_fetch_and_add(&st->total_ns, lat);
		if (bytes)
			__sync_fetch_and_add(&st->bytes, bytes);
		if (miss)
			__sync_fetch_and_add(&st->misses, 1);
		__sync_fetch_and_add(&st->hist[lat_slot(lat)], 1);
	} else {
		st = bpf_map_lookup_elem(&stats, &row);
		if (!st)
			return 0;
		st->count++;
		st->total_ns += lat;
		st->bytes += bytes;
		st->misses += miss;
		st->hist[lat_slot(lat)]++;
	}
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
		e->cf = cf;
		e->tgid = id >> 32;
		e->tid = (__u32)id;
		e->pad0 = 0;
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
int rdb_enter_m(struct pt_regs *ctx) { return enter(ctx, true); }

SEC("uretprobe.multi")
int rdb_exit_m(struct pt_regs *ctx) { return leave(ctx, true); }

SEC("uprobe")
int rdb_enter(struct pt_regs *ctx) { return enter(ctx, false); }

SEC("uretprobe")
int rdb_exit(struct pt_regs *ctx) { return leave(ctx, false); }

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
