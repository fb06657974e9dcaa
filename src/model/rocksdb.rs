//! The RocksDB layer's data: the catalog of C API functions and their
//! operation classes, the counters read out of the kernel per (process,
//! database, function), and the aggregation of those reads into interval
//! and whole-capture reports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::diff::Cumulative;
use super::overhead::{DutyCycle, HitClass, Hits, PerHit};
use super::{Drops, Gap, Gaps, LeftOut, OpStats, Report, Row, DROP_REASONS};
use crate::error::{Exit, Failure};

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
    pub fn from_u8(v: u8) -> Op {
        Op::ALL.get(v as usize).copied().unwrap_or(Op::Get)
    }
    /// Reads report a hit ratio.
    pub fn is_read(self) -> bool {
        self == Op::Get
    }
    /// Rows that carry a byte count (GET: value sizes, read only with
    /// `--value-sizes`; PUT: key + value; DELETE: key sizes; WRITE: the
    /// batches' data sizes).
    pub fn has_bytes(self, value_sizes: bool) -> bool {
        match self {
            Op::Get => value_sizes,
            Op::Put | Op::Delete | Op::Write => true,
            _ => false,
        }
    }
}

/// `enum drop_reason`'s DROP_NESTED (include/ckb_libbpf.h).
const DROP_NESTED: usize = 3;

// Values of enum rdb_ret / enum rdb_arg1 (include/ckb_libbpf.h).
pub const RET_NONE: u8 = 0;
pub const RET_PINNABLE: u8 = 1;
pub const RET_VLEN_PTR: u8 = 2;
pub const RET_HANDLE: u8 = 3;
pub const RET_ITER: u8 = 4;
pub const RET_TXN_ITER: u8 = 5;
pub const RET_BATCH: u8 = 6;
pub const ARG1_DB: u8 = 0;
pub const ARG1_HANDLE: u8 = 1;
pub const ARG1_CXX_ITER: u8 = 2;

/// How the BPF programs read one C function (`struct rdb_spec`).
#[derive(Clone, Copy, Debug)]
pub struct FuncDef {
    pub name: &'static str,
    pub op: Op,
    pub klen_arg: u8,
    pub vlen_arg: u8,
    pub vptr_arg: u8,
    pub ret: u8,
    pub arg1: u8,
    /// The `rocksdb_column_family_handle_t *` argument (0: none; the
    /// operation is on the default family, or on the handle's).
    pub cf_arg: u8,
    /// The ELF symbol probed: `name` for C functions, the mangled name of a
    /// C++ stand-in.
    pub symbol: &'static str,
    /// A C++ stand-in: the single-stepped C function whose calls it counts.
    pub stands_in: Option<&'static str>,
}

impl FuncDef {
    /// A C++ iterator method probed instead of a C function whose first
    /// instruction the kernel would single-step (~10 µs a call).
    pub fn is_stand_in(&self) -> bool {
        self.stands_in.is_some()
    }
}

#[allow(clippy::too_many_arguments)] // one table row, read as a row
const fn f(
    name: &'static str,
    op: Op,
    klen: u8,
    vlen: u8,
    vptr: u8,
    ret: u8,
    arg1: u8,
    cf: u8,
) -> FuncDef {
    FuncDef {
        name,
        op,
        klen_arg: klen,
        vlen_arg: vlen,
        vptr_arg: vptr,
        ret,
        arg1,
        cf_arg: cf,
        symbol: name,
        stands_in: None,
    }
}

/// A stand-in row: RocksDB's iterator method `symbol` (shown as `name`) for
/// the C function `c`, whose `rocksdb_iterator_t` forwards to it.
const fn cxx(name: &'static str, symbol: &'static str, op: Op, c: &'static str) -> FuncDef {
    FuncDef {
        name,
        op,
        klen_arg: 0,
        vlen_arg: 0,
        vptr_arg: 0,
        ret: RET_NONE,
        arg1: ARG1_CXX_ITER,
        cf_arg: 0,
        symbol,
        stands_in: Some(c),
    }
}

