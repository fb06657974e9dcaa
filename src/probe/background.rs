//! The background layer's kernel side: finding RocksDB's C++ internals
//! (compaction and flush jobs, write stalls, stall tokens) in the target by
//! their demangled names, loading the skeleton, attaching entry and return
//! probes, and reading the per-kind counters.
//!
//! These are C++ symbols, so they differ between RocksDB versions and
//! compilers: each kind is looked up by its exact qualified name, compiler
//! clones (`.cold`, `.part.N`, `.isra.N`) are skipped, and a kind the target
//! lacks is reported, never fatal. They run a few times a second at most,
//! so a single-stepped first instruction (~10 µs a hit, see
//! `node::insn`) is acceptable here, unlike on the C API hot path.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use super::uprobe::{self, Backend, Pair, Site};
use crate::model::background::{Running, Sample};
use crate::model::{BgJob, BgKind, BgStats};
use crate::node::elf::{Elf, FuncSym};
use crate::node::insn::{classify, ProbeCost};
use crate::node::symbols::{demangle, is_compiler_clone};
use crate::node::ProbeFile;
use crate::probe::{bpf_failure, bump_epoch, interval_max, map_handle, read_drops};

mod skel {
    #![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/background.skel.rs"));
}
pub use skel::BackgroundSkel;
use skel::{types, BackgroundSkelBuilder};

// SAFETY: plain C structs of integers, no padding invariants.
unsafe impl plain::Plain for types::bg_stats {}
unsafe impl plain::Plain for types::bg_start_key {}
unsafe impl plain::Plain for types::bg_start {}
unsafe impl plain::Plain for BgEvent {}

/// Mangled-name fragments worth demangling: a cheap filter before the
/// exact match, since a CKB binary has ~100k functions.
const MANGLED_HINTS: &[&str] = &[
    "13CompactionJob3Run",
    "8FlushJob3Run",
    "6DBImpl10DelayWrite",
    "15WriteController12GetStopToken",
    "15WriteController13GetDelayToken",
];

/// The kind a demangled C++ name is, if it is exactly one of the functions
/// (`rocksdb::FlushJob::Run(...)`, optionally `const`), not a lambda inside
/// it, a clone of it, or a longer name that starts the same way.
pub fn kind_of(demangled: &str) -> Option<BgKind> {
    if demangled.contains("[clone") {
        return None;
    }
    let open = demangled.find('(')?;
    let base = &demangled[..open];
    let kind = BgKind::ALL.into_iter().find(|k| k.function() == base)?;
    // Find the parenthesis that closes the parameter list.
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in demangled[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let tail = &demangled[close? + 1..];
    matches!(tail, "" | " const").then_some(kind)
}

/// The functions of each kind found in one file (several symbols when a
/// function has overloads or aliases at different addresses).
pub fn find(elf: &Elf) -> Result<HashMap<BgKind, Vec<FuncSym>>> {
    let mut out: HashMap<BgKind, Vec<FuncSym>> = HashMap::new();
    let candidates = elf.functions_where(|n| {
        n.starts_with("_ZN") && !is_compiler_clone(n) && MANGLED_HINTS.iter().any(|h| n.contains(h))
    })?;
    for f in candidates {
        let Some(kind) = kind_of(&demangle(&f.name)) else {
            continue;
        };
        let v = out.entry(kind).or_default();
        if !v.iter().any(|s| s.offset == f.offset) {
            v.push(f);
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|s| s.offset);
    }
    Ok(out)
}

/// One function to attach.
#[derive(Clone, Debug)]
pub struct Planned {
    pub kind: BgKind,
    pub file: ProbeFile,
    pub sym: FuncSym,
    pub cost: ProbeCost,
}

/// What to attach, and what the target lacks.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub attach: Vec<Planned>,
    /// Kinds found in none of the files.
    pub absent: Vec<BgKind>,
}

