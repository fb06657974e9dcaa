// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP connections of one process: bytes per connection, lifecycle events,
 * retransmits. Each feature (send, recv, lifecycle, close, retransmit) has
 * up to four program variants; userspace loads one per feature, chosen by
 * probing the kernel:
 *
 *   tp_btf      sock:sock_{send,recv}_length, sock:inet_sock_set_state,
 *   tracepoint  tcp:tcp_destroy_sock, tcp:tcp_retransmit_skb (stable ABI;
 *               tp_btf is the cheaper flavour of the same tracepoint)
 *   fentry      tcp_sendmsg, tcp_recvmsg, tcp_connect, inet_csk_accept,
 *   kprobe      tcp_close, tcp_retransmit_skb (kernel internals, for
 *               kernels that lack a tracepoint; reads struct sock by CO-RE)
 *
 * Ownership: only send/recv (and connect, listen) run in the context of the
 * task that does them. The rest often fires in softirq, where "current" is
 * whoever was interrupted, so it never decides ownership there: a socket is
 * the target's if it is already in `conns` (learned in process context), or
 * if it was accepted on a port the target listens on (`listeners`).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "common.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define MSG_PEEK 2

/* Load-time knobs (set through the skeleton's rodata before load). */
const volatile __u32 targ_tgid = 0;	/* 0 = every process */
/* No close program is loaded: treat the TCP_CLOSE transition as the close. */
const volatile bool close_on_state = false;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NET_MAX_CONNS);
	__type(key, __u64);	/* struct sock * */
	__type(value, struct net_conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_MAX_LISTENERS);
	__type(key, struct net_listen_key);
	__type(value, struct net_listener);
} listeners SEC(".maps");

/* kprobe/kretprobe pairs: the socket (and recv flags) of the call in flight. */
struct inflight {
	__u64 sk;
	__u64 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);	/* pid_tgid */
	__type(value, struct inflight);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NET_T_MAX);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline bool is_target(void)
{
	return !targ_tgid || (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

/*
 * Per-CPU, but a program in softirq may interrupt another one on the same
 * CPU between its load and store: the add is atomic so neither is lost.
 */
static __always_inline void add_total(__u32 i, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&totals, &i);

	if (p)
		__sync_fetch_and_add(p, v);
}

static __always_inline bool is_tcp(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP &&
	       BPF_CORE_READ(sk, sk_type) == SOCK_STREAM;
}

static __always_inline void read_peer(struct sock *sk, struct net_peer *p)
{
	p->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	p->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	p->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (p->family == AF_INET6) {
		BPF_CORE_READ_INTO(&p->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&p->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)p->raddr, sk, __sk_common.skc_daddr);
		BPF_CORE_READ_INTO((__u32 *)p->laddr, sk, __sk_common.skc_rcv_saddr);
	}
}

static __always_inline __u32 netns_of(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Adds `sk` to the table (if absent) and returns its entry. */
static __always_inline struct net_conn *learn(struct sock *sk, __u8 dir, bool established,
					      __u32 tgid)
{
	struct net_conn c = {};
	__u64 key = (__u64)sk;

	c.start_ns = bpf_ktime_get_ns();
	c.tgid = tgid;
	c.dir = dir;
	c.established = established;
	read_peer(sk, &c.peer);
	if (!bpf_map_update_elem(&conns, &key, &c, BPF_NOEXIST))
		add_total(NET_T_INSERTS, 1);
	return bpf_map_lookup_elem(&conns, &key);
}

static __always_inline void emit(__u8 kind, struct sock *sk, struct net_conn *c)
{
	struct net_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		add_total(NET_T_LOST_EVENTS, 1);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->start_ns = c->start_ns;
	e->tx_bytes = c->tx_bytes;
	e->rx_bytes = c->rx_bytes;
	e->retrans = c->retrans;
	e->sk = (__u64)sk;
	e->tgid = c->tgid;
	e->kind = kind;
	e->dir = c->dir;
	e->pad[0] = 0;
	e->pad[1] = 0;
	__builtin_memcpy(&e->peer, &c->peer, sizeof(e->peer));
	bpf_ringbuf_submit(e, 0);
}

/*
 * is_tcp() for a BTF-typed socket (tp_btf): plain loads instead of three
 * probe reads. Measured with bpf_stats on loopback sends: the probe-read
 * check before the lookup made every TCP send 100 ns dearer (154 -> 255 ns
 * a run) to save UDP/Unix ones 40 ns; these loads cost next to nothing.
 */
static __always_inline bool is_tcp_btf(struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	if (family != AF_INET && family != AF_INET6)
		return false;
	return sk->sk_protocol == IPPROTO_TCP && sk->sk_type == SOCK_STREAM;
}

/* Where a send or receive was seen, which decides how its socket is checked. */
enum io_hook {
	/* In tcp_sendmsg/tcp_recvmsg (fexit, kretprobe): TCP by construction. */
	IO_TCP_FN,
	/*
	 * The sock tracepoints fire for every socket type (Unix, UDP,
	 * netlink...). With BTF the type check is nearly free: done first, it
	 * spares the others a hash lookup that could only miss.
	 */
	IO_ANY_BTF,
	/*
	 * The same without BTF: the check takes three probe reads, dearer than
	 * the lookup, so TCP sockets already known (the node's traffic) skip it
	 * and only a miss pays.
	 */
	IO_ANY_RAW,
};

/* A send or receive of `bytes` by the current task (process context). */
static __always_inline void on_io(struct sock *sk, __s64 bytes, bool tx, enum io_hook hook)
{
	__u64 key = (__u64)sk;
	struct net_conn *c;

	if (bytes <= 0 || !is_target())
		return;
	if (hook == IO_ANY_BTF && !is_tcp_btf(sk))
		return;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c) {
		/* Open before we attached, or evicted: learn it now (checked already with BTF). */
		if (hook != IO_ANY_BTF && !is_tcp(sk))
			return;
		c = learn(sk, NET_DIR_UNKNOWN, true, bpf_get_current_pid_tgid() >> 32);
	}
	add_total(tx ? NET_T_TX_BYTES : NET_T_RX_BYTES, bytes);
	if (!c)
		return;
	if (tx) {
		__u64 before = __sync_fetch_and_add(&c->tx_bytes, bytes);

		/* The RTT changes slowly: sample it once per 64 KiB sent, not per call. */
		if (!before || (before >> 16) != ((before + bytes) >> 16))
			c->srtt_us = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;
	} else {
		__sync_fetch_and_add(&c->rx_bytes, bytes);
	}
}