/// Every RocksDB C API function the layer knows, with the argument positions
/// of c.h (RocksDB 9.x): key length, value length, `size_t *vallen`, what
/// it returns, what its first argument is, and its column family handle
/// (3rd, except `rocksdb_transaction_put_cf`/`_delete_cf`: 2nd). The index
/// is the function id of cookies and slow events.
#[rustfmt::skip]
pub const FUNCS: &[FuncDef] = &[
    // GET: value size from the returned pinnable slice or *vallen; NULL = miss.
    f("rocksdb_get", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_DB, 0),
    f("rocksdb_get_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_DB, 3),
    f("rocksdb_get_pinned", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_DB, 0),
    f("rocksdb_get_pinned_cf", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_DB, 3),
    f("rocksdb_transaction_get", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_HANDLE, 0),
    f("rocksdb_transaction_get_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_HANDLE, 3),
    f("rocksdb_transaction_get_pinned", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE, 0),
    f("rocksdb_transaction_get_pinned_cf", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE, 3),
    f("rocksdb_transaction_get_for_update", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_HANDLE, 0),
    f("rocksdb_transaction_get_for_update_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_HANDLE, 3),
    f("rocksdb_transaction_get_pinned_for_update", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE, 0),
    f("rocksdb_transaction_get_pinned_for_update_cf", Op::Get, 0, 0, 0, RET_PINNABLE, ARG1_HANDLE, 3),
    f("rocksdb_transactiondb_get", Op::Get, 0, 0, 5, RET_VLEN_PTR, ARG1_DB, 0),
    f("rocksdb_transactiondb_get_cf", Op::Get, 0, 0, 6, RET_VLEN_PTR, ARG1_DB, 3),
    // PUT: key + value lengths from the arguments (7th on the stack).
    f("rocksdb_put", Op::Put, 4, 6, 0, RET_NONE, ARG1_DB, 0),
    f("rocksdb_put_cf", Op::Put, 5, 7, 0, RET_NONE, ARG1_DB, 3),
    f("rocksdb_transaction_put", Op::Put, 3, 5, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_transaction_put_cf", Op::Put, 4, 6, 0, RET_NONE, ARG1_HANDLE, 2),
    f("rocksdb_transactiondb_put", Op::Put, 4, 6, 0, RET_NONE, ARG1_DB, 0),
    f("rocksdb_transactiondb_put_cf", Op::Put, 5, 7, 0, RET_NONE, ARG1_DB, 3),
    // DELETE: key length.
    f("rocksdb_delete", Op::Delete, 4, 0, 0, RET_NONE, ARG1_DB, 0),
    f("rocksdb_delete_cf", Op::Delete, 5, 0, 0, RET_NONE, ARG1_DB, 3),
    f("rocksdb_transaction_delete", Op::Delete, 3, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_transaction_delete_cf", Op::Delete, 4, 0, 0, RET_NONE, ARG1_HANDLE, 2),
    f("rocksdb_transactiondb_delete", Op::Delete, 4, 0, 0, RET_NONE, ARG1_DB, 0),
    f("rocksdb_transactiondb_delete_cf", Op::Delete, 5, 0, 0, RET_NONE, ARG1_DB, 3),
    // WRITE: batches; bytes = the batch's data size (rocksdb_writebatch_data).
    f("rocksdb_write", Op::Write, 0, 0, 3, RET_BATCH, ARG1_DB, 0),
    f("rocksdb_transactiondb_write", Op::Write, 0, 0, 3, RET_BATCH, ARG1_DB, 0),
    // Iterators and transactions: handles remember the db they came from.
    f("rocksdb_iter_seek", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_iter_seek_for_prev", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_iter_seek_to_first", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_iter_seek_to_last", Op::IterSeek, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_create_iterator", Op::IterCreate, 0, 0, 0, RET_ITER, ARG1_DB, 0),
    f("rocksdb_create_iterator_cf", Op::IterCreate, 0, 0, 0, RET_ITER, ARG1_DB, 3),
    f("rocksdb_transaction_create_iterator", Op::IterCreate, 0, 0, 0, RET_TXN_ITER, ARG1_HANDLE, 0),
    f("rocksdb_transaction_create_iterator_cf", Op::IterCreate, 0, 0, 0, RET_TXN_ITER, ARG1_HANDLE, 3),
    f("rocksdb_iter_next", Op::IterNext, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_iter_prev", Op::IterNext, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    f("rocksdb_optimistictransaction_begin", Op::TxnBegin, 0, 0, 0, RET_HANDLE, ARG1_DB, 0),
    f("rocksdb_transaction_begin", Op::TxnBegin, 0, 0, 0, RET_HANDLE, ARG1_DB, 0),
    f("rocksdb_transaction_commit", Op::TxnCommit, 0, 0, 0, RET_NONE, ARG1_HANDLE, 0),
    // Stand-ins (after every C function: ids only grow). The C iterator
    // functions are three-instruction trampolines (`mov`, `mov`, `jmp *`)
    // that the kernel single-steps; the C++ methods they reach begin with a
    // `push` it emulates. A plain iterator's `rep` is an ArenaWrappedDBIter
    // that forwards to its DBIter; a transaction's is a BaseDeltaIterator,
    // which calls its own DBIter inside: a stand-in call made while another
    // counted call is in flight on the thread is not counted, so every C
    // call is counted once (see rocksdb.bpf.c). Attached only where the C
    // function is left out, never beside it.
    cxx("rocksdb::DBIter::Seek", "_ZN7rocksdb6DBIter4SeekERKNS_5SliceE", Op::IterSeek, "rocksdb_iter_seek"),
    cxx("rocksdb::DBIter::SeekForPrev", "_ZN7rocksdb6DBIter11SeekForPrevERKNS_5SliceE", Op::IterSeek, "rocksdb_iter_seek_for_prev"),
    cxx("rocksdb::DBIter::SeekToFirst", "_ZN7rocksdb6DBIter11SeekToFirstEv", Op::IterSeek, "rocksdb_iter_seek_to_first"),
    cxx("rocksdb::DBIter::SeekToLast", "_ZN7rocksdb6DBIter10SeekToLastEv", Op::IterSeek, "rocksdb_iter_seek_to_last"),
    cxx("rocksdb::DBIter::Next", "_ZN7rocksdb6DBIter4NextEv", Op::IterNext, "rocksdb_iter_next"),
    cxx("rocksdb::DBIter::Prev", "_ZN7rocksdb6DBIter4PrevEv", Op::IterNext, "rocksdb_iter_prev"),
    cxx("rocksdb::BaseDeltaIterator::Seek", "_ZN7rocksdb17BaseDeltaIterator4SeekERKNS_5SliceE", Op::IterSeek, "rocksdb_iter_seek"),
    cxx("rocksdb::BaseDeltaIterator::SeekForPrev", "_ZN7rocksdb17BaseDeltaIterator11SeekForPrevERKNS_5SliceE", Op::IterSeek, "rocksdb_iter_seek_for_prev"),
    cxx("rocksdb::BaseDeltaIterator::SeekToFirst", "_ZN7rocksdb17BaseDeltaIterator11SeekToFirstEv", Op::IterSeek, "rocksdb_iter_seek_to_first"),
    cxx("rocksdb::BaseDeltaIterator::SeekToLast", "_ZN7rocksdb17BaseDeltaIterator10SeekToLastEv", Op::IterSeek, "rocksdb_iter_seek_to_last"),
    cxx("rocksdb::BaseDeltaIterator::Next", "_ZN7rocksdb17BaseDeltaIterator4NextEv", Op::IterNext, "rocksdb_iter_next"),
    cxx("rocksdb::BaseDeltaIterator::Prev", "_ZN7rocksdb17BaseDeltaIterator4PrevEv", Op::IterNext, "rocksdb_iter_prev"),
];

/// Symbols read (never probed) to learn two layouts from the code itself:
/// where ArenaWrappedDBIter keeps its DBIter (its `Next` loads it, then
/// jumps to DBIter::Next) and where a write batch keeps its data size
/// (what `rocksdb_writebatch_data` stores through its second argument).
pub const ARENA_ITER_NEXT: &str = "_ZN7rocksdb18ArenaWrappedDBIter4NextEv";
pub const WRITEBATCH_DATA: &str = "rocksdb_writebatch_data";

/// The ELF symbols to resolve: every function's, and the layout sources.
pub fn func_names() -> Vec<&'static str> {
    FUNCS
        .iter()
        .map(|f| f.symbol)
        .chain([ARENA_ITER_NEXT, WRITEBATCH_DATA])
        .collect()
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
    pub fn wants(&self, d: &FuncDef) -> Option<bool> {
        match &self.explicit {
            None => Some(false),
            Some((ops, funcs)) => (ops.contains(&d.op) || funcs.contains(d.name)).then_some(true),
        }
    }
}

/// Counters of one (process, db, cf, function), summed over CPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyStats {
    pub tgid: u32,
    pub db: u64,
    /// Column family handle; 0 = the call named none.
    pub cf: u64,
    pub func: usize,
    /// Cumulative counters; `max_ns` is the maximum of the interval just ended.
    pub stats: OpStats,
}

/// What userspace found a (process, db, cf) key's handles are called;
/// None = not confirmed (shown as the pointer, never guessed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyNames {
    pub db: Option<String>,
    pub cf: Option<String>,
}

/// A read of all maps at the end of one interval.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub rows: Vec<KeyStats>,
    /// Cumulative drops per `enum drop_reason`.
    pub drops: [u64; DROP_REASONS],
    /// Names of the keys of `rows`, per (tgid, db, cf).
    pub names: HashMap<(u32, u64, u64), KeyNames>,
}

/// One row of the per-database / per-family split: an operation class on
/// one column family of one database (`cf` None: the whole database).
#[derive(Clone, Debug, PartialEq)]
pub struct CfRow {
    pub db: String,
    pub cf: Option<String>,
    /// `row.name` is the operation class.
    pub row: Row,
}

/// `rocksdb --by`: how the table splits the classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Per database and column family.
    Cf,
    /// Per database.
    Db,
}

impl Split {
    pub fn parse(s: &str) -> std::result::Result<Split, String> {
        match s {
            "cf" => Ok(Split::Cf),
            "db" => Ok(Split::Db),
            _ => Err(format!("`{s}`: use cf (database and column family) or db")),
        }
    }
}

/// How a column family reads when the call named none: the default family
/// for reads and writes of one key, "*" for what spans families (batches,
/// transactions as a whole).
fn cf_label(cf: &Option<Arc<str>>, op: Op) -> String {
    match cf {
        Some(n) => n.to_string(),
        None => no_family(op).into(),
    }
}

/// `cf_label` of a call that named no family (the slow log says the same).
pub fn no_family(op: Op) -> &'static str {
    if matches!(op, Op::Write | Op::TxnBegin | Op::TxnCommit) {
        "*"
    } else {
        "default"
    }
}