impl Plan {
    pub fn new(found: &[(ProbeFile, HashMap<BgKind, Vec<FuncSym>>)]) -> Plan {
        let mut plan = Plan::default();
        for kind in BgKind::ALL {
            let mut present = false;
            for (file, syms) in found {
                for sym in syms.get(&kind).into_iter().flatten() {
                    present = true;
                    plan.attach.push(Planned {
                        kind,
                        file: file.clone(),
                        sym: sym.clone(),
                        cost: classify(&sym.head),
                    });
                }
            }
            if !present {
                plan.absent.push(kind);
            }
        }
        plan
    }

    /// The planned functions whose probe is single-stepped (named in the
    /// attach note: acceptable here, these run rarely).
    pub fn single_stepped(&self) -> Vec<BgKind> {
        self.attach
            .iter()
            .filter(|p| p.cost.is_single_step())
            .map(|p| p.kind)
            .collect()
    }
}

/// Finds the internals in every file (the same files the rocksdb layer
/// probes). Files that cannot be read are skipped: this layer is optional.
pub fn resolve(files: &[ProbeFile]) -> Plan {
    let found: Vec<(ProbeFile, HashMap<BgKind, Vec<FuncSym>>)> = files
        .iter()
        .filter_map(|f| {
            let elf = Elf::open(&f.elf_path).ok()?;
            let syms = find(&elf).ok()?;
            (!syms.is_empty()).then(|| (f.clone(), syms))
        })
        .collect();
    Plan::new(&found)
}

/// Load-time settings (rodata).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Only this process (0 = every process of the probed files).
    pub tgid: u32,
    /// Send one ring-buffer record per finished call.
    pub events: bool,
}

/// Opens and loads the BPF object with `cfg` in its read-only data and only
/// the programs of `backend`.
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    cfg: &Config,
    backend: Backend,
) -> Result<BackgroundSkel<'obj>> {
    let mut open = BackgroundSkelBuilder::default()
        .open(obj)
        .map_err(|e| bpf_failure("opening the background BPF object".into(), e))?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("BPF object has no .rodata")?;
    rodata.targ_tgid = cfg.tgid;
    rodata.events_enabled = cfg.events;
    let multi = backend == Backend::Multi;
    open.progs.bg_enter_m.set_autoload(multi);
    open.progs.bg_exit_m.set_autoload(multi);
    open.progs.bg_enter.set_autoload(!multi);
    open.progs.bg_exit.set_autoload(!multi);
    open.load()
        .map_err(|e| bpf_failure("loading the background BPF programs".into(), e))
}

/// Attaches an entry and a return probe to every planned function (see
/// `uprobe::attach`); the cookie of both is the kind.
pub fn attach(skel: &BackgroundSkel<'_>, plan: &Plan, backend: Backend) -> Result<Vec<Link>> {
    let p = &skel.progs;
    let pair = match backend {
        Backend::Multi => Pair {
            enter: &p.bg_enter_m,
            exit: &p.bg_exit_m,
        },
        Backend::Single => Pair {
            enter: &p.bg_enter,
            exit: &p.bg_exit,
        },
    };
    let sites: Vec<Site> = plan
        .attach
        .iter()
        .map(|p| Site {
            path: &p.file.attach_path,
            display: &p.file.display,
            offset: p.sym.offset,
            cookie: p.kind as u64,
            name: p.kind.function(),
        })
        .collect();
    uprobe::attach(pair, &sites, backend)
}

/// Loads and attaches with the best backend, or the one `forced` names
/// (`uprobe::load_attach`).
pub fn load_and_attach<'obj>(
    storage: [&'obj mut MaybeUninit<OpenObject>; 2],
    forced: Option<Backend>,
    cfg: &Config,
    plan: &Plan,
) -> Result<(BackgroundSkel<'obj>, Vec<Link>, Backend)> {
    let ((skel, links), backend, _) = uprobe::load_attach(storage, forced, |obj, b| {
        let skel = load(obj, cfg, b)?;
        let links = attach(&skel, plan, b)?;
        Ok((skel, links))
    })?;
    Ok((skel, links, backend))
}

