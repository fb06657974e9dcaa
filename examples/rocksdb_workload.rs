//! The bundled RocksDB workload: the embedded default target of `make demo`
//! and the ground truth of the integration tests.
//!
//! It opens an OptimisticTransactionDB with two column families through the
//! `ckb-rocksdb` crate (RocksDB 9.10 linked statically, exactly as CKB does),
//! then runs a scripted round of RocksDB C API calls whose number, bytes and
//! misses are known exactly, and prints them as one JSON line per run.
//!
//! ```text
//! rocksdb_workload [--db DIR] [--rounds N] [--secs S] [--pause-ms MS]
//!                  [--rate CALLS_PER_SEC] [--slow-batch ENTRIES] [--wait-stdin]
//!                  [--burst-mb N] [--burst-at S] [--burst-ramp R]
//!                  [--small-memtables] [--stats]
//!                  [--sync-writes] [--cf-db2 DIR]
//! ```
//! `--wait-stdin`: print `READY <pid>`, wait for a line on stdin, run, print
//! the counts, then wait for a second line (or EOF) before exiting, so a tracer
//! can attach before and read after. `--secs S` repeats rounds for S seconds
//! (0 = until killed) instead of `--rounds`. `--rate N` paces the rounds to
//! at most N calls a second on average (for benchmarks at a set rate).
//!
//! Background work on demand: `--burst-mb N` writes N MiB of 1 KiB values in
//! batches of 256 (`rocksdb_write`) after the rounds, or `--burst-at S`
//! seconds into them (the rounds then go on: the quiet phase before is the
//! baseline, the burst the anomaly). `--burst-ramp R` spreads that burst over
//! R seconds between the rounds, its rate rising linearly from nothing ((t/R)²
//! of it written t seconds in): an incident whose first interval is not a
//! clean step, as real ones rarely are. `--small-memtables` makes that cause
//! flushes, compactions and write stalls quickly: 256 KiB memtables, level-0
//! compaction at 2 files, slowdown at 3, stop at 4. With any of these (or
//! `--stats`) RocksDB statistics are on, the run waits for background work
//! to settle before printing, and the JSON gains `"rocksdb"`: RocksDB's own
//! count of flushes, compactions (jobs, not trivial moves) and stall time.
//! The burst's start and end go to stderr as `BURST start|done <unix ms>`.
//!
//! `--sync-writes`: the rounds' `rocksdb_put`/`rocksdb_put_cf` calls wait
//! for their WAL record to reach the disk (WriteOptions sync = true), so
//! every one of them makes an fdatasync: the node's write latency then
//! follows the disk's (the fsync cause of the anomaly detector). Same calls,
//! same counts.
//!
//! `--cf-db2 DIR`: a second database (a plain `DB`, families `default`,
//! `alpha`, `beta`) in DIR gets a scripted share of every round, and the
//! JSON gains `"by_cf"`: the calls per (database, column family, function)
//! of both databases, databases named by the directory they were opened
//! with, "*" for calls that span families (batches, transactions as a
//! whole). The per-function `calls` include the second database's.

