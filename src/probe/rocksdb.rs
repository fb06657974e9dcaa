//! The RocksDB layer's kernel side: the table of C API functions, the attach
//! plan (present / absent / left out because single-stepped), loading the
//! skeleton and reading its maps.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use super::uprobe::{self, Pair, Site};

use crate::collect::names::{Key as NameKey, NameBoard};
use crate::error::{Exit, Failure};
pub use crate::model::rocksdb::func_names;
use crate::model::rocksdb::{FuncDef, KeyNames, KeyStats, Op, OpsFilter, Sample, FUNCS};
use crate::model::OpStats;
use crate::node::elf::{Elf, FuncSym};
use crate::node::insn::{classify, ProbeCost};
use crate::node::rdbnames::{Accessors, Names};
use crate::node::ProbeFile;
use crate::probe::{
    bpf_failure, bump_epoch, interval_max, map_handle, per_cpu_bytes, read_drops, size_stats,
    StatsMap,
};

mod skel {
    #![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/rocksdb.skel.rs"));
}
pub use skel::RocksdbSkel;
use skel::{types, RocksdbSkelBuilder};

// SAFETY: plain C structs of integers, no padding invariants.
unsafe impl plain::Plain for types::rdb_key {}
unsafe impl plain::Plain for types::rdb_stats {}
unsafe impl plain::Plain for RdbEvent {}

/// Most rows of `stats` per key: RDB_FUNC_SLOTS in include/ckb_libbpf.h.
const FUNC_SLOTS: u32 = 64;

/// `struct rdb_spec`: `slot` is the function's row within a key's rows.
fn cookie(id: usize, slot: usize, d: &FuncDef) -> u64 {
    u64::from_le_bytes([
        id as u8, slot as u8, d.klen_arg, d.vlen_arg, d.vptr_arg, d.ret, d.arg1, d.cf_arg,
    ])
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
    /// Single-stepped C functions whose calls C++ stand-ins in `attach`
    /// count instead (see `FUNCS`).
    pub covered: Vec<Planned>,
    /// Not in the target (dead-code eliminated or another RocksDB version).
    pub absent: Vec<&'static str>,
    /// Object layouts learnt from the code (0: unknown; see node::layout).
    pub layout: Layout,
}

/// Offsets the BPF programs read RocksDB objects at; 0 = not learnt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// `DBIter *` inside an ArenaWrappedDBIter (the DBIter stand-ins).
    pub dbiter_off: u32,
    /// Data size inside a write batch (WRITE bytes).
    pub wb_size_off: u32,
}

impl Layout {
    /// What `syms` (one file) tells; 0 where it tells nothing.
    fn of(syms: &HashMap<String, FuncSym>) -> Layout {
        use crate::model::rocksdb::{ARENA_ITER_NEXT, WRITEBATCH_DATA};
        use crate::node::layout::{arena_dbiter_offset, writebatch_size_offset};
        let dbiter_next = FUNCS
            .iter()
            .find(|f| f.name == "rocksdb::DBIter::Next")
            .and_then(|f| syms.get(f.symbol));
        Layout {
            dbiter_off: syms
                .get(ARENA_ITER_NEXT)
                .zip(dbiter_next)
                .and_then(|(a, n)| arena_dbiter_offset(&a.head, a.vaddr, n.vaddr))
                .unwrap_or(0),
            wb_size_off: syms
                .get(WRITEBATCH_DATA)
                .and_then(|w| writebatch_size_offset(&w.head))
                .unwrap_or(0),
        }
    }

    /// One layout for the programs of several files: a field the files
    /// disagree on (two RocksDB builds) is not learnt.
    fn merge(self, o: Layout) -> Layout {
        let one = |a: u32, b: u32| {
            if a == 0 || a == b {
                b
            } else if b == 0 {
                a
            } else {
                0
            }
        };
        Layout {
            dbiter_off: one(self.dbiter_off, o.dbiter_off),
            wb_size_off: one(self.wb_size_off, o.wb_size_off),
        }
    }
}