/// What the aggregator needs to know of one traced function.
#[derive(Clone, Copy, Debug)]
pub struct Traced {
    pub id: usize,
    pub op: Op,
    /// The cost class of its probe (see `node::insn`).
    pub class: HitClass,
}

/// Key of the counters: the kernel's rows (process, database handle,
/// family handle, function id) while their session lasts; then, once the
/// handles mean nothing, the names they had.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Live(u32, u64, u64, usize),
    Ended(Arc<str>, Option<Arc<str>>, usize),
}

impl Key {
    fn func(&self) -> usize {
        match self {
            Key::Live(.., f) | Key::Ended(.., f) => *f,
        }
    }
}

/// A key's (database, family) names; the family is None when the call
/// named none.
type Label = (Arc<str>, Option<Arc<str>>);

/// The names of live keys, as far as resolved.
#[derive(Default)]
struct Labels(HashMap<(u32, u64, u64), Label>);

impl Labels {
    fn update(&mut self, names: &HashMap<(u32, u64, u64), KeyNames>) {
        for (&(tgid, db, cf), n) in names {
            let e = self
                .0
                .entry((tgid, db, cf))
                .or_insert_with(|| unresolved(db, cf));
            // A name once confirmed stays (its handle is still open).
            if let Some(d) = &n.db {
                e.0 = d.as_str().into();
            }
            if let Some(c) = &n.cf {
                e.1 = Some(c.as_str().into());
            }
        }
    }

