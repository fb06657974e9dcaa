//! The RocksDB layer's kernel side: the table of C API functions, the attach
//! plan (present / absent / left out because single-stepped), loading the
//! skeleton and reading its maps.

use std::collections::{BTreeSet, HashMap};
use std::mem::MaybeUninit;
use std::path::Path;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject, UprobeMultiOpts, UprobeOpts};

use crate::error::{Exit, Failure};
use crate::model::OpStats;
use crate::probe::{bpf_failure, bump_epoch, interval_max, map_handle, read_drops};
use crate::node::elf::{Elf, FuncSym};
use crate::node::insn::{classify, ProbeCost};
use crate::node::ProbeFile;

mod skel {
    #![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/rocksdb.skel.rs"));
}
pub use skel::RocksdbSkel;
use skel::{types, RocksdbSkelBuilder};

// SAFETY: plain C structs of integers, no padding invariants.
unsafe impl plain::Plain for types::rdb_db_key {}
unsafe impl plain::Plain for types::rdb_stats {}
unsafe impl plain::Plain for RdbEvent {}

/// Operation classes, in `enum rdb_op` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Get,
    Put,
    Delete,
    Write,
    IterSeek,
    IterCreate,
    IterNext,
    TxnBegin,
    TxnCommit,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Get,
        Op::Put,
        Op::Delete,
        Op::Write,
        Op::IterSeek,
        Op::IterCreate,
        Op::IterNext,
        Op::TxnBegin,
        Op::TxnCommit,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "GET",
            Op::Put => "PUT",
            Op::Delete => "DELETE",
            Op::Write => "WRITE",
            Op::IterSeek => "ITER_SEEK",
            Op::IterCreate => "ITER_CREATE",
            Op::IterNext => "ITER_NEXT",
            Op::TxnBegin => "TXN_BEGIN",
            Op::TxnCommit => "TXN_COMMIT",
        }
    }
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
    }
    fn from_u8(v: u8) -> Op {
        Op::ALL.get(v as usize).copied().unwrap_or(Op::Get)
    }
    /// Reads report a hit ratio.
    pub fn is_read(self) -> bool {
        self == Op::Get
    }
    /// Rows that carry a byte count (GET: value sizes; PUT: key + value;
    /// DELETE: key sizes).
    pub fn has_bytes(self) -> bool {
        matches!(self, Op::Get | Op::Put | Op::Delete)
    }
}

// Values of enum rdb_ret / enum rdb_arg1 (include/ckb_libbpf.h).
/// Rows of `stats` per (process, db): RDB_FUNC_SLOTS in include/ckb_libbpf.h.
const FUNC_SLOTS: u32 = 48;
const RET_NONE: u8 = 0;
const RET_PINNABLE: u8 = 1;
const RET_VLEN_PTR: u8 = 2;
const RET_HANDLE: u8 = 3;
const ARG1_DB: u8 = 0;
const ARG1_HANDLE: u8 = 1;

/// How the BPF programs read one C function (`struct rdb_spec`).
#[derive(Clone, Copy, Debug)]
pub struct FuncDef {
    pub name: &'static str,
    pub op: Op,
    klen_arg: u8,
    vlen_arg: u8,
    vptr_arg: u8,
    ret: u8,
    arg1: u8,
}

const fn f(name: &'static str, op: Op, klen: u8, vlen: u8, vptr: u8, ret: u8, arg1: u8) -> FuncDef {
    FuncDef {
        name,
        op,
        klen_arg: klen,
        vlen_arg: vlen,
        vptr_arg: vptr,
        ret,
        arg1,
    }
}