use std::collections::BTreeMap;
use std::io::{BufRead, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ckb_rocksdb::ops::{GetProperty, GetPropertyCF};
use ckb_rocksdb::prelude::*;
use ckb_rocksdb::{
    ColumnFamilyDescriptor, OptimisticTransactionDB, OptimisticTransactionOptions, WriteBatch,
    WriteOptions, DB,
};

const CF: &str = "cells";
const KEYS: usize = 100;
const VAL: usize = 100;
const TXN_VAL: usize = 200;
const BATCH_VAL: usize = 64;

/// What the workload did, counted per RocksDB C function.
#[derive(Default)]
struct Counts {
    calls: BTreeMap<&'static str, u64>,
    put_bytes: u64,
    get_bytes: u64,
    get_misses: u64,
    /// The batches' data sizes (`rocksdb_writebatch_data`) over
    /// `rocksdb_write` calls.
    write_bytes: u64,
}

impl Counts {
    fn call(&mut self, func: &'static str) {
        *self.calls.entry(func).or_default() += 1;
    }
    fn put(&mut self, func: &'static str, key: &[u8], val: &[u8]) {
        self.call(func);
        self.put_bytes += (key.len() + val.len()) as u64;
    }
    fn merge(&mut self, o: Counts) {
        for (k, v) in o.calls {
            *self.calls.entry(k).or_default() += v;
        }
        self.put_bytes += o.put_bytes;
        self.get_bytes += o.get_bytes;
        self.get_misses += o.get_misses;
        self.write_bytes += o.write_bytes;
    }
    /// One `rocksdb_write` of `batch`.
    fn write(&mut self, batch: &WriteBatch) {
        self.call("rocksdb_write");
        self.write_bytes += batch.size_in_bytes() as u64;
    }
    fn get(&mut self, func: &'static str, found: Option<usize>) {
        self.call(func);
        match found {
            Some(n) => self.get_bytes += n as u64,
            None => self.get_misses += 1,
        }
    }
    fn json(&self, rounds: u64, elapsed: Duration, rocks: Option<&RocksCounts>) -> String {
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        let rocks = rocks
            .map(|r| {
                format!(
                    ",\"rocksdb\":{{\"flushes\":{},\"compactions\":{},\"stall_micros\":{},\"stalls\":{},\"settled\":{}}}",
                    r.flushes, r.compactions, r.stall_micros, r.stalls, r.settled
                )
            })
            .unwrap_or_default();
        format!(
            "{{\"pid\":{},\"rounds\":{rounds},\"elapsed_us\":{},\"calls\":{{{}}},\"put_bytes\":{},\"get_bytes\":{},\"get_misses\":{},\"write_bytes\":{}{rocks}}}",
            std::process::id(),
            elapsed.as_micros(),
            calls.join(","),
            self.put_bytes,
            self.get_bytes,
            self.get_misses,
            self.write_bytes
        )
    }
}

fn key(round: u64, kind: &str, i: usize) -> Vec<u8> {
    format!("{kind}-{round:08}-{i:05}").into_bytes()
}

fn check<T>(r: Result<T, ckb_rocksdb::Error>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("rocksdb_workload: rocksdb error: {e}");
        std::process::exit(1)
    })
}

