// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Feature probes for `ckb-libbpf check`: one tiny program per attach type.
 * Userspace loads one at a time, attaches it, triggers it, and reads
 * `hits`: a program that loads, attaches and fires proves the kernel
 * supports that path, which no version number can.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 targ_tgid = 0;

/* Indexed by the program's position below; written by that program only. */
__u64 hits[8];

static __always_inline void hit(int i)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return;
	__sync_fetch_and_add(&hits[i], 1);
}

SEC("uprobe")
int probe_uprobe(void *ctx) { hit(0); return 0; }

SEC("uprobe.multi")
int probe_uprobe_multi(void *ctx) { hit(1); return 0; }

SEC("kprobe/vfs_read")
int probe_kprobe(void *ctx) { hit(2); return 0; }

SEC("fentry/vfs_read")
int BPF_PROG(probe_fentry) { hit(3); return 0; }

SEC("tracepoint/raw_syscalls/sys_enter")
int probe_tracepoint(void *ctx) { hit(4); return 0; }

SEC("raw_tp/sys_enter")
int probe_raw_tp(void *ctx) { hit(5); return 0; }

SEC("tp_btf/sys_enter")
int BPF_PROG(probe_tp_btf) { hit(6); return 0; }

/*
 * BPF cookies (bpf_get_attach_cookie for uprobes, Linux 5.15): the RocksDB
 * and background programs read how to decode each function from the
 * cookie. A kernel without the helper rejects this program at load; one
 * with it hands back the cookie userspace attached.
 */
__u64 cookie_seen;

static __always_inline int see_cookie(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	cookie_seen = bpf_get_attach_cookie(ctx);
	return 0;
}

SEC("uprobe")
int probe_cookie(struct pt_regs *ctx) { return see_cookie(ctx); }

/*
 * The same through a uprobe_multi link (Linux 6.6), which is how the RocksDB
 * layer attaches where it can: a single perf-event uprobe needs
 * CAP_SYS_ADMIN, a multi link only CAP_BPF + CAP_PERFMON.
 */
SEC("uprobe.multi")
int probe_cookie_multi(struct pt_regs *ctx) { return see_cookie(ctx); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