/// Every RocksDB C API function the layer knows, with the argument positions
/// of c.h (RocksDB 9.x). The index is the function id in the BPF maps.
#[rustfmt::skip]
pub const FUNCS: &[FuncDef] = &[
    // GET: value size from the returned pinnable slice or *vallen; NULL = miss.
    f("rocksdb_get", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_DB),
    f("rocksdb_get_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_DB),
    f("rocksdb_get_pinned", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_DB),
    f("rocksdb_get_pinned_cf", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_DB),
    f("rocksdb_transaction_get", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_HANDLE),
    f("rocksdb_transaction_get_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_HANDLE),
    f("rocksdb_transaction_get_pinned", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE),
    f("rocksdb_transaction_get_pinned_cf", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE),
    f("rocksdb_transaction_get_for_update", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_HANDLE),
    f("rocksdb_transaction_get_for_update_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_HANDLE),
    f("rocksdb_transaction_get_pinned_for_update", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE),
    f("rocksdb_transaction_get_pinned_for_update_cf", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE),
    f("rocksdb_transactiondb_get", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_DB),
    f("rocksdb_transactiondb_get_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_DB),
    // PUT: key + value lengths from the arguments (7th on the stack).
    f("rocksdb_put", Op::Put, 4, 6, 0, RET_NONE, ARG1_DB),
    f("rocksdb_put_cf", Op::Put, 5, 7, 0, RET_NONE, ARG1_DB),
    f("rocksdb_transaction_put", Op::Put, 3, 5, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_transaction_put_cf", Op::Put, 4, 6, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_transactiondb_put", Op::Put, 4, 6, 0, RET_NONE, ARG1_DB),
    f("rocksdb_transactiondb_put_cf", Op::Put, 5, 7, 0, RET_NONE, ARG1_DB),
    // DELETE: key length.
    f("rocksdb_delete", Op::Delete, 4, 0, 0, RET_NONE, ARG1_DB),
    f("rocksdb_delete_cf", Op::Delete, 5, 0, 0, RET_NONE, ARG1_DB),
    f("rocksdb_transaction_delete", Op::Delete, 3, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_transaction_delete_cf", Op::Delete, 4, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_transactiondb_delete", Op::Delete, 4, 0, 0, RET_NONE, ARG1_DB),
    f("rocksdb_transactiondb_delete_cf", Op::Delete, 5, 0, 0, RET_NONE, ARG1_DB),
    // WRITE: batches.
    f("rocksdb_write", Op::Write, 0, 0, 0, RET_NONE, ARG1_DB),
    f("rocksdb_transactiondb_write", Op::Write, 0, 0, 0, RET_NONE, ARG1_DB),
    // Iterators and transactions: handles remember the db they came from.
    f("rocksdb_iter_seek", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_iter_seek_for_prev", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_iter_seek_to_first", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_iter_seek_to_last", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_create_iterator", Op::IterCreate, 0, 0, 0, RET_HANDLE, ARG1_DB),
    f("rocksdb_create_iterator_cf", Op::IterCreate, 0, 0, 0, RET_HANDLE, ARG1_DB),
    f("rocksdb_transaction_create_iterator", Op::IterCreate, 0, 0, 0, RET_HANDLE, ARG1_HANDLE),
    f("rocksdb_transaction_create_iterator_cf", Op::IterCreate, 0, 0, 0, RET_HANDLE, ARG1_HANDLE),
    f("rocksdb_iter_next", Op::IterNext, 0, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_iter_prev", Op::IterNext, 0, 0, 0, RET_NONE, ARG1_HANDLE),
    f("rocksdb_optimistictransaction_begin", Op::TxnBegin, 0, 0, 0, RET_HANDLE, ARG1_DB),
    f("rocksdb_transaction_begin", Op::TxnBegin, 0, 0, 0, RET_HANDLE, ARG1_DB),
    f("rocksdb_transaction_commit", Op::TxnCommit, 0, 0, 0, RET_NONE, ARG1_HANDLE),
];

pub fn func_names() -> Vec<&'static str> {
    FUNCS.iter().map(|f| f.name).collect()
}

fn cookie(id: usize, d: &FuncDef) -> u64 {
    u64::from_le_bytes([
        d.op as u8, id as u8, d.klen_arg, d.vlen_arg, d.vptr_arg, d.ret, d.arg1, 0,
    ])
}

/// Which functions to trace: `--ops` takes class names (GET, ITER_SEEK...)
/// and/or function names. Naming a class or function opts in its
/// single-stepped functions too; by default those are left out.
#[derive(Clone, Debug, Default)]
pub struct OpsFilter {
    explicit: Option<(BTreeSet<Op>, BTreeSet<String>)>,
}

impl OpsFilter {
    pub fn parse(spec: Option<&str>) -> Result<OpsFilter> {
        let Some(spec) = spec else {
            return Ok(OpsFilter::default());
        };
        let mut ops = BTreeSet::new();
        let mut funcs = BTreeSet::new();
        for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word.eq_ignore_ascii_case("all") {
                ops.extend(Op::ALL);
            } else if let Some(op) = Op::from_name(word) {
                ops.insert(op);
            } else if FUNCS.iter().any(|f| f.name == word) {
                funcs.insert(word.to_string());
            } else {
                let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                return Err(Failure::new(
                    Exit::Usage,
                    format!("--ops: unknown operation `{word}`"),
                )
                .hint(format!(
                    "use classes ({}, all) or rocksdb_* function names",
                    names.join(", ")
                ))
                .into());
            }
        }
        Ok(OpsFilter {
            explicit: Some((ops, funcs)),
        })
    }

    /// None = not wanted; Some(true) = wanted even if single-stepped.
    fn wants(&self, d: &FuncDef) -> Option<bool> {
        match &self.explicit {
            None => Some(false),
            Some((ops, funcs)) => (ops.contains(&d.op) || funcs.contains(d.name)).then_some(true),
        }
    }
}

/// One function to attach, in one file.
#[derive(Clone, Debug)]
pub struct Planned {
    pub id: usize,
    pub def: FuncDef,
    pub file: ProbeFile,
    pub sym: FuncSym,
    pub cost: ProbeCost,
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub attach: Vec<Planned>,
    /// Present but left out by default: single-stepped first instruction.
    pub expensive: Vec<Planned>,
    /// Not in the target (dead-code eliminated or another RocksDB version).
    pub absent: Vec<&'static str>,
}

impl Plan {
    /// The functions present but not traced, with the reason and the remedy:
    /// what the stderr note, the summary table and the final JSON all print.
    pub fn left_out(&self) -> Vec<crate::model::LeftOut> {
        self.expensive
            .iter()
            .map(|p| crate::model::LeftOut {
                function: p.def.name.to_string(),
                op: p.def.op.name().to_string(),
                reason: format!(
                    "its first instruction `{}` is single-stepped, ~10 µs per call instead of ~1.5 µs; opt in with --ops {}",
                    p.cost.insn(),
                    p.def.name
                ),
            })
            .collect()
    }

    /// Decides what to attach from the functions found in each file.
    pub fn new(found: &[(ProbeFile, HashMap<String, FuncSym>)], filter: &OpsFilter) -> Plan {
        let mut plan = Plan::default();
        for (id, def) in FUNCS.iter().enumerate() {
            let mut present = false;
            for (file, syms) in found {
                let Some(sym) = syms.get(def.name) else {
                    continue;
                };
                present = true;
                let Some(opted_in) = filter.wants(def) else {
                    continue;
                };
                let p = Planned {
                    id,
                    def: *def,
                    file: file.clone(),
                    sym: sym.clone(),
                    cost: classify(&sym.head),
                };
                if p.cost.is_single_step() && !opted_in {
                    plan.expensive.push(p);
                } else {
                    plan.attach.push(p);
                }
            }
            if !present {
                plan.absent.push(def.name);
            }
        }
        plan
    }
}

/// Resolves the RocksDB functions of every candidate file. Files without
/// any are dropped; none at all is a usage error.
pub fn resolve(files: Vec<ProbeFile>) -> Result<Vec<(ProbeFile, HashMap<String, FuncSym>)>> {
    let names = func_names();
    let mut out = Vec::new();
    let mut looked = Vec::new();
    let mut stripped = false;
    for file in files {
        let elf = Elf::open(&file.elf_path)?;
        let syms = elf.functions(&names)?;
        looked.push(file.display.display().to_string());
        if syms.is_empty() {
            stripped |= !elf.has_symtab();
            continue;
        }
        out.push((file, syms));
    }
    if out.is_empty() {
        let mut f = Failure::new(
            Exit::Usage,
            format!("no RocksDB C API symbols in {}", looked.join(", ")),
        );
        f = if stripped {
            f.hint("the binary is stripped: use a CKB build with its symbol table (do not strip), or pass a librocksdb.so with --binary")
        } else {
            f.hint("is this a CKB node (RocksDB linked in) or a librocksdb.so? `ckb-libbpf symbols PATH` lists what it has")
        };
        return Err(f.into());
    }
    Ok(out)
}

/// Load-time settings (rodata).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Only this process (0 = every process of the probed files).
    pub tgid: u32,
    /// Send operations at or over this latency through the ring buffer.
    pub slow_ns: Option<u64>,
    /// Benchmarks only: attach programs that do nothing (the kernel's floor
    /// for a uprobe + uretprobe) through the same links and cookies.
    pub empty: bool,
}

/// Slots of the per-thread map: pid_max rounded up to a power of two (every
/// tid then has a slot of its own), at most 64 K (72 bytes each).
fn thread_slots() -> u32 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    pid_max.clamp(1024, 1 << 16).next_power_of_two()
}

/// How probes are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One uprobe_multi link per file and direction (Linux 6.6+).
    Multi,
    /// One perf-event uprobe per function and direction.
    Single,
}