/// One scripted round. Every call is counted where it is made.
fn round(db: &OptimisticTransactionDB, r: u64, wo: &WriteOptions, c: &mut Counts) {
    let cf = db.cf_handle(CF).expect("column family opened above");
    let val = vec![b'v'; VAL];
    let tval = vec![b't'; TXN_VAL];

    for i in 0..KEYS {
        let k = key(r, "d", i);
        check(db.put_opt(&k, &val, wo));
        c.put("rocksdb_put", &k, &val);
        let k = key(r, "c", i);
        // ckb-rocksdb's DeleteCF also names a method put_cf_opt: say which.
        check(ckb_rocksdb::ops::PutCF::put_cf_opt(db, cf, &k, &val, wo));
        c.put("rocksdb_put_cf", &k, &val);
    }

    // Point reads: hits then misses, on each C entry point CKB can reach.
    for i in 0..KEYS {
        let v = check(db.get_pinned_cf(cf, key(r, "c", i)));
        c.get("rocksdb_get_pinned_cf", v.map(|v| v.len()));
    }
    for i in 0..20 {
        let v = check(db.get_pinned_cf(cf, key(r, "missing", i)));
        c.get("rocksdb_get_pinned_cf", v.map(|v| v.len()));
    }
    for i in 0..60 {
        let k = if i < 50 {
            key(r, "d", i)
        } else {
            key(r, "nope", i)
        };
        let v = check(db.get_pinned(k));
        c.get("rocksdb_get_pinned", v.map(|v| v.len()));
    }
    for i in 0..25 {
        let k = if i < 20 {
            key(r, "d", i)
        } else {
            key(r, "nope", i)
        };
        let v = check(db.get(k));
        c.get("rocksdb_get", v.map(|v| v.len()));
    }
    for i in 0..25 {
        let k = if i < 20 {
            key(r, "c", i)
        } else {
            key(r, "nope", i)
        };
        let v = check(db.get_cf(cf, k));
        c.get("rocksdb_get_cf", v.map(|v| v.len()));
    }

    // Optimistic transactions, the way CKB's store writes blocks.
    let wopts = WriteOptions::default();
    let topts = OptimisticTransactionOptions::new();
    for t in 0..10 {
        let txn = db.transaction(&wopts, &topts);
        c.call("rocksdb_optimistictransaction_begin");
        for i in 0..10 {
            let k = key(r, &format!("t{t}"), i);
            check(txn.put_cf(cf, &k, &tval));
            c.put("rocksdb_transaction_put_cf", &k, &tval);
        }
        for i in 0..6 {
            // five reads of the transaction's own writes, one miss
            let k = if i < 5 {
                key(r, &format!("t{t}"), i)
            } else {
                key(r, "nope", i)
            };
            let v = check(txn.get_pinned_cf(cf, k));
            c.get("rocksdb_transaction_get_pinned_cf", v.map(|v| v.len()));
        }
        for i in 0..2 {
            let v = check(txn.get_for_update_cf(cf, key(r, "c", 50 + i)));
            c.get("rocksdb_transaction_get_for_update_cf", v.map(|v| v.len()));
        }
        check(txn.delete_cf(cf, key(r, &format!("t{t}"), 9)));
        c.call("rocksdb_transaction_delete_cf");
        if t < 2 {
            // A transaction's iterator sees its own writes (RocksDB's
            // BaseDeltaIterator over the database's iterator).
            let mut it = check(txn.get_raw_iter_cf(cf, &ReadOptions::default()));
            c.call("rocksdb_transaction_create_iterator_cf");
            it.seek(key(r, &format!("t{t}"), 0));
            c.call("rocksdb_iter_seek");
            for _ in 0..5 {
                if !it.valid() {
                    break;
                }
                it.next();
                c.call("rocksdb_iter_next");
            }
        }
        check(txn.commit());
        c.call("rocksdb_transaction_commit");
    }

    for i in 0..10 {
        check(db.delete_cf(cf, key(r, "c", 90 + i)));
        c.call("rocksdb_delete_cf");
        check(db.delete(key(r, "d", 90 + i)));
        c.call("rocksdb_delete");
    }

    for b in 0..5 {
        let mut batch = WriteBatch::default();
        for i in 0..20 {
            check(batch.put_cf(cf, key(r, &format!("b{b}"), i), vec![b'b'; BATCH_VAL]));
        }
        check(db.write(&batch));
        c.write(&batch);
    }

    // Range scans: create, seek, then walk while valid.
    let ropts = ReadOptions::default();
    for s in 0..10 {
        let mut it = check(db.get_raw_iter_cf(cf, &ropts));
        c.call("rocksdb_create_iterator_cf");
        it.seek(key(r, "c", s * 5));
        c.call("rocksdb_iter_seek");
        for _ in 0..20 {
            if !it.valid() {
                break;
            }
            it.next();
            c.call("rocksdb_iter_next");
        }
    }
    for _ in 0..5 {
        let mut it = db.get_raw_iter(&ropts);
        c.call("rocksdb_create_iterator");
        it.seek_to_first();
        c.call("rocksdb_iter_seek_to_first");
    }
}

/// The column family each of `round`'s functions works on, for the
/// `by_cf` ground truth of the first database ("*": spans families).
fn first_db_cf(func: &str) -> &'static str {
    match func {
        "rocksdb_put"
        | "rocksdb_get_pinned"
        | "rocksdb_get"
        | "rocksdb_delete"
        | "rocksdb_create_iterator"
        | "rocksdb_iter_seek_to_first" => "default",
        "rocksdb_optimistictransaction_begin" | "rocksdb_transaction_commit" | "rocksdb_write" => {
            "*"
        }
        _ => CF,
    }
}

/// Calls on the second database (`--cf-db2`), per (family, function).
#[derive(Default)]
struct SecondDb {
    dir: String,
    calls: BTreeMap<(&'static str, &'static str), u64>,
}

impl SecondDb {
    fn call(&mut self, c: &mut Counts, cf: &'static str, func: &'static str) {
        c.call(func);
        *self.calls.entry((cf, func)).or_default() += 1;
    }

    /// `"by_cf"`: both databases' calls per (db, cf, function).
    fn json(&self, first: &str, c: &Counts) -> String {
        let mut rows = Vec::new();
        let mut first_calls: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (func, n) in &c.calls {
            let second: u64 = self
                .calls
                .iter()
                .filter(|((_, f), _)| f == func)
                .map(|(_, n)| n)
                .sum();
            if *n > second {
                *first_calls.entry((first_db_cf(func), func)).or_default() += n - second;
            }
        }
        for (dir, calls) in [(first, &first_calls), (self.dir.as_str(), &self.calls)] {
            for ((cf, func), n) in calls {
                rows.push(format!(
                    "{{\"db\":{dir:?},\"cf\":{cf:?},\"func\":{func:?},\"count\":{n}}}"
                ));
            }
        }
        format!(",\"by_cf\":[{}]", rows.join(","))
    }
}