impl Plan {
    /// The function ids attached, each once, in row-slot order: a key's
    /// rows in `stats` are one per planned function, not per known one.
    pub fn slots(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = self.attach.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

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
        let mut layouts = found.iter().map(|(_, syms)| Layout::of(syms));
        let first = layouts.next().unwrap_or_default();
        plan.layout = layouts.fold(first, Layout::merge);
        for (id, def) in FUNCS.iter().enumerate() {
            if def.is_stand_in() {
                plan.stand_in(id, def, found, filter);
                continue;
            }
            let mut present = false;
            for (file, syms) in found {
                let Some(sym) = syms.get(def.symbol) else {
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
        // A C function is covered once a stand-in counts its calls.
        let covered: Vec<(&str, &Path)> = plan
            .attach
            .iter()
            .filter_map(|p| Some((p.def.stands_in?, p.file.elf_path.as_path())))
            .collect();
        let (cov, left): (Vec<Planned>, Vec<Planned>) = std::mem::take(&mut plan.expensive)
            .into_iter()
            .partition(|p| covered.contains(&(p.def.name, p.file.elf_path.as_path())));
        plan.covered = cov;
        plan.expensive = left;
        plan
    }

    /// Plans stand-in `def` in every file where the C function it stands in
    /// for was left out as single-stepped (never beside that function: a call
    /// would count twice), when its own first instruction is emulated and
    /// the layout it needs was learnt.
    fn stand_in(
        &mut self,
        id: usize,
        def: &FuncDef,
        found: &[(ProbeFile, HashMap<String, FuncSym>)],
        filter: &OpsFilter,
    ) {
        let Some(c) = def.stands_in else { return };
        if filter.wants(def).is_none() {
            return;
        }
        let needs_dbiter = def.symbol.starts_with("_ZN7rocksdb6DBIter");
        if needs_dbiter && self.layout.dbiter_off == 0 {
            return;
        }
        for (file, syms) in found {
            let left_out = self
                .expensive
                .iter()
                .any(|p| p.def.name == c && p.file.elf_path == file.elf_path);
            let Some(sym) = syms.get(def.symbol).filter(|_| left_out) else {
                continue;
            };
            let cost = classify(&sym.head);
            if cost.is_single_step() {
                continue;
            }
            self.attach.push(Planned {
                id,
                def: *def,
                file: file.clone(),
                sym: sym.clone(),
                cost,
            });
        }
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
    /// Rows per (process, db, cf): `Plan::slots().len()`.
    pub slots: u32,
    /// Object layouts (`Plan::layout`).
    pub layout: Layout,
    /// C++ iterator stand-ins are planned (`Plan::covered` is not empty).
    pub stand_ins: bool,
    /// Read each GET's value size at return.
    pub value_sizes: bool,
}

/// Kernel memory each CPU's copy of `stats` holds (0 when the shared copy
/// is used): what a bigger host would hold once per CPU up to the budget.
pub fn per_cpu_stats_bytes(skel: &RocksdbSkel<'_>) -> u64 {
    let shared = skel
        .maps
        .rodata_data
        .as_ref()
        .is_some_and(|r| r.shared_stats);
    if shared {
        0
    } else {
        per_cpu_bytes(&skel.maps.stats)
    }
}

/// Slots of the per-thread map: pid_max rounded up to a power of two (every
/// tid has a slot of its own), at most 64 K (272 bytes each: 17 MiB of
/// kernel memory at most, 8.5 MiB with the usual pid_max of 32 K).
fn thread_slots() -> u32 {
    let pid_max = crate::node::procfs::pid_max().unwrap_or(u32::MAX);
    pid_max.clamp(1024, 1 << 16).next_power_of_two()
}

pub use super::uprobe::Backend;

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
    rodata.dbiter_off = cfg.layout.dbiter_off;
    rodata.wb_size_off = cfg.layout.wb_size_off;
    rodata.stand_ins = cfg.stand_ins;
    rodata.value_sizes = cfg.value_sizes;
    // One CKB process opens a few databases: the chain (20 families
    // counting "default"), the indexer's, the tx-pool's; each family is
    // used through one handle. Every process of a file may mean more at a
    // time. A triple's rows are handed back when its process exits (see
    // `recycle`).
    let max_keys: u32 = if cfg.tgid == 0 { 128 } else { 64 };
    let slots = cfg.slots.clamp(1, FUNC_SLOTS);
    rodata.max_keys = max_keys;
    rodata.nslots = slots;
    rodata.shared_stats = size_stats(
        &mut open.maps.stats,
        &mut open.maps.stats_shared,
        max_keys * slots,
        std::mem::size_of::<types::rdb_stats>(),
        "RocksDB",
    )?;
    let threads = thread_slots();
    rodata.thread_mask = threads - 1;
    open.maps
        .threads
        .set_max_entries(threads)
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

/// Attaches an entry and a return probe to every planned function (see
/// `uprobe::attach`); the cookie tells the programs how to read each one.
pub fn attach(skel: &RocksdbSkel<'_>, plan: &Plan, backend: Backend) -> Result<Vec<Link>> {
    let p = &skel.progs;
    let pair = match (empty(skel), backend) {
        (false, Backend::Multi) => Pair {
            enter: &p.rdb_enter_m,
            exit: &p.rdb_exit_m,
        },
        (false, Backend::Single) => Pair {
            enter: &p.rdb_enter,
            exit: &p.rdb_exit,
        },
        (true, Backend::Multi) => Pair {
            enter: &p.rdb_empty_enter_m,
            exit: &p.rdb_empty_exit_m,
        },
        (true, Backend::Single) => Pair {
            enter: &p.rdb_empty_enter,
            exit: &p.rdb_empty_exit,
        },
    };
    let slots = plan.slots();
    let sites: Vec<Site> = plan
        .attach
        .iter()
        .map(|p| Site {
            path: &p.file.attach_path,
            display: &p.file.display,
            offset: p.sym.offset,
            cookie: cookie(p.id, slots.partition_point(|&id| id < p.id), &p.def),
            name: p.def.name,
        })
        .collect();
    uprobe::attach(pair, &sites, backend)
}

/// Whether the skeleton was loaded with the empty (floor) programs.
fn empty(skel: &RocksdbSkel<'_>) -> bool {
    skel.maps
        .rodata_data
        .as_ref()
        .is_some_and(|r| r.empty_programs)
}

/// Owned handles on the maps the poller reads; `Send`, for worker threads.
pub struct Maps {
    /// Function id of each row slot (`Plan::slots`): a key's rows.
    slots: Vec<usize>,
    pub keys: MapHandle,
    pub key_owners: MapHandle,
    pub stats: StatsMap,
    pub drops: MapHandle,
    pub ctl: MapHandle,
    /// Handle names, resolved from the processes' memory and cached
    /// (shared with the `Namer` thread).
    names: Arc<Mutex<Names>>,
    /// The confirmed names, published for the slow-line renderer, which
    /// must never wait for `names` (see `collect::names`).
    board: Arc<NameBoard>,
}

impl Maps {
    pub fn new(skel: &RocksdbSkel<'_>, plan: &Plan) -> Result<Maps> {
        let shared = skel
            .maps
            .rodata_data
            .as_ref()
            .is_some_and(|r| r.shared_stats);
        let mut files: Vec<&ProbeFile> = plan.attach.iter().map(|p| &p.file).collect();
        files.sort_by(|a, b| a.elf_path.cmp(&b.elf_path));
        files.dedup_by(|a, b| a.elf_path == b.elf_path);
        let accessors = files
            .iter()
            .filter_map(|f| Accessors::find(&f.elf_path, &f.attach_path))
            .collect();
        Ok(Maps {
            slots: plan.slots(),
            keys: map_handle(&skel.maps.keys)?,
            key_owners: map_handle(&skel.maps.key_owners)?,
            stats: StatsMap::new(&skel.maps.stats, &skel.maps.stats_shared, shared)?,
            drops: map_handle(&skel.maps.drops)?,
            ctl: map_handle(&skel.maps.ctl)?,
            names: Arc::new(Mutex::new(Names::new(accessors))),
            board: Arc::default(),
        })
    }

    /// Where the slow-line renderer reads confirmed names.
    pub fn board(&self) -> Arc<NameBoard> {
        Arc::clone(&self.board)
    }
}

/// The names of key (tgid, db, cf)'s handles (cached by `resolver` once
/// confirmed), published on `board` for the slow lines.
fn names_of(resolver: &mut Names, board: &NameBoard, (tgid, db, cf): NameKey) -> KeyNames {
    let n = KeyNames {
        db: resolver.db(tgid, db),
        cf: (cf != 0).then(|| resolver.cf(tgid, db, cf)).flatten(),
    };
    board.publish((tgid, db, cf), &n);
    n
}

/// Names the handles of new (process, db, cf) keys every second, whatever
/// the report interval: a name is read from the process's memory, which is
/// gone once it exits (a `ckb import` traced with `--interval 3600` would
/// end with every handle unresolved). Stops when dropped.
pub struct Namer {
    stop: Option<crossbeam_channel::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Namer {
    pub fn spawn(maps: &Maps) -> Result<Namer> {
        let keys =
            MapHandle::try_from(&maps.keys).context("duplicating the RocksDB keys map handle")?;
        let names = Arc::clone(&maps.names);
        let board = Arc::clone(&maps.board);
        let (stop, rx) = crossbeam_channel::bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name("rdb-namer".into())
            .spawn(move || {
                let tick = crossbeam_channel::tick(Duration::from_secs(1));
                let nudges = board.nudges().clone();
                loop {
                    // Keys the slow-line renderer met unnamed come first:
                    // their lines are being printed now.
                    let asked: Vec<NameKey> = crossbeam_channel::select! {
                        recv(rx) -> _ => return,
                        recv(nudges) -> k => k.into_iter().chain(nudges.try_iter()).collect(),
                        recv(tick) -> _ => keys
                            .keys()
                            .filter_map(|key| {
                                let mut k = types::rdb_key::default();
                                plain::copy_from_bytes(&mut k, &key).ok()?;
                                Some((k.tgid, k.db, k.cf))
                            })
                            .collect(),
                    };
                    let Ok(mut resolver) = names.lock() else {
                        return;
                    };
                    for k in asked {
                        // Cached once resolved; a few retries otherwise.
                        names_of(&mut resolver, &board, k);
                    }
                }
            })
            .context("spawning the RocksDB namer thread")?;
        Ok(Namer {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

impl Drop for Namer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The slow-operation ring buffer, for the drain thread.
pub fn events(skel: &RocksdbSkel<'_>) -> Result<MapHandle> {
    map_handle(&skel.maps.events)
}

/// Reads the maps, closing interval `epoch`: flips the epoch first so the
/// per-interval maxima of `epoch` stop moving, then sums every CPU. Handles
/// get their names here, on the poller thread, once each.
pub fn read_sample(maps: &Maps, epoch: u64) -> Result<Sample> {
    bump_epoch(&maps.ctl, epoch)?;
    let nslots = maps.slots.len() as u32;
    let mut rows = Vec::new();
    let mut gone = Vec::new();
    let mut names = HashMap::new();
    let mut resolver = maps
        .names
        .lock()
        .map_err(|_| anyhow::anyhow!("RocksDB name cache poisoned"))?;
    for key in maps.keys.keys() {
        let Some(index) = maps.keys.lookup(&key, MapFlags::ANY)? else {
            continue; // never deleted; harmless anyway
        };
        let mut k = types::rdb_key::default();
        plain::copy_from_bytes(&mut k, &key).map_err(|_| anyhow::anyhow!("short rdb_key"))?;
        let index = u32::from_ne_bytes(
            index[..4]
                .try_into()
                .map_err(|_| anyhow::anyhow!("short keys value"))?,
        );
        if k.tgid != 0 && !Path::new(&format!("/proc/{}", k.tgid)).exists() {
            // Read for the last time below, then its rows are handed back.
            gone.push((key.clone(), index, k.tgid));
        }
        // A process that is gone keeps the names learnt while it lived
        // (the Namer's, or an earlier interval's).
        let nk = (k.tgid, k.db, k.cf);
        names.insert(nk, names_of(&mut resolver, &maps.board, nk));
        for (slot, &func) in maps.slots.iter().enumerate() {
            let row = index * nslots + slot as u32;
            let Some(per_cpu) = maps.stats.lookup(&row.to_ne_bytes())? else {
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
                continue; // a function this key never saw
            }
            rows.push(KeyStats {
                tgid: k.tgid,
                db: k.db,
                cf: k.cf,
                func,
                stats: sum,
            });
        }
    }
    for (key, index, tgid) in gone {
        recycle(maps, &key, index)?;
        resolver.forget(tgid);
        maps.board.retire(tgid);
    }
    let drops = read_drops(&maps.drops)?;
    Ok(Sample { rows, drops, names })
}

/// Hands the `stats` rows of a (process, db, cf) triple whose process has
/// exited back to the BPF side, which has rows for a few triples at a time:
/// the triple's entry goes first (no new call can find the rows), the rows
/// are zeroed, then its index is freed for the next new triple. Its
/// counters were just read and stay in the aggregator's totals. A thread of
/// a new process never uses a cached row of an old one: per-thread caches
/// are keyed by pid_tgid.
fn recycle(maps: &Maps, key: &[u8], index: u32) -> Result<()> {
    maps.keys
        .delete(key)
        .context("freeing a RocksDB stats slot")?;
    let nslots = maps.slots.len() as u32;
    for slot in 0..nslots {
        let row = (index * nslots + slot).to_ne_bytes();
        maps.stats
            .zero(&row, std::mem::size_of::<types::rdb_stats>())
            .context("zeroing a RocksDB stats slot")?;
    }
    maps.key_owners
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
    pub pad0: u8,
    pub func: u8,
    pub miss: u8,
    pub pad: [u8; 5],
    pub comm: [u8; 16],
    pub cf: u64,
}

impl RdbEvent {
    pub fn parse(data: &[u8]) -> Option<RdbEvent> {
        let mut e = RdbEvent::default();
        plain::copy_from_bytes(&mut e, data).ok()?;
        Some(e)
    }
    pub fn op(&self) -> Op {
        FUNCS.get(self.func as usize).map_or(Op::Get, |f| f.op)
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
        assert_eq!(std::mem::size_of::<RdbEvent>(), 72);
        assert_eq!(std::mem::size_of::<types::rdb_key>(), 24);
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
        let c = cookie(15, 3, &FUNCS[15]); // rocksdb_put_cf
        assert_eq!(
            c.to_le_bytes(),
            [
                15,
                3,
                5,
                7,
                0,
                crate::model::rocksdb::RET_NONE,
                crate::model::rocksdb::ARG1_DB,
                3
            ]
        );
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