/// Opens and loads the BPF object with `cfg` in its read-only data, with
/// only the programs of `backend` loaded.
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    cfg: &Config,
    backend: Backend,
) -> Result<RocksdbSkel<'obj>> {
    let builder = RocksdbSkelBuilder::default();
    let mut open = builder
        .open(obj)
        .map_err(|e| bpf_failure("opening the RocksDB BPF object".into(), e))?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("BPF object has no .rodata")?;
    rodata.targ_tgid = cfg.tgid;
    rodata.slow_enabled = cfg.slow_ns.is_some();
    rodata.slow_ns = cfg.slow_ns.unwrap_or(0);
    rodata.empty_programs = cfg.empty;
    // One process opens a few databases (CKB: chain, indexer, tx-pool);
    // every process of a file may mean many more at a time. A pair's rows
    // are handed back when its process exits (see `recycle`).
    let max_dbs: u32 = if cfg.tgid == 0 { 64 } else { 16 };
    rodata.max_dbs = max_dbs;
    open.maps
        .stats
        .set_max_entries(max_dbs * FUNC_SLOTS)
        .map_err(|e| bpf_failure("sizing the RocksDB stats map".into(), e))?;
    let slots = thread_slots();
    rodata.thread_mask = slots - 1;
    open.maps
        .threads
        .set_max_entries(slots)
        .map_err(|e| bpf_failure("sizing the RocksDB per-thread map".into(), e))?;
    let multi = backend == Backend::Multi;
    let (real, empty) = (!cfg.empty, cfg.empty);
    open.progs.rdb_enter_m.set_autoload(multi && real);
    open.progs.rdb_exit_m.set_autoload(multi && real);
    open.progs.rdb_enter.set_autoload(!multi && real);
    open.progs.rdb_exit.set_autoload(!multi && real);
    open.progs.rdb_empty_enter_m.set_autoload(multi && empty);
    open.progs.rdb_empty_exit_m.set_autoload(multi && empty);
    open.progs.rdb_empty_enter.set_autoload(!multi && empty);
    open.progs.rdb_empty_exit.set_autoload(!multi && empty);
    open.load()
        .map_err(|e| bpf_failure("loading the RocksDB BPF programs".into(), e))
}