static __always_inline void on_close(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct net_conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		return;
	if (c->dir == NET_DIR_OUT && !c->established) {
		emit(NET_EV_CONNECT_FAILED, sk, c);
		add_total(NET_T_CONNECT_FAILS, 1);
	} else {
		emit(NET_EV_CLOSE, sk, c);
		add_total(NET_T_CLOSES, 1);
	}
	if (!bpf_map_delete_elem(&conns, &key))
		add_total(NET_T_DELETES, 1);
}

/* An inbound connection established on a port the target listens on. */
static __always_inline void on_accepted(struct sock *sk)
{
	struct net_listen_key lk = {};
	struct net_listener *l;
	struct net_conn *c;

	lk.netns = netns_of(sk);
	lk.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	l = bpf_map_lookup_elem(&listeners, &lk);
	if (!l && targ_tgid)
		return;
	c = learn(sk, NET_DIR_IN, true, l ? l->tgid : 0);
	if (!c)
		return;
	emit(NET_EV_ACCEPT, sk, c);
	add_total(NET_T_ACCEPTS, 1);
}

/* inet_sock_set_state: runs in any context; see the ownership note above. */
static __always_inline void on_state(struct sock *sk, int old, int new)
{
	__u64 key = (__u64)sk;
	struct net_listen_key lk = {};
	struct net_listener *l;
	struct net_conn *c;

	switch (new) {
	case TCP_SYN_SENT:
		/* connect() in process context; the source port comes later. */
		if (is_target() && is_tcp(sk))
			learn(sk, NET_DIR_OUT, false, bpf_get_current_pid_tgid() >> 32);
		return;
	case TCP_LISTEN:
		if (is_target() && is_tcp(sk)) {
			struct net_listener v = {
				.sk = key,
				.tgid = bpf_get_current_pid_tgid() >> 32,
			};

			lk.netns = netns_of(sk);
			lk.port = BPF_CORE_READ(sk, __sk_common.skc_num);
			bpf_map_update_elem(&listeners, &lk, &v, BPF_ANY);
		}
		return;
	case TCP_ESTABLISHED:
		if (old == TCP_SYN_SENT) {
			c = bpf_map_lookup_elem(&conns, &key);
			if (!c)
				return;
			c->established = 1;
			read_peer(sk, &c->peer);
			emit(NET_EV_CONNECT, sk, c);
			add_total(NET_T_CONNECTS, 1);
		} else if (old == TCP_SYN_RECV) {
			if (is_tcp(sk))
				on_accepted(sk);
		}
		return;
	case TCP_CLOSE:
		if (old == TCP_LISTEN) {
			lk.netns = netns_of(sk);
			lk.port = BPF_CORE_READ(sk, __sk_common.skc_num);
			l = bpf_map_lookup_elem(&listeners, &lk);
			if (l && (l->sk == key || !l->sk))
				bpf_map_delete_elem(&listeners, &lk);
			return;
		}
		if (close_on_state)
			on_close(sk);
		return;
	}
}

static __always_inline void on_retrans(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct net_conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		return;
	__sync_fetch_and_add(&c->retrans, 1);
	add_total(NET_T_RETRANS, 1);
}

/* Outbound attempt seen by tcp_connect (kprobe/fentry backends). */
static __always_inline void on_connect_call(struct sock *sk)
{
	struct net_conn *c;

	if (!is_target())
		return;
	c = learn(sk, NET_DIR_OUT, true, bpf_get_current_pid_tgid() >> 32);
	if (!c)
		return;
	emit(NET_EV_CONNECT, sk, c);
	add_total(NET_T_CONNECTS, 1);
}

