//! The syscall layer's kernel side: backend choice (tp_btf, raw_tp,
//! tracepoint), loading the skeleton with only that pair of programs,
//! attaching, and reading the per-CPU aggregates.

use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use crate::error::{Exit, Failure};
use crate::model::syscall::{CallStats, KeyStats, Sample};
use crate::probe::features::{self, Attach, Probed, Tracefs};
use crate::probe::{
    bpf_failure, bump_epoch, interval_max, map_handle, per_cpu_bytes, read_drops, size_stats,
    StatsMap,
};

mod skel {
    #![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/syscall.skel.rs"));
}
pub use skel::SyscallSkel;
use skel::{types, SyscallSkelBuilder};

// SAFETY: plain C structs of integers and chars, no padding invariants.
unsafe impl plain::Plain for types::sc_key {}
unsafe impl plain::Plain for types::sc_stats {}

/// The three program pairs of syscall.bpf.c, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    TpBtf,
    RawTp,
    Tracepoint,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::TpBtf, Backend::RawTp, Backend::Tracepoint];

    pub fn attach_type(self) -> Attach {
        match self {
            Backend::TpBtf => Attach::TpBtf,
            Backend::RawTp => Attach::RawTp,
            Backend::Tracepoint => Attach::Tracepoint,
        }
    }
    /// The name shown in the output, in `check` and accepted by --backend.
    pub fn name(self) -> &'static str {
        self.attach_type().name()
    }
    pub fn from_name(s: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == s)
    }
}

/// The best backend the probes found working, in `Backend::ALL` order:
/// what `check` reports (`probe::backend`) and what `choose` loads.
pub fn pick(probed: &[Probed]) -> Option<Backend> {
    let ok = |a: Attach| probed.iter().any(|p| p.attach == a && p.ok);
    Backend::ALL.into_iter().find(|b| ok(b.attach_type()))
}

/// Picks the backend: `forced` if given, else the one `check` reports,
/// from the same feature probes (`pick`), so the two never disagree. Returns the probe results for the notice.
pub fn choose(forced: Option<Backend>) -> Result<(Backend, Vec<Probed>)> {
    let candidates: Vec<Backend> = match forced {
        Some(b) => vec![b],
        None => Backend::ALL.to_vec(),
    };
    // The tracepoint backend resolves its id through tracefs.
    if candidates.contains(&Backend::Tracepoint) {
        if let Tracefs::Unavailable(why) = features::ensure_tracefs() {
            if forced.is_some() {
                return Err(Failure::new(
                    Exit::Environment,
                    format!("the tracepoint backend needs tracefs: {why}"),
                )
                .hint("mount -t tracefs tracefs /sys/kernel/tracing, or use --backend tp_btf")
                .into());
            }
        }
    }
    let mut probed = Vec::new();
    for b in &candidates {
        let p = features::probe(b.attach_type());
        let ok = p.ok;
        probed.push(p);
        if ok {
            break; // the best one works: no need to probe worse ones
        }
    }
    let chosen = pick(&probed).filter(|b| candidates.contains(b));
    match chosen {
        Some(b) => Ok((b, probed)),
        None => {
            let why: Vec<String> = probed
                .iter()
                .map(|p| format!("{}: {}", p.attach.name(), p.detail))
                .collect();
            Err(Failure::new(
                Exit::Environment,
                format!("no syscall tracing backend works here ({})", why.join("; ")),
            )
            .hint("`ckb-libbpf check` shows which BPF attach types this kernel supports")
            .into())
        }
    }
}

/// Load-time settings (rodata and map sizes).
#[derive(Clone, Debug)]
pub struct Config {
    /// Only this process (0 = every process).
    pub tgid: u32,
}

/// Opens and loads the object with only `backend`'s two programs.
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    cfg: &Config,
    backend: Backend,
) -> Result<SyscallSkel<'obj>> {
    let mut open = SyscallSkelBuilder::default()
        .open(obj)
        .map_err(|e| bpf_failure("opening the syscall BPF object".into(), e))?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("BPF object has no .rodata")?;
    rodata.targ_tgid = cfg.tgid;
    // A preallocated per-CPU hash: every key's row on every CPU.
    let keys = open.maps.stats.max_entries();
    rodata.shared_stats = size_stats(
        &mut open.maps.stats,
        &mut open.maps.stats_shared,
        keys,
        std::mem::size_of::<types::sc_stats>(),
        "syscall",
    )?;
    let p = &mut open.progs;
    p.sc_enter_btf.set_autoload(backend == Backend::TpBtf);
    p.sc_exit_btf.set_autoload(backend == Backend::TpBtf);
    p.sc_enter_raw.set_autoload(backend == Backend::RawTp);
    p.sc_exit_raw.set_autoload(backend == Backend::RawTp);
    p.sc_enter_tp.set_autoload(backend == Backend::Tracepoint);
    p.sc_exit_tp.set_autoload(backend == Backend::Tracepoint);
    open.load().map_err(|e| {
        bpf_failure(
            format!("loading the syscall BPF programs ({})", backend.name()),
            e,
        )
    })
}