/// Owned handles on the maps the poller reads; `Send`, for worker threads.
pub struct Maps {
    pub stats: MapHandle,
    pub running: MapHandle,
    pub drops: MapHandle,
    pub ctl: MapHandle,
}

impl Maps {
    pub fn new(skel: &BackgroundSkel<'_>) -> Result<Maps> {
        Ok(Maps {
            stats: map_handle(&skel.maps.stats)?,
            running: map_handle(&skel.maps.running)?,
            drops: map_handle(&skel.maps.drops)?,
            ctl: map_handle(&skel.maps.ctl)?,
        })
    }
}

/// The finished-call ring buffer, for the drain thread.
pub fn events(skel: &BackgroundSkel<'_>) -> Result<MapHandle> {
    map_handle(&skel.maps.events)
}

/// Reads the maps, closing interval `epoch` (see `rocksdb::read_sample`).
pub fn read_sample(maps: &Maps, epoch: u64) -> Result<Sample> {
    bump_epoch(&maps.ctl, epoch)?;
    let now = crate::clock::monotonic_ns();
    let mut kinds = Vec::with_capacity(BgKind::ALL.len());
    for (i, kind) in BgKind::ALL.into_iter().enumerate() {
        let mut sum = BgStats::default();
        if let Some(per_cpu) = maps
            .stats
            .lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)?
        {
            for bytes in per_cpu {
                let mut v = types::bg_stats::default();
                plain::copy_from_bytes(&mut v, &bytes)
                    .map_err(|_| anyhow::anyhow!("short bg_stats"))?;
                sum.started += v.started;
                sum.finished += v.finished;
                sum.total_ns += v.total_ns;
                if let Some(m) = interval_max(&v.max_ns, &v.max_epoch, epoch) {
                    sum.max_ns = sum.max_ns.max(m);
                }
                for (h, x) in sum.hist.slots.iter_mut().zip(v.hist.iter()) {
                    *h += x;
                }
            }
        }
        kinds.push((kind, sum));
    }
    let mut running = Vec::new();
    for key in maps.running.keys() {
        let Some(val) = maps.running.lookup(&key, MapFlags::ANY)? else {
            continue; // returned in between
        };
        let mut k = types::bg_start_key::default();
        let mut v = types::bg_start::default();
        plain::copy_from_bytes(&mut k, &key).map_err(|_| anyhow::anyhow!("short bg_start_key"))?;
        plain::copy_from_bytes(&mut v, &val).map_err(|_| anyhow::anyhow!("short bg_start"))?;
        if let Some(kind) = BgKind::from_index(k.kind as usize) {
            running.push(Running {
                kind,
                tid: k.pid_tgid as u32,
                start_ns: v.ts_ns,
                elapsed_ns: now.saturating_sub(v.ts_ns),
            });
        }
    }
    let drops = read_drops(&maps.drops)?;
    Ok(Sample {
        kinds,
        running,
        drops,
    })
}

/// `struct bg_event` (include/ckb_libbpf.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BgEvent {
    pub ts_ns: u64,
    pub dur_ns: u64,
    pub obj: u64,
    pub tgid: u32,
    pub tid: u32,
    pub kind: u32,
    pub pad: u32,
    pub comm: [u8; 16],
}