/// Attaches an entry and a return probe to every planned function. The
/// links detach when dropped; the kernel also releases them if we are
/// killed, since they live in our file descriptors.
pub fn attach(skel: &RocksdbSkel<'_>, plan: &Plan, backend: Backend) -> Result<Vec<Link>> {
    match backend {
        Backend::Multi => attach_multi(skel, plan),
        Backend::Single => attach_single(skel, plan),
    }
}

/// Whether the skeleton was loaded with the empty (floor) programs.
fn empty(skel: &RocksdbSkel<'_>) -> bool {
    skel.maps
        .rodata_data
        .as_ref()
        .is_some_and(|r| r.empty_programs)
}

fn attach_multi(skel: &RocksdbSkel<'_>, plan: &Plan) -> Result<Vec<Link>> {
    let (enter, exit) = if empty(skel) {
        (&skel.progs.rdb_empty_enter_m, &skel.progs.rdb_empty_exit_m)
    } else {
        (&skel.progs.rdb_enter_m, &skel.progs.rdb_exit_m)
    };
    let mut links = Vec::new();
    let mut files: Vec<&ProbeFile> = Vec::new();
    for p in &plan.attach {
        if !files.iter().any(|f| f.attach_path == p.file.attach_path) {
            files.push(&p.file);
        }
    }
    for file in files {
        let funcs: Vec<&Planned> = plan
            .attach
            .iter()
            .filter(|p| p.file.attach_path == file.attach_path)
            .collect();
        for (prog, retprobe) in [(enter, false), (exit, true)] {
            let opts = UprobeMultiOpts {
                offsets: funcs.iter().map(|p| p.sym.offset as usize).collect(),
                cookies: funcs.iter().map(|p| cookie(p.id, &p.def)).collect(),
                retprobe,
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_multi_with_opts(-1, &file.attach_path, "", opts)
                .map_err(|e| {
                    bpf_failure(
                        format!(
                            "attaching {} uprobes (multi) to {}",
                            funcs.len(),
                            file.display.display()
                        ),
                        e,
                    )
                })?;
            links.push(link);
        }
    }
    Ok(links)
}

fn attach_single(skel: &RocksdbSkel<'_>, plan: &Plan) -> Result<Vec<Link>> {
    let (enter, exit) = if empty(skel) {
        (&skel.progs.rdb_empty_enter, &skel.progs.rdb_empty_exit)
    } else {
        (&skel.progs.rdb_enter, &skel.progs.rdb_exit)
    };
    let mut links = Vec::with_capacity(plan.attach.len() * 2);
    for p in &plan.attach {
        for (prog, retprobe) in [(enter, false), (exit, true)] {
            let opts = UprobeOpts {
                cookie: cookie(p.id, &p.def),
                retprobe,
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_with_opts(-1, &p.file.attach_path, p.sym.offset as usize, opts)
                .map_err(|e| {
                    bpf_failure(
                        format!(
                            "attaching {} to {} in {}",
                            if retprobe { "uretprobe" } else { "uprobe" },
                            p.def.name,
                            p.file.display.display()
                        ),
                        e,
                    )
                })?;
            links.push(link);
        }
    }
    Ok(links)
}

/// Owned handles on the maps the poller reads; `Send`, for worker threads.
pub struct Maps {
    /// Function ids of the plan: the only rows that can be non-zero.
    funcs: Vec<u32>,
    pub dbs: MapHandle,
    pub db_owners: MapHandle,
    pub stats: MapHandle,
    pub drops: MapHandle,
    pub ctl: MapHandle,
}

impl Maps {
    pub fn new(skel: &RocksdbSkel<'_>, plan: &Plan) -> Result<Maps> {
        let mut funcs: Vec<u32> = plan.attach.iter().map(|p| p.id as u32).collect();
        funcs.sort_unstable();
        funcs.dedup();
        Ok(Maps {
            funcs,
            dbs: map_handle(&skel.maps.dbs)?,
            db_owners: map_handle(&skel.maps.db_owners)?,
            stats: map_handle(&skel.maps.stats)?,
            drops: map_handle(&skel.maps.drops)?,
            ctl: map_handle(&skel.maps.ctl)?,
        })
    }
}

/// The slow-operation ring buffer, for the drain thread.
pub fn events(skel: &RocksdbSkel<'_>) -> Result<MapHandle> {
    map_handle(&skel.maps.events)
}

/// Counters of one (process, db, function), summed over CPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyStats {
    pub tgid: u32,
    pub db: u64,
    pub func: usize,
    /// Cumulative counters; `max_ns` is the maximum of the interval just ended.
    pub stats: OpStats,
}

/// A read of all maps at the end of one interval.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub rows: Vec<KeyStats>,
    /// Cumulative drops per `enum drop_reason`.
    pub drops: [u64; 3],
}