    /// (database, family) of a key; the family is None when the call
    /// named none.
    fn of(&self, k: &Key) -> Label {
        match k {
            Key::Live(tgid, db, cf, _) => self
                .0
                .get(&(*tgid, *db, *cf))
                .cloned()
                .unwrap_or_else(|| unresolved(*db, *cf)),
            Key::Ended(db, cf, _) => (db.clone(), cf.clone()),
        }
    }

    fn project(&self, k: &Key) -> Key {
        let (db, cf) = self.of(k);
        Key::Ended(db, cf, k.func())
    }
}

fn unresolved(db: u64, cf: u64) -> Label {
    (
        format!("db@{db:#x}").into(),
        (cf != 0).then(|| format!("cf@{cf:#x}").into()),
    )
}

/// Whether a database or family name of a `CfRow` is a handle no name was
/// confirmed for (`db@0x..`, `cf@0x..`: its address), for views that mark
/// those rows.
pub fn is_unresolved(name: &str) -> bool {
    name.starts_with("db@0x") || name.starts_with("cf@0x")
}

/// Turns cumulative samples into interval and whole-capture reports. A
/// capture may span several processes (restarts of the target): each one is
/// a session with maps of its own, whose counters start from zero; ended
/// sessions are summed per function (their database handles are gone).
pub struct Aggregator {
    counters: Cumulative<Key, OpStats>,
    labels: Labels,
    ops: BTreeSet<Op>,
    funcs: BTreeSet<usize>,
    by_function: bool,
    /// GET rows carry bytes: the programs read value sizes.
    value_sizes: bool,
    pid: Option<u32>,
    start: Instant,
    last: Instant,
    drops: Drops,
    /// Nested stand-in calls (DROP_NESTED) up to the last interval.
    nested_seen: u64,
    /// Slow events dropped between the ring buffer and the output.
    pub user_lost: u64,
    /// Slow events printed.
    pub slow_events: u64,
    left_out: Vec<LeftOut>,
    gaps: Gaps,
    /// Cost class of each traced function, for the overhead estimate.
    classes: HashMap<usize, HitClass>,
    /// Attached time and, under a budget, the attached share per interval.
    pub duty: DutyCycle,
}

