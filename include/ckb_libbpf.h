/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every layout shared between the BPF programs and userspace lives here and
 * nowhere else. Userspace reads these structs through the generated skeleton
 * types (or #[repr(C)] mirrors whose size is checked by a unit test).
 */
#ifndef __CKB_LIBBPF_H
#define __CKB_LIBBPF_H

#define TASK_COMM_LEN 16

/*
 * Latency histograms are log-linear: each power of two is split into
 * LAT_SUBS sub-buckets, so a percentile interpolated inside one bucket errs
 * by at most 1/LAT_SUBS of the value instead of the ±50 % of plain log2.
 * Slot s < LAT_SUBS holds the value s exactly; slot s >= LAT_SUBS covers
 * [(LAT_SUBS + s % LAT_SUBS) << (s / LAT_SUBS - 1), +1 << (s / LAT_SUBS - 1)).
 * Values are nanoseconds; the last slot also takes everything above ~18 min.
 */
#define LAT_SUB_BITS 2
#define LAT_SUBS (1 << LAT_SUB_BITS)
#define LAT_POWERS 40
#define LAT_SLOTS (LAT_POWERS * LAT_SUBS)

/* ------------------------------------------------------------------ */
/* RocksDB layer                                                      */
/* ------------------------------------------------------------------ */

/* Operation classes, in the order userspace prints them. */
enum rdb_op {
	RDB_GET = 0,
	RDB_PUT,
	RDB_DELETE,
	RDB_WRITE,
	RDB_ITER_SEEK,
	RDB_ITER_CREATE,
	RDB_ITER_NEXT,
	RDB_TXN_BEGIN,
	RDB_TXN_COMMIT,
	RDB_OP_MAX,
};

/* What a function returns that the return probe can read. */
enum rdb_ret {
	RDB_RET_NONE = 0,
	RDB_RET_PINNABLE,	/* rocksdb_pinnableslice_t *: NULL = miss, size at +8 */
	RDB_RET_VLEN_PTR,	/* char *: NULL = miss, size in *arg[vptr_arg] */
	RDB_RET_HANDLE,		/* returns a new iterator/txn owned by the db in arg 1 */
	RDB_RET_ITER,		/* returns a plain iterator: also remembers its DBIter */
	RDB_RET_TXN_ITER,	/* returns a transaction's iterator: also remembers
				 * its BaseDeltaIterator */
	RDB_RET_BATCH,		/* bytes: the write batch in arg[vptr_arg]'s data size */
};

/* What the first argument of a function is. */
enum rdb_arg1 {
	RDB_ARG1_DB = 0,	/* rocksdb_t * or an optimistic-txn db */
	RDB_ARG1_HANDLE,	/* a txn or iterator: its (db, cf) is looked up in `handles` */
	RDB_ARG1_CXX_ITER,	/* `this` of a C++ iterator method standing in for a
				 * single-stepped rocksdb_iter_* function: counted only
				 * when an iterator created under the probes owns it */
};

/*
 * Per-function description, passed to both programs as the BPF cookie
 * (exactly 8 bytes). Argument indices are 1-based, 0 = none; arguments 7 and
 * 8 are read from the user stack on x86_64. The operation class is not in
 * it: userspace knows it from `func`.
 */
struct rdb_spec {
	__u8 func;	/* index into userspace's function table (slow events) */
	__u8 slot;	/* row of this function within a key's rows of `stats` */
	__u8 klen_arg;	/* key length argument, counted in bytes */
	__u8 vlen_arg;	/* value length argument, counted in bytes */
	__u8 vptr_arg;	/* size_t *vallen argument, read at return */
	__u8 ret;	/* enum rdb_ret */
	__u8 arg1;	/* enum rdb_arg1 */
	__u8 cf_arg;	/* rocksdb_column_family_handle_t * argument; 0 = the
			 * handle's family, or none (the default family) */
};

union rdb_cookie {
	struct rdb_spec spec;
	__u64 raw;
};

/*
 * Aggregation: `stats` is a per-CPU array of max_keys * (planned functions)
 * rows; row (i * nslots + slot) holds the function with that cookie slot on
 * the i-th (process, database handle, column family handle) seen, and
 * `keys` maps each triple to its i. An array row is reached without
 * hashing; each thread caches the rows of the few (db, cf) it used last,
 * so `keys` is looked up only on a cache miss.
 */
#define RDB_FUNC_SLOTS 64	/* >= the number of functions in userspace's table */
#define RDB_MAX_KEYS 128	/* (process, db, cf) triples at a time, at most;
				 * userspace sizes `stats` for fewer when it
				 * traces one process */
#define RDB_ROW_CACHE 8		/* per-thread (db, cf) -> row entries (power of 2) */

struct rdb_key {
	__u64 db;
	__u64 cf;	/* 0: no family argument (default family or db-wide) */
	__u32 tgid;
	__u32 pad;
};

/*
 * Per-CPU aggregate. Counters are cumulative (userspace differences them);
 * max_ns[i] holds the maximum seen while the control epoch had parity i, and
 * max_epoch[i] says which epoch that was, so userspace gets an exact
 * per-interval maximum without ever writing to this map.
 */
struct rdb_stats {
	__u64 count;
	__u64 total_ns;
	__u64 bytes;
	__u64 misses;
	__u64 max_ns[2];
	__u64 max_epoch[2];
	__u64 hist[LAT_SLOTS];
};

/* One operation over the --slow threshold, sent through the ring buffer. */
struct rdb_event {
	__u64 ts_ns;	/* CLOCK_MONOTONIC at return */
	__u64 lat_ns;
	__u64 bytes;
	__u64 db;
	__u32 tgid;
	__u32 tid;
	__u8 pad0;
	__u8 func;
	__u8 miss;
	__u8 pad[5];
	char comm[TASK_COMM_LEN];
	__u64 cf;
};

/* Reasons an observation was not fully recorded; indices of `drops`. */
enum drop_reason {
	DROP_RINGBUF = 0,	/* ring buffer full: slow event lost */
	DROP_STATS_FULL,	/* aggregation map full: call not counted */
	DROP_STARTS_FULL,	/* per-thread entry slot taken by another thread: call not timed */
	DROP_NESTED,		/* not a loss: a stand-in call nested in a counted one (a
				 * transaction iterator's inner DBIter), a probe hit
				 * that is no operation */
	DROP_MAX,		/* = DROP_REASONS in src/model/report.rs */
};

/* ------------------------------------------------------------------ */
/* Net layer (P2P TCP connections)                                    */
/* ------------------------------------------------------------------ */

/* Size of the connection table (an LRU hash keyed by struct sock *). */
#define NET_MAX_CONNS 256
#define NET_MAX_LISTENERS 64

/* How a connection began, as far as we saw it. */
enum net_dir {
	NET_DIR_UNKNOWN = 0,	/* already open when tracing began: learned at its first send/recv */
	NET_DIR_OUT,		/* the target connected */
	NET_DIR_IN,		/* a listener of the target accepted it */
};

/* Both ends of a connection. Addresses in network order; an IPv4 address
 * fills the first 4 bytes. Ports in host order. */
struct net_peer {
	__u8 raddr[16];
	__u8 laddr[16];
	__u16 rport;
	__u16 lport;
	__u16 family;	/* AF_INET or AF_INET6 */
	__u16 pad;
};

/* One traced connection (value of `conns`). Counters are cumulative and
 * only grow; userspace differences them per interval. */
struct net_conn {
	__u64 start_ns;	/* CLOCK_MONOTONIC when we first saw it */
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 retrans;
	__u32 tgid;
	__u32 srtt_us;	/* smoothed RTT (tcp_sock srtt_us >> 3), sampled per 64 KiB sent */
	__u8 dir;	/* enum net_dir */
	__u8 established;
	__u8 pad[6];
	struct net_peer peer;
};

/* Key of `listeners`: the target's listening ports. */
struct net_listen_key {
	__u32 netns;	/* network namespace inode */
	__u16 port;
	__u16 pad;
};

/* Value of `listeners`; sk is 0 for listeners userspace found in /proc. */
struct net_listener {
	__u64 sk;
	__u32 tgid;
	__u32 pad;
};

enum net_event_kind {
	NET_EV_CONNECT = 0,	/* outbound connection established */
	NET_EV_ACCEPT,		/* inbound connection established */
	NET_EV_CLOSE,		/* connection destroyed; carries its totals */
	NET_EV_CONNECT_FAILED,	/* outbound attempt that never got established */
};

/* Connection lifecycle events through the ring buffer (rare by nature). */
struct net_event {
	__u64 ts_ns;
	__u64 start_ns;
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 retrans;
	__u64 sk;	/* with start_ns, identifies the connection */
	__u32 tgid;
	__u8 kind;	/* enum net_event_kind */
	__u8 dir;	/* enum net_dir */
	__u8 pad[2];
	struct net_peer peer;
};

/* Cumulative counters of the traced process (indices of `totals`, per CPU). */
enum net_total {
	NET_T_TX_BYTES = 0,
	NET_T_RX_BYTES,
	NET_T_CONNECTS,
	NET_T_ACCEPTS,
	NET_T_CLOSES,
	NET_T_CONNECT_FAILS,
	NET_T_RETRANS,
	NET_T_INSERTS,		/* entries added to `conns` */
	NET_T_DELETES,		/* entries removed from `conns` at close */
	NET_T_LOST_EVENTS,	/* ring buffer full */
	NET_T_MAX,
};

/* ------------------------------------------------------------------ */
/* Background layer: RocksDB C++ internals (compaction, flush, stall)  */
/* ------------------------------------------------------------------ */

/*
 * What a traced C++ function means; the BPF cookie of its probes and the
 * index of `bg_stats`. Userspace prints them in this order.
 */
enum bg_kind {
	BG_COMPACTION = 0,	/* rocksdb::CompactionJob::Run() */
	BG_FLUSH,		/* rocksdb::FlushJob::Run(...) */
	BG_DELAY_WRITE,		/* rocksdb::DBImpl::DelayWrite(...): a write stall */
	BG_STOP_TOKEN,		/* rocksdb::WriteController::GetStopToken() */
	BG_DELAY_TOKEN,		/* rocksdb::WriteController::GetDelayToken(...) */
	BG_KIND_MAX,
};

/*
 * Per-CPU aggregate of one kind. Counters are cumulative; in flight =
 * started - finished (summed over CPUs: a job may end on another CPU).
 * max_ns/max_epoch work as in struct rdb_stats.
 */
struct bg_stats {
	__u64 started;
	__u64 finished;
	__u64 total_ns;
	__u64 max_ns[2];
	__u64 max_epoch[2];
	__u64 hist[LAT_SLOTS];
};

/* A call in progress, keyed by thread and kind (userspace reads it too). */
struct bg_start_key {
	__u64 pid_tgid;
	__u32 kind;
	__u32 pad;
};

struct bg_start {
	__u64 ts_ns;	/* CLOCK_MONOTONIC at entry */
	__u64 obj;	/* `this`: the CompactionJob, FlushJob, DBImpl or WriteController */
};

/* One finished call, through the ring buffer (rare by nature). */
struct bg_event {
	__u64 ts_ns;	/* CLOCK_MONOTONIC at return */
	__u64 dur_ns;
	__u64 obj;
	__u32 tgid;
	__u32 tid;
	__u32 kind;
	__u32 pad;
	char comm[TASK_COMM_LEN];
};

/* ------------------------------------------------------------------ */
/* Syscall layer                                                      */
/* ------------------------------------------------------------------ */

/*
 * Aggregation key: one row per (syscall number, thread family). The family
 * is the thread's comm with its trailing digits cut off ("rocksdb:low3" ->
 * "rocksdb:low", "GlobalRt-12" -> "GlobalRt-"), so the key space grows with
 * the kinds of threads, not with their number; userspace maps families to
 * roles (compaction, flush, chain, ...) when it reads the map.
 */
struct sc_key {
	char family[TASK_COMM_LEN];
	__u32 nr;
	__u32 pad;
};

/*
 * Per-CPU aggregate, cumulative. ret_sum adds up positive return values:
 * bytes for the read/write family, meaningless (and not shown) elsewhere.
 * max_ns/max_epoch work as in struct rdb_stats.
 */
struct sc_stats {
	__u64 count;
	__u64 errors;		/* ret < 0 */
	__u64 positive;		/* ret > 0 (epoll: wakeups with events) */
	__u64 ret_sum;		/* sum of ret over ret > 0 */
	__u64 total_ns;
	__u64 max_ns[2];
	__u64 max_epoch[2];
	__u64 hist[LAT_SLOTS];
};

/* Drops of the syscall layer reuse enum drop_reason (DROP_STATS_FULL,
 * DROP_STARTS_FULL); DROP_RINGBUF stays 0, it has no ring buffer. */

#endif /* __CKB_LIBBPF_H */