/// Attaches the exit program first, then the entry one: an exit without a
/// start is ignored, so no call is half-seen. Links detach when dropped.
pub fn attach(skel: &SyscallSkel<'_>, backend: Backend) -> Result<Vec<Link>> {
    let p = &skel.progs;
    let (exit, enter) = match backend {
        Backend::TpBtf => (&p.sc_exit_btf, &p.sc_enter_btf),
        Backend::RawTp => (&p.sc_exit_raw, &p.sc_enter_raw),
        Backend::Tracepoint => (&p.sc_exit_tp, &p.sc_enter_tp),
    };
    let mut links = Vec::with_capacity(2);
    for (prog, what) in [(exit, "sys_exit"), (enter, "sys_enter")] {
        let link = prog.attach().map_err(|e| {
            bpf_failure(
                format!("attaching {} to raw_syscalls:{what}", backend.name()),
                e,
            )
        })?;
        links.push(link);
    }
    Ok(links)
}

fn is_shared(skel: &SyscallSkel<'_>) -> bool {
    skel.maps
        .rodata_data
        .as_ref()
        .is_some_and(|r| r.shared_stats)
}

/// Kernel memory each CPU's copy of `stats` holds (0 when shared).
pub fn per_cpu_stats_bytes(skel: &SyscallSkel<'_>) -> u64 {
    if is_shared(skel) {
        0
    } else {
        per_cpu_bytes(&skel.maps.stats)
    }
}

/// Owned map handles for the poller thread.
pub struct Maps {
    pub stats: StatsMap,
    pub drops: MapHandle,
    pub ctl: MapHandle,
    /// Futex wait-family calls (`read_futex_waits`).
    pub waits: MapHandle,
}

impl Maps {
    pub fn new(skel: &SyscallSkel<'_>) -> Result<Maps> {
        Ok(Maps {
            stats: StatsMap::new(&skel.maps.stats, &skel.maps.stats_shared, is_shared(skel))?,
            drops: map_handle(&skel.maps.drops)?,
            ctl: map_handle(&skel.maps.ctl)?,
            waits: map_handle(&skel.maps.waits)?,
        })
    }
}

fn comm_str(c: &[u8]) -> String {
    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
    String::from_utf8_lossy(&c[..end]).into_owned()
}

/// Reads every aggregate, closing interval `epoch` (see rocksdb::read_sample).
pub fn read_sample(maps: &Maps, epoch: u64) -> Result<Sample> {
    bump_epoch(&maps.ctl, epoch)?;
    let mut rows = Vec::new();
    for key in maps.stats.map.keys() {
        let Some(per_cpu) = maps.stats.lookup(&key)? else {
            continue;
        };
        let mut k = types::sc_key::default();
        plain::copy_from_bytes(&mut k, &key).map_err(|_| anyhow::anyhow!("short sc_key"))?;
        let family: Vec<u8> = k.family.iter().map(|&c| c as u8).collect();
        let mut sum = CallStats::default();
        for bytes in per_cpu {
            let mut v = types::sc_stats::default();
            plain::copy_from_bytes(&mut v, &bytes)
                .map_err(|_| anyhow::anyhow!("short sc_stats"))?;
            sum.op.count += v.count;
            sum.op.total_ns += v.total_ns;
            sum.op.bytes += v.ret_sum;
            sum.errors += v.errors;
            sum.positive += v.positive;
            if let Some(m) = interval_max(&v.max_ns, &v.max_epoch, epoch) {
                sum.op.max_ns = sum.op.max_ns.max(m);
            }
            for (h, x) in sum.op.hist.slots.iter_mut().zip(v.hist.iter()) {
                *h += x;
            }
        }
        rows.push(KeyStats {
            family: comm_str(&family),
            nr: k.nr,
            stats: sum,
        });
    }
    let drops = read_drops(&maps.drops)?;
    Ok(Sample { rows, drops })
}

/// Futex calls of the wait family (FUTEX_WAIT, _BITSET, _LOCK_PI,
/// _WAIT_REQUEUE_PI, _LOCK_PI2, futex_waitv) that returned, cumulative.
/// Read after `read_sample` it counts at least the waits its rows hold.
pub fn read_futex_waits(maps: &Maps) -> Result<u64> {
    Ok(maps
        .waits
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)?
        .map(|per_cpu| {
            per_cpu
                .iter()
                .filter_map(|b| b.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum()
        })
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_header() {
        assert_eq!(std::mem::size_of::<types::sc_key>(), 24);
        assert_eq!(
            std::mem::size_of::<types::sc_stats>(),
            8 * (9 + crate::model::hist::SLOTS)
        );
    }

    #[test]
    fn backend_names_round_trip_and_match_check() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
        }
        assert_eq!(Backend::from_name("kprobe"), None);
        // `pick` prefers the same order.
        let all_ok: Vec<Probed> = Attach::ALL
            .iter()
            .map(|&a| Probed {
                attach: a,
                ok: true,
                detail: String::new(),
            })
            .collect();
        assert_eq!(pick(&all_ok), Some(Backend::TpBtf));
        let no_btf: Vec<Probed> = all_ok
            .iter()
            .cloned()
            .map(|mut p| {
                p.ok = p.attach != Attach::TpBtf;
                p
            })
            .collect();
        assert_eq!(pick(&no_btf), Some(Backend::RawTp));
    }

    #[test]
    fn comm_strings_stop_at_nul() {
        assert_eq!(comm_str(b"rocksdb:low\0\0\0\0\0"), "rocksdb:low");
        assert_eq!(comm_str(b"0123456789abcdef"), "0123456789abcdef");
    }
}