/// The second database's share of a round: each family a known number of
/// point writes, reads, deletes and a scan.
fn second_db_round(db: &DB, r: u64, c: &mut Counts, s: &mut SecondDb) {
    let alpha = db.cf_handle("alpha").expect("column family opened above");
    let beta = db.cf_handle("beta").expect("column family opened above");
    let val = vec![b'w'; VAL];
    for i in 0..30 {
        let k = key(r, "a", i);
        check(db.put_cf(alpha, &k, &val));
        c.put_bytes += (k.len() + val.len()) as u64;
        s.call(c, "alpha", "rocksdb_put_cf");
    }
    for i in 0..12 {
        let k = key(r, "b", i);
        check(db.put_cf(beta, &k, &val));
        c.put_bytes += (k.len() + val.len()) as u64;
        s.call(c, "beta", "rocksdb_put_cf");
    }
    for i in 0..7 {
        let k = key(r, "x", i);
        check(db.put(&k, &val));
        c.put_bytes += (k.len() + val.len()) as u64;
        s.call(c, "default", "rocksdb_put");
    }
    for i in 0..17 {
        // 15 hits, 2 misses (keys of beta looked up in alpha).
        let k = if i < 15 {
            key(r, "a", i)
        } else {
            key(r, "b", i)
        };
        let v = check(db.get_pinned_cf(alpha, k));
        match v {
            Some(v) => c.get_bytes += v.len() as u64,
            None => c.get_misses += 1,
        }
        s.call(c, "alpha", "rocksdb_get_pinned_cf");
    }
    for i in 0..4 {
        check(db.delete_cf(beta, key(r, "b", i)));
        s.call(c, "beta", "rocksdb_delete_cf");
    }
    let ropts = ReadOptions::default();
    for _ in 0..3 {
        let mut it = check(db.get_raw_iter_cf(beta, &ropts));
        s.call(c, "beta", "rocksdb_create_iterator_cf");
        it.seek_to_first();
        s.call(c, "beta", "rocksdb_iter_seek_to_first");
        for _ in 0..5 {
            if !it.valid() {
                break;
            }
            it.next();
            s.call(c, "beta", "rocksdb_iter_next");
        }
    }
}

fn open_second_db(dir: &std::path::Path) -> DB {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs: Vec<ColumnFamilyDescriptor> = ["default", "alpha", "beta"]
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()))
        .collect();
    check(DB::open_cf_descriptors(&opts, dir, cfs))
}

fn slow_batch(db: &OptimisticTransactionDB, entries: usize, c: &mut Counts) {
    let cf = db.cf_handle(CF).expect("column family opened above");
    let mut batch = WriteBatch::default();
    let v = vec![b's'; 1024];
    for i in 0..entries {
        check(batch.put_cf(cf, format!("slow-{i:09}"), &v));
    }
    check(db.write(&batch));
    c.write(&batch);
}

/// RocksDB's own account of its background work (statistics), the ground
/// truth for the background layer.
struct RocksCounts {
    /// FlushJob runs that wrote a level-0 file (`rocksdb.db.flush.micros`).
    flushes: u64,
    /// CompactionJob runs (`rocksdb.compaction.times.micros`).
    compactions: u64,
    /// Time writers were delayed or stopped (`rocksdb.stall.micros`).
    stall_micros: u64,
    /// DelayWrite calls that did delay (`rocksdb.db.write.stall`).
    stalls: u64,
    /// Background work had finished when these were read.
    settled: bool,
}