/// Reads the maps, closing interval `epoch`: flips the epoch first so the
/// per-interval maxima of `epoch` stop moving, then sums every CPU.
pub fn read_sample(maps: &Maps, epoch: u64) -> Result<Sample> {
    bump_epoch(&maps.ctl, epoch)?;
    let mut rows = Vec::new();
    let mut gone = Vec::new();
    for key in maps.dbs.keys() {
        let Some(index) = maps.dbs.lookup(&key, MapFlags::ANY)? else {
            continue; // never deleted; harmless anyway
        };
        let mut k = types::rdb_db_key::default();
        plain::copy_from_bytes(&mut k, &key).map_err(|_| anyhow::anyhow!("short rdb_db_key"))?;
        let index = u32::from_ne_bytes(
            index[..4]
                .try_into()
                .map_err(|_| anyhow::anyhow!("short dbs value"))?,
        );
        if k.tgid != 0 && !Path::new(&format!("/proc/{}", k.tgid)).exists() {
            // Read for the last time below, then its rows are handed back.
            gone.push((key.clone(), index));
        }
        for &func in &maps.funcs {
            let row = index * FUNC_SLOTS + func;
            let Some(per_cpu) = maps
                .stats
                .lookup_percpu(&row.to_ne_bytes(), MapFlags::ANY)?
            else {
                continue;
            };
            let mut sum = OpStats::default();
            for bytes in per_cpu {
                let mut v = types::rdb_stats::default();
                plain::copy_from_bytes(&mut v, &bytes)
                    .map_err(|_| anyhow::anyhow!("short rdb_stats"))?;
                sum.count += v.count;
                sum.total_ns += v.total_ns;
                sum.bytes += v.bytes;
                sum.misses += v.misses;
                if let Some(m) = interval_max(&v.max_ns, &v.max_epoch, epoch) {
                    sum.max_ns = sum.max_ns.max(m);
                }
                for (h, x) in sum.hist.slots.iter_mut().zip(v.hist.iter()) {
                    *h += x;
                }
            }
            if sum.count == 0 {
                continue; // a function this database never saw
            }
            rows.push(KeyStats {
                tgid: k.tgid,
                db: k.db,
                func: func as usize,
                stats: sum,
            });
        }
    }
    for (key, index) in gone {
        recycle(maps, &key, index)?;
    }
    let drops = read_drops(&maps.drops)?;
    Ok(Sample { rows, drops })
}