impl Aggregator {
    /// `value_sizes`: GET rows carry bytes (the programs read them).
    pub fn new(by_function: bool, value_sizes: bool) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            counters: Cumulative::default(),
            labels: Labels::default(),
            ops: BTreeSet::new(),
            funcs: BTreeSet::new(),
            by_function,
            value_sizes,
            pid: None,
            start: now,
            last: now,
            drops: Drops::default(),
            nested_seen: 0,
            user_lost: 0,
            slow_events: 0,
            left_out: Vec::new(),
            gaps: Gaps::default(),
            classes: HashMap::new(),
            duty: DutyCycle::new(PerHit::default(), None, now),
        }
    }

    /// When the capture started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Per-hit costs (calibrated or default) and the budget, if any.
    pub fn set_overhead(&mut self, per_hit: PerHit, budget_pct: Option<f64>) {
        self.duty = DutyCycle::new(per_hit, budget_pct, self.start);
    }

    /// Probe hits per cost class: the traced calls in `per_key`, and
    /// `nested` stand-in calls that were no operation (emulated by
    /// construction: a stand-in is only planned where it is).
    fn hits(&self, per_key: &[(Key, OpStats)], nested: u64) -> Hits {
        let mut h = Hits::default();
        h.add(HitClass::Emulated, nested);
        for (k, st) in per_key {
            let class = self
                .classes
                .get(&k.func())
                .copied()
                .unwrap_or(HitClass::SingleStepped);
            h.add(class, st.count);
        }
        h
    }

    /// A session starts: `traced` is attached in process `pid` (None: every
    /// process of the file), `left_out` deliberately not.
    pub fn begin(&mut self, traced: &[Traced], left_out: &[LeftOut], pid: Option<u32>) {
        self.ops.extend(traced.iter().map(|t| t.op));
        self.funcs.extend(traced.iter().map(|t| t.id));
        for t in traced {
            // The same function in two files: the dearer class.
            let e = self.classes.entry(t.id).or_insert(t.class);
            *e = (*e).max(t.class);
        }
        // Called once the session's probes are attached.
        self.duty.resume(Instant::now());
        for l in left_out {
            if !self.left_out.contains(l) {
                self.left_out.push(l.clone());
            }
        }
        self.pid = pid;
    }

    /// The session ends: `rest` are its reads not yet folded in, the last
    /// one taken while every probe was still attached.
    pub fn end(&mut self, rest: &[Sample]) {
        for s in rest {
            let _ = self.interval(s, Instant::now());
        }
        let labels = &self.labels;
        self.counters.end_session(|k| labels.project(k));
        self.labels = Labels::default();
        self.drops.end_session();
    }

    /// The target was traced again after `g`.
    pub fn gap(&mut self, g: Gap) {
        self.gaps.push(g);
    }

    fn rows(&self, per_func: &HashMap<usize, OpStats>, secs: f64) -> (Vec<Row>, Vec<Row>) {
        let mut rows = Vec::new();
        for &op in &self.ops {
            let mut s = OpStats::default();
            for (id, st) in per_func {
                if FUNCS[*id].op == op {
                    s.add(st);
                }
            }
            rows.push(s.row(
                op.name(),
                secs,
                op.is_read(),
                op.has_bytes(self.value_sizes),
            ));
        }
        let mut functions = Vec::new();
        if self.by_function {
            for &id in &self.funcs {
                let d = &FUNCS[id];
                let s = per_func.get(&id).cloned().unwrap_or_default();
                functions.push(s.row(
                    d.name,
                    secs,
                    d.op.is_read(),
                    d.op.has_bytes(self.value_sizes),
                ));
            }
        }
        (rows, functions)
    }

    /// Rows per (database, family, class) and per (database, class).
    fn split(&self, per_key: &[(Key, OpStats)], secs: f64) -> (Vec<CfRow>, Vec<CfRow>) {
        let mut cf: BTreeMap<(Arc<str>, String, Op), OpStats> = BTreeMap::new();
        let mut db: BTreeMap<(Arc<str>, Op), OpStats> = BTreeMap::new();
        for (k, st) in per_key {
            let op = FUNCS[k.func()].op;
            let (d, c) = self.labels.of(k);
            cf.entry((d.clone(), cf_label(&c, op), op))
                .or_default()
                .add(st);
            db.entry((d, op)).or_default().add(st);
        }
        let sizes = self.value_sizes;
        let row = |op: Op, st: &OpStats| st.row(op.name(), secs, op.is_read(), op.has_bytes(sizes));
        let by_cf = cf
            .iter()
            .map(|((d, c, op), st)| CfRow {
                db: d.to_string(),
                cf: Some(c.clone()),
                row: row(*op, st),
            })
            .collect();
        let by_db = db
            .iter()
            .map(|((d, op), st)| CfRow {
                db: d.to_string(),
                cf: None,
                row: row(*op, st),
            })
            .collect();
        (by_cf, by_db)
    }

    fn report(&self, per_key: Vec<(Key, OpStats)>, secs: f64, is_final: bool) -> Report {
        let mut per_func: HashMap<usize, OpStats> = HashMap::new();
        for (k, st) in &per_key {
            per_func.entry(k.func()).or_default().add(st);
        }
        let (rows, functions) = self.rows(&per_func, secs);
        let (by_cf, by_db) = self.split(&per_key, secs);
        let d: Vec<u64> = (0..3).map(|i| self.drops.total(i)).collect();
        Report {
            layer: "rocksdb",
            timestamp: crate::clock::now_rfc3339(),
            pid: self.pid,
            interval_secs: secs,
            elapsed_secs: self.start.elapsed().as_secs_f64(),
            is_final,
            rows,
            functions,
            by_cf,
            by_db,
            lost_events: d[0] + self.user_lost,
            slow_events: self.slow_events,
            dropped: d[1] + d[2],
            left_out: if is_final {
                self.left_out.clone()
            } else {
                Vec::new()
            },
            gaps: if is_final {
                self.gaps.all()
            } else {
                Vec::new()
            },
            overhead: None,
        }
    }

    /// The report of the interval that `s` closes.
    pub fn interval(&mut self, s: &Sample, now: Instant) -> Report {
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.labels.update(&s.names);
        let read = s
            .rows
            .iter()
            .map(|k| (Key::Live(k.tgid, k.db, k.cf, k.func), &k.stats));
        let per_key = self.counters.interval(read);
        self.drops.set(s.drops);
        let nested = self.drops.total(DROP_NESTED);
        let hits = self.hits(&per_key, nested - self.nested_seen);
        self.nested_seen = nested;
        let mut r = self.report(per_key, secs, false);
        r.gaps = self.gaps.take_new();
        r.overhead = Some(self.duty.interval(hits, now));
        r
    }

    /// The report of the whole capture so far, every session included.
    pub fn whole(&self) -> Report {
        let labels = &self.labels;
        let per_key: Vec<(Key, OpStats)> = self
            .counters
            .whole(|k| labels.project(k))
            .into_iter()
            .collect();
        let secs = self.start.elapsed().as_secs_f64();
        let hits = self.hits(&per_key, self.drops.total(DROP_NESTED));
        let mut r = self.report(per_key, secs, true);
        r.overhead = Some(self.duty.whole(hits));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn traced(names: &[&str]) -> Vec<Traced> {
        names
            .iter()
            .map(|n| {
                let id = FUNCS.iter().position(|f| f.name == *n).unwrap();
                Traced {
                    id,
                    op: FUNCS[id].op,
                    class: HitClass::Emulated,
                }
            })
            .collect()
    }

    fn ks(func: &str, db: u64, count: u64, max_ns: u64) -> KeyStats {
        let mut s = OpStats::default();
        for _ in 0..count {
            s.count += 1;
            s.total_ns += 1000;
            s.hist.record(1000);
        }
        s.max_ns = max_ns;
        KeyStats {
            tgid: 1,
            db,
            cf: 0,
            func: FUNCS.iter().position(|f| f.name == func).unwrap(),
            stats: s,
        }
    }

    #[test]
    fn intervals_difference_and_the_summary_accumulates() {
        let plan = traced(&["rocksdb_get_pinned_cf", "rocksdb_get", "rocksdb_put"]);
        let mut agg = Aggregator::new(true, true);
        agg.begin(&plan, &[], Some(1));
        let t0 = agg.start;
        // Two databases hit the same function: rows merge per class.
        let s1 = Sample {
            rows: vec![
                ks("rocksdb_get_pinned_cf", 0xa, 10, 5000),
                ks("rocksdb_get_pinned_cf", 0xb, 5, 7000),
            ],
            drops: [0; DROP_REASONS],
            ..Default::default()
        };
        let r1 = agg.interval(&s1, t0 + Duration::from_secs(1));
        let get = r1.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 15);
        assert_eq!(get.max_us, Some(7.0));
        assert_eq!(r1.rows.iter().find(|r| r.name == "PUT").unwrap().count, 0);

        let s2 = Sample {
            rows: vec![
                ks("rocksdb_get_pinned_cf", 0xa, 12, 2000),
                ks("rocksdb_get_pinned_cf", 0xb, 5, 0),
                ks("rocksdb_put", 0xa, 3, 9000),
            ],
            drops: [2, 0, 0, 0],
            ..Default::default()
        };
        let r2 = agg.interval(&s2, t0 + Duration::from_secs(2));
        let get = r2.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 2);
        assert_eq!(get.qps, 2.0);
        assert_eq!(r2.lost_events, 2);
        let f = r2
            .functions
            .iter()
            .find(|r| r.name == "rocksdb_put")
            .unwrap();
        assert_eq!(f.count, 3);

        let w = agg.whole();
        assert!(w.is_final);
        let get = w.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 17);
        assert_eq!(
            get.max_us,
            Some(7.0),
            "whole-capture max is the max of the intervals"
        );
        assert_eq!(w.rows.iter().find(|r| r.name == "PUT").unwrap().count, 3);
    }

    #[test]
    fn sessions_add_up_even_when_the_pid_repeats() {
        let plan = traced(&["rocksdb_get_pinned_cf", "rocksdb_put"]);
        let mut agg = Aggregator::new(false, true);
        agg.begin(&plan, &[], Some(1));
        let t0 = agg.start;
        let s1 = Sample {
            rows: vec![ks("rocksdb_get_pinned_cf", 0xa, 10, 5000)],
            drops: [1, 0, 0, 0],
            ..Default::default()
        };
        agg.interval(&s1, t0 + Duration::from_secs(1));
        let last = Sample {
            rows: vec![ks("rocksdb_get_pinned_cf", 0xa, 12, 6000)],
            drops: [2, 0, 0, 0],
            ..Default::default()
        };
        agg.end(&[last]);
        // The restarted process got the same PID: its maps start from zero.
        agg.begin(&plan, &[], Some(1));
        agg.gap(Gap {
            old_pid: 1,
            new_pid: 1,
            secs: 2.5,
            ..Gap::default()
        });
        let s2 = Sample {
            rows: vec![ks("rocksdb_get_pinned_cf", 0xa, 3, 1000)],
            drops: [1, 0, 0, 0],
            ..Default::default()
        };
        let r = agg.interval(&s2, t0 + Duration::from_secs(5));
        let get = r.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(
            get.count, 3,
            "a fresh session is not differenced against the old one"
        );
        assert_eq!(
            r.gaps.len(),
            1,
            "the first interval after a restart shows the gap"
        );
        assert_eq!(r.lost_events, 3, "lost events add up across sessions");
        let r = agg.interval(&s2, t0 + Duration::from_secs(6));
        assert!(r.gaps.is_empty(), "...only once");
        let w = agg.whole();
        let get = w.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 15);
        assert_eq!(get.max_us, Some(6.0));
        assert_eq!(w.gaps.len(), 1);
    }

    #[test]
    fn names_are_unique_and_classes_complete() {
        let names: BTreeSet<&str> = FUNCS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FUNCS.len());
        for op in Op::ALL {
            assert!(FUNCS.iter().any(|f| f.op == op), "{op:?}");
        }
    }

    #[test]
    fn by_cf_names_resolved_handles_and_keeps_them_across_sessions() {
        let plan = traced(&["rocksdb_get_pinned_cf", "rocksdb_get", "rocksdb_write"]);
        let mut agg = Aggregator::new(false, true);
        agg.begin(&plan, &[], Some(1));
        let t0 = agg.start;
        let on = |func, db, cf, n| {
            let mut k = ks(func, db, n, 1000);
            k.cf = cf;
            k
        };
        let mut names = HashMap::new();
        let named = |db: &str, cf: Option<&str>| KeyNames {
            db: Some(db.into()),
            cf: cf.map(Into::into),
        };
        names.insert((1, 0xa, 0xc1), named("/d/one", Some("cells")));
        names.insert((1, 0xa, 0), named("/d/one", None));
        // A family handle the tool could not confirm.
        names.insert((1, 0xa, 0xc2), named("/d/one", None));
        let s1 = Sample {
            rows: vec![
                on("rocksdb_get_pinned_cf", 0xa, 0xc1, 4),
                on("rocksdb_get_pinned_cf", 0xa, 0xc2, 2),
                on("rocksdb_get", 0xa, 0, 3),
                on("rocksdb_write", 0xa, 0, 1),
                // No name read for this database at all.
                on("rocksdb_get", 0xb, 0, 5),
            ],
            drops: [0; DROP_REASONS],
            names,
        };
        let r = agg.interval(&s1, t0 + Duration::from_secs(1));
        let got: Vec<(String, String, String, u64)> = r
            .by_cf
            .iter()
            .map(|c| {
                (
                    c.db.clone(),
                    c.cf.clone().unwrap(),
                    c.row.name.clone(),
                    c.row.count,
                )
            })
            .collect();
        let want = [
            ("/d/one", "*", "WRITE", 1),
            ("/d/one", "cells", "GET", 4),
            ("/d/one", "cf@0xc2", "GET", 2),
            ("/d/one", "default", "GET", 3),
            ("db@0xb", "default", "GET", 5),
        ];
        let want: Vec<(String, String, String, u64)> = want
            .iter()
            .map(|(d, c, o, n)| (d.to_string(), c.to_string(), o.to_string(), *n))
            .collect();
        assert_eq!(got, want);
        let one: Vec<u64> = r
            .by_db
            .iter()
            .filter(|c| c.db == "/d/one")
            .map(|c| c.row.count)
            .collect();
        assert_eq!(one, [9, 1], "GET then WRITE of /d/one");

        // The process restarts: new handles, same names; totals merge.
        agg.end(&[]);
        agg.begin(&plan, &[], Some(2));
        let mut names = HashMap::new();
        names.insert((2, 0xe, 0xf1), named("/d/one", Some("cells")));
        let mut k = on("rocksdb_get_pinned_cf", 0xe, 0xf1, 6);
        k.tgid = 2;
        let s2 = Sample {
            rows: vec![k],
            drops: [0; DROP_REASONS],
            names,
        };
        agg.interval(&s2, t0 + Duration::from_secs(2));
        let w = agg.whole();
        let cells = w
            .by_cf
            .iter()
            .find(|c| c.cf.as_deref() == Some("cells"))
            .unwrap();
        assert_eq!((cells.db.as_str(), cells.row.count), ("/d/one", 10));
        assert_eq!(w.by_cf.len(), 5);
    }
}