/// `COUNT : N` of a ticker or histogram line of RocksDB's statistics string.
fn stat_count(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split("COUNT : ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rocks_counts(opts: &Options, settled: bool) -> RocksCounts {
    let s = opts.get_statistics().unwrap_or_default();
    RocksCounts {
        flushes: stat_count(&s, "rocksdb.db.flush.micros"),
        compactions: stat_count(&s, "rocksdb.compaction.times.micros"),
        stall_micros: stat_count(&s, "rocksdb.stall.micros"),
        stalls: stat_count(&s, "rocksdb.db.write.stall"),
        settled,
    }
}

/// Waits until no flush or compaction runs or is pending, seen three times
/// in a row (a finished flush may schedule a compaction). False after 120 s.
fn settle(db: &OptimisticTransactionDB) -> bool {
    let cf = db.cf_handle(CF).expect("column family opened above");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet = 0;
    while Instant::now() < deadline {
        let busy = [
            "rocksdb.num-running-flushes",
            "rocksdb.num-running-compactions",
        ]
        .iter()
        .map(|p| check(db.property_int_value(p)).unwrap_or(0))
        .chain(
            [
                "rocksdb.mem-table-flush-pending",
                "rocksdb.compaction-pending",
            ]
            .iter()
            .flat_map(|p| {
                [
                    check(db.property_int_value(p)).unwrap_or(0),
                    check(db.property_int_value_cf(cf, p)).unwrap_or(0),
                ]
            }),
        )
        .sum::<u64>();
        quiet = if busy == 0 { quiet + 1 } else { 0 };
        if quiet >= 3 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A write burst of `total` 1 KiB values under scattered keys, written in
/// batches of 256 so memtables fill, flush, and level-0 files overlap and
/// need compaction; all at once or, ramping, a growing share at a time.
struct Burst {
    total: u64,
    done: u64,
    started: bool,
}

impl Burst {
    fn new(mb: u64) -> Burst {
        Burst {
            total: mb * 1024,
            done: 0,
            started: false,
        }
    }

    fn finished(&self) -> bool {
        self.done >= self.total
    }

    /// Writes until `upto` values of the burst are written.
    fn write_up_to(&mut self, db: &OptimisticTransactionDB, upto: u64, c: &mut Counts) {
        if self.finished() {
            return;
        }
        let cf = db.cf_handle(CF).expect("column family opened above");
        if !self.started {
            self.started = true;
            eprintln!("BURST start {}", unix_ms());
        }
        let v = vec![b'B'; 1024];
        let upto = upto.min(self.total);
        while self.done < upto {
            let mut batch = WriteBatch::default();
            for _ in 0..256.min(upto - self.done) {
                // A multiplicative hash spreads keys over the whole key space.
                let k = format!(
                    "burst-{:016x}",
                    self.done.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                );
                check(batch.put_cf(cf, k, &v));
                self.done += 1;
            }
            check(db.write(&batch));
            c.write(&batch);
        }
        if self.finished() {
            eprintln!("BURST done {}", unix_ms());
        }
    }

    /// The share written `t` into a ramp of `ramp` seconds: (t/ramp)^2, so
    /// the write rate rises linearly from nothing.
    fn ramp_target(&self, t: Duration, ramp: u64) -> u64 {
        if ramp == 0 {
            return self.total;
        }
        let x = (t.as_secs_f64() / ramp as f64).min(1.0);
        (self.total as f64 * x * x) as u64
    }
}

/// Column-family options: RocksDB's defaults, or tiny memtables and
/// level-0 triggers that make background work and stalls come quickly.
fn cf_options(small: bool) -> Options {
    let mut o = Options::default();
    if small {
        o.set_write_buffer_size(256 * 1024);
        o.set_max_write_buffer_number(2);
        o.set_level_zero_file_num_compaction_trigger(2);
        o.set_level_zero_slowdown_writes_trigger(3);
        o.set_level_zero_stop_writes_trigger(4);
        o.set_target_file_size_base(512 * 1024);
        o.set_max_bytes_for_level_base(2 * 1024 * 1024);
    }
    o
}

struct Args {
    db: Option<PathBuf>,
    rounds: u64,
    secs: Option<u64>,
    pause_ms: u64,
    rate: u64,
    slow_batch: usize,
    wait_stdin: bool,
    burst_mb: u64,
    burst_at: Option<u64>,
    burst_ramp: u64,
    small_memtables: bool,
    stats: bool,
    sync_writes: bool,
    cf_db2: Option<PathBuf>,
    threads_at: Vec<u32>,
}

fn num(it: &mut impl Iterator<Item = String>, name: &str) -> u64 {
    it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        eprintln!("rocksdb_workload: {name} needs a number");
        std::process::exit(2)
    })
}

fn parse_args() -> Args {
    let mut a = Args {
        db: None,
        rounds: 1,
        secs: None,
        pause_ms: 0,
        rate: 0,
        slow_batch: 0,
        wait_stdin: false,
        burst_mb: 0,
        burst_at: None,
        burst_ramp: 0,
        small_memtables: false,
        stats: false,
        sync_writes: false,
        cf_db2: None,
        threads_at: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--db" => {
                a.db = Some(PathBuf::from(it.next().unwrap_or_else(|| {
                    eprintln!("rocksdb_workload: --db needs a directory");
                    std::process::exit(2)
                })))
            }
            "--rounds" => a.rounds = num(&mut it, "--rounds"),
            "--secs" => a.secs = Some(num(&mut it, "--secs")),
            "--pause-ms" => a.pause_ms = num(&mut it, "--pause-ms"),
            "--rate" => a.rate = num(&mut it, "--rate"),
            "--slow-batch" => a.slow_batch = num(&mut it, "--slow-batch") as usize,
            "--wait-stdin" => a.wait_stdin = true,
            "--burst-mb" => a.burst_mb = num(&mut it, "--burst-mb"),
            "--burst-at" => a.burst_at = Some(num(&mut it, "--burst-at")),
            "--burst-ramp" => a.burst_ramp = num(&mut it, "--burst-ramp"),
            "--small-memtables" => a.small_memtables = true,
            "--stats" => a.stats = true,
            "--sync-writes" => a.sync_writes = true,
            "--threads-at" => {
                let v = it.next().unwrap_or_default();
                a.threads_at = v.split(',').filter_map(|t| t.parse().ok()).collect();
                if a.threads_at.is_empty() {
                    eprintln!("rocksdb_workload: --threads-at needs thread ids, e.g. 70000,135536");
                    std::process::exit(2)
                }
            }
            "--cf-db2" => {
                a.cf_db2 = Some(PathBuf::from(it.next().unwrap_or_else(|| {
                    eprintln!("rocksdb_workload: --cf-db2 needs a directory");
                    std::process::exit(2)
                })))
            }
            "-h" | "--help" => {
                println!("usage: rocksdb_workload [--db DIR] [--rounds N] [--secs S] [--pause-ms MS] [--rate CALLS_PER_SEC] [--slow-batch ENTRIES] [--wait-stdin] [--burst-mb N] [--burst-at S] [--burst-ramp S] [--small-memtables] [--stats] [--sync-writes] [--cf-db2 DIR] [--threads-at TID,TID...]");
                std::process::exit(0)
            }
            other => {
                eprintln!("rocksdb_workload: unknown argument {other}");
                std::process::exit(2)
            }
        }
    }
    if a.burst_at.is_some() && a.burst_mb == 0 {
        eprintln!("rocksdb_workload: --burst-at needs --burst-mb");
        std::process::exit(2)
    }
    if a.burst_ramp > 0 && a.burst_at.is_none() {
        eprintln!("rocksdb_workload: --burst-ramp needs --burst-at");
        std::process::exit(2)
    }
    a.stats |= a.burst_mb > 0 || a.small_memtables;
    a
}