/// Hands the `stats` rows of a (process, db) pair whose process has exited
/// back to the BPF side, which has rows for a few pairs at a time: the
/// pair's entry goes first (no new call can find the rows), the rows are
/// zeroed, then its index is freed for the next new pair. Its counters were
/// just read and stay in the aggregator's totals. A thread of a new process
/// never uses a cached row of an old one: per-thread caches are keyed by
/// pid_tgid.
fn recycle(maps: &Maps, key: &[u8], index: u32) -> Result<()> {
    maps.dbs
        .delete(key)
        .context("freeing a RocksDB stats slot")?;
    let zero = vec![0u8; std::mem::size_of::<types::rdb_stats>()];
    let cpus = libbpf_rs::num_possible_cpus().context("counting CPUs")?;
    let zeros = vec![zero; cpus];
    for func in 0..FUNC_SLOTS {
        let row = index * FUNC_SLOTS + func;
        maps.stats
            .update_percpu(&row.to_ne_bytes(), &zeros, MapFlags::ANY)
            .context("zeroing a RocksDB stats slot")?;
    }
    maps.db_owners
        .delete(&index.to_ne_bytes())
        .context("freeing a RocksDB stats slot")?;
    Ok(())
}

/// `struct rdb_event` (include/ckb_libbpf.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RdbEvent {
    pub ts_ns: u64,
    pub lat_ns: u64,
    pub bytes: u64,
    pub db: u64,
    pub tgid: u32,
    pub tid: u32,
    pub op: u8,
    pub func: u8,
    pub miss: u8,
    pub pad: [u8; 5],
    pub comm: [u8; 16],
}