/* inet_csk_accept returned a new socket to the current task. */
static __always_inline void on_accept_call(struct sock *sk)
{
	struct net_conn *c;

	if (!sk || !is_target())
		return;
	c = learn(sk, NET_DIR_IN, true, bpf_get_current_pid_tgid() >> 32);
	if (!c)
		return;
	emit(NET_EV_ACCEPT, sk, c);
	add_total(NET_T_ACCEPTS, 1);
}

/* ---- tp_btf: the tracepoints with BTF-typed arguments (cheapest) ---- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_btf, struct sock *sk, int ret, int flags)
{
	on_io(sk, ret, true, IO_ANY_BTF);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_btf, struct sock *sk, int ret, int flags)
{
	if (!(flags & MSG_PEEK))
		on_io(sk, ret, false, IO_ANY_BTF);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf, struct sock *sk, int old, int new)
{
	on_state(sk, old, new);
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(close_btf, struct sock *sk)
{
	on_close(sk);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_btf, struct sock *sk)
{
	on_retrans(sk);
	return 0;
}

/* ---- classic tracepoints: the same events through the perf buffer ---- */

SEC("tracepoint/sock/sock_send_length")
int send_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	on_io(ctx->sk, ctx->ret, true, IO_ANY_RAW);
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int recv_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	if (!(ctx->flags & MSG_PEEK))
		on_io(ctx->sk, ctx->ret, false, IO_ANY_RAW);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol == IPPROTO_TCP)
		on_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate);
	return 0;
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int close_tp(struct trace_event_raw_tcp_event_sk *ctx)
{
	on_close((struct sock *)ctx->skaddr);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retrans_tp(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	on_retrans((struct sock *)ctx->skaddr);
	return 0;
}

/* ---- fentry/fexit: kernels with BPF trampolines but no tracepoint ---- */

SEC("fexit/tcp_sendmsg")
int BPF_PROG(send_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	on_io(sk, ret, true, IO_TCP_FN);
	return 0;
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(recv_fexit, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	if (!(flags & MSG_PEEK))
		on_io(sk, ret, false, IO_TCP_FN);
	return 0;
}

SEC("fentry/tcp_connect")
int BPF_PROG(connect_fentry, struct sock *sk)
{
	on_connect_call(sk);
	return 0;
}

/*
 * An fexit program finds the return value after the arguments, and
 * inet_csk_accept's changed in Linux 6.10: (sk, flags,
 * err, kern) became (sk, struct proto_accept_arg *). The kernel's own BTF
 * says which: the struct exists from 6.10 on. The relocation makes the test
 * a constant at load, so the verifier never sees the other branch's ctx
 * access. (Only a kernel with fentry and either signature can run this;
 * this host has no fentry.)
 */
SEC("fexit/inet_csk_accept")
int BPF_PROG(accept_fexit)
{
	struct sock *ret;

	if (bpf_core_type_exists(struct proto_accept_arg))
		ret = (struct sock *)ctx[2];
	else
		ret = (struct sock *)ctx[4];
	on_accept_call(ret);
	return 0;
}

SEC("fentry/tcp_close")
int BPF_PROG(close_fentry, struct sock *sk)
{
	on_close(sk);
	return 0;
}

SEC("fentry/tcp_retransmit_skb")
int BPF_PROG(retrans_fentry, struct sock *sk)
{
	on_retrans(sk);
	return 0;
}

/* ---- kprobes: the oldest path; return values need an entry stash ---- */

static __always_inline void stash(struct sock *sk, __u64 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight v = { .sk = (__u64)sk, .flags = flags };

	if (is_target())
		bpf_map_update_elem(&calls, &id, &v, BPF_ANY);
}

static __always_inline void unstash(long ret, bool tx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight *v = bpf_map_lookup_elem(&calls, &id);
	struct sock *sk;
	__u64 flags;

	if (!v)
		return;
	sk = (struct sock *)v->sk;
	flags = v->flags;
	bpf_map_delete_elem(&calls, &id);
	if (!(flags & MSG_PEEK))
		on_io(sk, ret, tx, IO_TCP_FN);
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(send_kprobe, struct sock *sk)
{
	stash(sk, 0);
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(send_kretprobe, int ret)
{
	unstash(ret, true);
	return 0;
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(recv_kprobe, struct sock *sk, struct msghdr *msg, size_t len, int flags)
{
	stash(sk, flags);
	return 0;
}

SEC("kretprobe/tcp_recvmsg")
int BPF_KRETPROBE(recv_kretprobe, int ret)
{
	unstash(ret, false);
	return 0;
}

SEC("kprobe/tcp_connect")
int BPF_KPROBE(connect_kprobe, struct sock *sk)
{
	on_connect_call(sk);
	return 0;
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(accept_kretprobe, struct sock *ret)
{
	on_accept_call(ret);
	return 0;
}

SEC("kprobe/tcp_close")
int BPF_KPROBE(close_kprobe, struct sock *sk)
{
	on_close(sk);
	return 0;
}

SEC("kprobe/tcp_retransmit_skb")
int BPF_KPROBE(retrans_kprobe, struct sock *sk)
{
	on_retrans(sk);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