/// `--threads-at`: the rounds run at once in one thread per given thread
/// id (each made by setting `/proc/sys/kernel/ns_last_pid` just before it
/// is created: root only), `--rounds` each on keys of its own. Threads
/// with ids above 65,536, or two that collide in the tracer's per-thread
/// table (ids 65,536 apart), check that every call is still counted.
/// Prints the ids to stderr as `TIDS a,b,...`; returns the rounds made.
fn rounds_at(db: &OptimisticTransactionDB, args: &Args, wo: &WriteOptions, c: &mut Counts) -> u64 {
    use std::sync::mpsc;
    let mut made = Vec::new();
    std::thread::scope(|scope| {
        let mut gos = Vec::new();
        let (done_tx, done_rx) = mpsc::channel::<Counts>();
        for (i, &want) in args.threads_at.iter().enumerate() {
            let mut tries = 0;
            loop {
                tries += 1;
                if let Err(e) =
                    std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", want - 1))
                {
                    eprintln!("rocksdb_workload: --threads-at: ns_last_pid: {e} (needs root)");
                    std::process::exit(2)
                }
                let (tid_tx, tid_rx) = mpsc::channel::<u32>();
                let (go_tx, go_rx) = mpsc::channel::<bool>();
                let done = done_tx.clone();
                scope.spawn(move || {
                    let _ = tid_tx.send(unsafe { libc::gettid() } as u32);
                    if !go_rx.recv().unwrap_or(false) {
                        return;
                    }
                    let mut own = Counts::default();
                    for k in 0..args.rounds {
                        round(db, (i as u64 + 1) * 1_000_000 + k, wo, &mut own);
                    }
                    let _ = done.send(own);
                });
                let got = tid_rx.recv().unwrap_or(0);
                if got == want {
                    gos.push(go_tx);
                    made.push(got);
                    break;
                }
                let _ = go_tx.send(false);
                // Another process made while ns_last_pid pointed here (tests
                // run in parallel) may hold the id for a moment: wait and
                // try again, for up to ~5 s.
                std::thread::sleep(Duration::from_millis(50));
                if tries == 100 {
                    eprintln!(
                        "rocksdb_workload: --threads-at: thread id {want} is taken (got {got})"
                    );
                    std::process::exit(3)
                }
            }
        }
        drop(done_tx);
        for g in &gos {
            let _ = g.send(true);
        }
        for own in done_rx {
            c.merge(own);
        }
    });
    eprintln!(
        "TIDS {}",
        made.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    args.rounds * made.len() as u64
}

fn main() {
    let args = parse_args();
    let dir = args.db.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ckb-libbpf-workload-{}", std::process::id()))
    });
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    if args.stats {
        opts.enable_statistics();
    }
    if args.small_memtables {
        opts.set_max_background_jobs(2);
    }
    let cfs = vec![
        ColumnFamilyDescriptor::new("default", cf_options(args.small_memtables)),
        ColumnFamilyDescriptor::new(CF, cf_options(args.small_memtables)),
    ];
    let db: OptimisticTransactionDB = check(OptimisticTransactionDB::open_cf_descriptors(
        &opts, &dir, cfs,
    ));

    let db2 = args.cf_db2.as_deref().map(open_second_db);
    let mut second = SecondDb {
        dir: args
            .cf_db2
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        ..SecondDb::default()
    };

    let stdin = std::io::stdin();
    let mut line = String::new();
    if args.wait_stdin {
        println!("READY {}", std::process::id());
        let _ = std::io::stdout().flush();
        let _ = stdin.lock().read_line(&mut line);
    }

    let mut wo = WriteOptions::default();
    wo.set_sync(args.sync_writes);
    let mut counts = Counts::default();
    let mut rounds = 0u64;
    let start = Instant::now();
    let mut burst = Burst::new(args.burst_mb);
    if !args.threads_at.is_empty() {
        rounds = rounds_at(&db, &args, &wo, &mut counts);
    }
    while args.threads_at.is_empty() {
        match args.secs {
            Some(s) if s > 0 && start.elapsed() >= Duration::from_secs(s) => break,
            None if rounds >= args.rounds => break,
            _ => {}
        }
        if let Some(at) = args.burst_at {
            // Between rounds, so a ramp's rounds go on beside it.
            if let Some(t) = start.elapsed().checked_sub(Duration::from_secs(at)) {
                let upto = burst.ramp_target(t, args.burst_ramp);
                burst.write_up_to(&db, upto, &mut counts);
            }
        }
        round(&db, rounds, &wo, &mut counts);
        if let Some(db2) = &db2 {
            second_db_round(db2, rounds, &mut counts, &mut second);
        }
        rounds += 1;
        if args.pause_ms > 0 {
            std::thread::sleep(Duration::from_millis(args.pause_ms));
        }
        if args.rate > 0 {
            // Paced per round: sleep until the calls so far are on schedule.
            let made: u64 = counts.calls.values().sum();
            let due = Duration::from_secs_f64(made as f64 / args.rate as f64);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    if args.slow_batch > 0 {
        slow_batch(&db, args.slow_batch, &mut counts);
    }
    burst.write_up_to(&db, u64::MAX, &mut counts);
    let elapsed = start.elapsed();
    let rocks = args.stats.then(|| rocks_counts(&opts, settle(&db)));
    let mut out = counts.json(rounds, elapsed, rocks.as_ref());
    if db2.is_some() {
        out.pop(); // the closing brace
        out.push_str(&second.json(&dir.display().to_string(), &counts));
        out.push('}');
    }
    println!("{out}");
    let _ = std::io::stdout().flush();

    if args.wait_stdin {
        line.clear();
        let _ = stdin.lock().read_line(&mut line);
    }
    drop(db);
    drop(db2);
    if args.db.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