impl BgEvent {
    pub fn parse(data: &[u8]) -> Option<BgEvent> {
        let mut e = BgEvent::default();
        plain::copy_from_bytes(&mut e, data).ok()?;
        BgKind::from_index(e.kind as usize).map(|_| e)
    }
    pub fn kind(&self) -> BgKind {
        BgKind::from_index(self.kind as usize).unwrap_or(BgKind::Compaction)
    }
    pub fn thread(&self) -> String {
        let end = self
            .comm
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

/// A ring-buffer record as a printable job.
impl BgEvent {
    /// The record as a printable job.
    pub fn job(&self, clock: &crate::clock::Clock) -> BgJob {
        BgJob {
            time: crate::clock::rfc3339(clock.wall(self.ts_ns)),
            pid: self.tgid,
            tid: self.tid,
            thread: self.thread(),
            kind: self.kind(),
            duration_us: self.dur_ns as f64 / 1000.0,
            object: self.obj,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_header() {
        assert_eq!(std::mem::size_of::<BgEvent>(), 56);
        assert_eq!(std::mem::size_of::<types::bg_start_key>(), 16);
        assert_eq!(std::mem::size_of::<types::bg_start>(), 16);
        assert_eq!(
            std::mem::size_of::<types::bg_stats>(),
            8 * (7 + crate::model::hist::SLOTS)
        );
        assert_eq!(BgKind::ALL.len(), 5); // BG_KIND_MAX
    }

    #[test]
    fn exact_functions_only() {
        use BgKind::*;
        let yes = [
            ("rocksdb::CompactionJob::Run()", Compaction),
            (
                "rocksdb::FlushJob::Run(rocksdb::LogsWithPrepTracker*, rocksdb::FileMetaData*, bool*, bool*, rocksdb::ErrorHandler*)",
                Flush,
            ),
            (
                "rocksdb::DBImpl::DelayWrite(unsigned long, rocksdb::WriteThread&, rocksdb::WriteOptions const&)",
                DelayWrite,
            ),
            ("rocksdb::WriteController::GetStopToken()", StopToken),
            (
                "rocksdb::WriteController::GetDelayToken(unsigned long)",
                DelayToken,
            ),
        ];
        for (name, kind) in yes {
            assert_eq!(kind_of(name), Some(kind), "{name}");
        }
        for name in [
            "rocksdb::CompactionJob::RunRemote()",
            "rocksdb::CompactionJob::Run() [clone .cold]",
            "rocksdb::CompactionJob::Run()::{lambda(rocksdb::Status&)#1}::operator()(rocksdb::Status&) const",
            "rocksdb::FlushJob::RunSomething(int)",
            "rocksdb::CompactionServiceCompactionJob::Run()",
            "rocksdb::WriteController::GetCompactionPressureToken()",
            "std::_Function_handler<void (), rocksdb::CompactionJob::Run()::{lambda()#1}>::_M_invoke(std::_Any_data const&)",
            "rocksdb::FlushJob::Run",
        ] {
            assert_eq!(kind_of(name), None, "{name}");
        }
    }

    #[test]
    fn absent_kinds_are_reported_and_single_steps_named() {
        let file = ProbeFile {
            attach_path: "/x".into(),
            display: "/x".into(),
            elf_path: "/x".into(),
        };
        let sym = |offset, head: &[u8]| FuncSym {
            name: "f".into(),
            vaddr: offset,
            size: 8,
            offset,
            head: head.to_vec(),
        };
        let syms = HashMap::from([
            (BgKind::Compaction, vec![sym(0x100, &[0x55])]),
            (BgKind::Flush, vec![sym(0x200, &[0x48, 0x83, 0xec, 0x18])]),
        ]);
        let plan = Plan::new(&[(file, syms)]);
        assert_eq!(plan.attach.len(), 2);
        assert_eq!(
            plan.absent,
            vec![BgKind::DelayWrite, BgKind::StopToken, BgKind::DelayToken]
        );
        assert_eq!(plan.single_stepped(), vec![BgKind::Flush]);
        assert!(Plan::new(&[]).attach.is_empty());
    }

    #[test]
    fn the_hints_cover_every_mangled_name() {
        for (m, k) in [
            ("_ZN7rocksdb13CompactionJob3RunEv", BgKind::Compaction),
            (
                "_ZN7rocksdb15WriteController12GetStopTokenEv",
                BgKind::StopToken,
            ),
            (
                "_ZN7rocksdb15WriteController13GetDelayTokenEm",
                BgKind::DelayToken,
            ),
        ] {
            assert!(MANGLED_HINTS.iter().any(|h| m.contains(h)), "{m}");
            assert_eq!(kind_of(&demangle(m)), Some(k));
        }
    }
}