impl RdbEvent {
    pub fn parse(data: &[u8]) -> Option<RdbEvent> {
        let mut e = RdbEvent::default();
        plain::copy_from_bytes(&mut e, data).ok()?;
        Some(e)
    }
    pub fn op(&self) -> Op {
        Op::from_u8(self.op)
    }
    pub fn function(&self) -> &'static str {
        FUNCS.get(self.func as usize).map(|f| f.name).unwrap_or("?")
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

/// A display name for where the probes go.
pub fn describe_files(plan: &Plan) -> String {
    let mut files: Vec<String> = plan
        .attach
        .iter()
        .map(|p| p.file.display.display().to_string())
        .collect();
    files.sort();
    files.dedup();
    files.join(", ")
}

pub fn path_is_shared_object(p: &Path) -> bool {
    matches!(
        Elf::open(p).map(|e| e.kind()),
        Ok(crate::node::elf::ElfKind::SharedObject)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_layout_matches_the_header() {
        assert_eq!(std::mem::size_of::<RdbEvent>(), 64);
        assert_eq!(std::mem::size_of::<types::rdb_db_key>(), 16);
        assert!(FUNCS.len() <= FUNC_SLOTS as usize);
        let header = include_str!("../../include/ckb_libbpf.h");
        assert!(header.contains(&format!("#define RDB_FUNC_SLOTS {FUNC_SLOTS}\t")));
        assert_eq!(
            std::mem::size_of::<types::rdb_stats>(),
            8 * (8 + crate::model::hist::SLOTS)
        );
    }

    #[test]
    fn function_ids_fit_the_cookie() {
        assert!(FUNCS.len() < 256);
        let c = cookie(7, &FUNCS[15]); // rocksdb_put_cf
        assert_eq!(
            c.to_le_bytes(),
            [Op::Put as u8, 7, 5, 7, 0, RET_NONE, ARG1_DB, 0]
        );
    }

    #[test]
    fn names_are_unique_and_classes_complete() {
        let names: BTreeSet<&str> = FUNCS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FUNCS.len());
        for op in Op::ALL {
            assert!(FUNCS.iter().any(|f| f.op == op), "{op:?}");
        }
    }

    fn found(names: &[(&str, &[u8])]) -> Vec<(ProbeFile, HashMap<String, FuncSym>)> {
        let file = ProbeFile {
            attach_path: "/x".into(),
            display: "/x".into(),
            elf_path: "/x".into(),
        };
        let syms = names
            .iter()
            .map(|(n, head)| {
                (
                    n.to_string(),
                    FuncSym {
                        name: n.to_string(),
                        vaddr: 0x1000,
                        size: 10,
                        offset: 0x1000,
                        head: head.to_vec(),
                    },
                )
            })
            .collect();
        vec![(file, syms)]
    }

    #[test]
    fn single_stepped_functions_need_an_opt_in() {
        let f = found(&[
            ("rocksdb_get_pinned_cf", &[0x55]),
            ("rocksdb_iter_seek", &[0x48, 0x83, 0xec, 0x18]),
        ]);
        let plan = Plan::new(&f, &OpsFilter::default());
        assert_eq!(plan.attach.len(), 1);
        assert_eq!(plan.expensive.len(), 1);
        assert_eq!(plan.expensive[0].def.name, "rocksdb_iter_seek");
        assert!(plan.absent.contains(&"rocksdb_put"));

        let plan = Plan::new(&f, &OpsFilter::parse(Some("GET,ITER_SEEK")).unwrap());
        assert_eq!(plan.attach.len(), 2);
        let plan = Plan::new(&f, &OpsFilter::parse(Some("rocksdb_iter_seek")).unwrap());
        assert_eq!(plan.attach.len(), 1);
        assert_eq!(plan.attach[0].def.name, "rocksdb_iter_seek");
        let plan = Plan::new(&f, &OpsFilter::parse(Some("put")).unwrap());
        assert!(plan.attach.is_empty());
    }

    #[test]
    fn unknown_ops_are_usage_errors() {
        let e = OpsFilter::parse(Some("GET,FROB")).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), Exit::Usage);
    }
}
