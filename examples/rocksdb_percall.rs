//! One RocksDB C API function, called N times in a tight loop: the workload
//! of `scripts/bench.sh funcs` (cost per hit of each probed function).
//!
//! ```text
//! rocksdb_percall --func rocksdb_get_pinned_cf [--n 100000] [--db DIR]
//! rocksdb_percall --list
//! ```
//! Opens an OptimisticTransactionDB with one extra column family through
//! `ckb-rocksdb` (RocksDB linked statically, as CKB does), prepares what the
//! loop needs (keys to read, an iterator to walk, transactions to commit)
//! with other functions, then runs the loop and prints one JSON line:
//! `{"func":..., "n":..., "hits":..., "setup_calls":..., "loop_cpu_ns":..., "loop_wall_ns":...}`.
//! `hits` is the exact number of calls to `--func` made inside the loop;
//! `setup_calls` counts the calls to it made outside the loop (the prefill's
//! one `rocksdb_write`): a tracer sees exactly `hits + setup_calls` calls.
//! `loop_cpu_ns` is the calling thread's CPU time over the loop
//! (CLOCK_THREAD_CPUTIME_ID: user + kernel, which is where uprobe traps and
//! BPF programs run; RocksDB's background threads are left out).

use std::path::PathBuf;
use std::time::Instant;

use ckb_rocksdb::prelude::*;
use ckb_rocksdb::{
    ColumnFamilyDescriptor, OptimisticTransactionDB, OptimisticTransactionOptions, WriteBatch,
    WriteOptions,
};

const CF: &str = "cells";
/// Operations per transaction in the transactional loops.
const TXN_OPS: u64 = 1000;

/// Every function the loop can target.
const FUNCS: &[&str] = &[
    "rocksdb_get",
    "rocksdb_get_cf",
    "rocksdb_get_pinned",
    "rocksdb_get_pinned_cf",
    "rocksdb_transaction_get_pinned",
    "rocksdb_transaction_get_pinned_cf",
    "rocksdb_transaction_get_for_update_cf",
    "rocksdb_put",
    "rocksdb_put_cf",
    "rocksdb_transaction_put",
    "rocksdb_transaction_put_cf",
    "rocksdb_delete",
    "rocksdb_delete_cf",
    "rocksdb_transaction_delete",
    "rocksdb_transaction_delete_cf",
    "rocksdb_write",
    "rocksdb_iter_seek",
    "rocksdb_iter_seek_to_first",
    "rocksdb_iter_next",
    "rocksdb_create_iterator",
    "rocksdb_create_iterator_cf",
    "rocksdb_optimistictransaction_begin",
    "rocksdb_transaction_commit",
];

fn check<T>(r: Result<T, ckb_rocksdb::Error>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("rocksdb_percall: rocksdb error: {e}");
        std::process::exit(1)
    })
}

fn key(i: u64) -> [u8; 16] {
    let mut k = *b"k-0000000000000_";
    k[2..15].copy_from_slice(format!("{:013}", i % 10_000_000_000_000).as_bytes());
    k
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec the call writes into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Keys the read and iterator loops find (written through a batch, so no
/// probed put function is called).
const PREFILL: u64 = 10_000;

fn prefill(db: &OptimisticTransactionDB) {
    let cf = db.cf_handle(CF).expect("column family opened");
    let mut batch = WriteBatch::default();
    for i in 0..PREFILL {
        check(batch.put(key(i), b"value-of-100-bytes"));
        check(batch.put_cf(cf, key(i), b"value-of-100-bytes"));
    }
    check(db.write(&batch));
}

/// Runs the loop; returns the number of calls to `func` made in it.
fn run(db: &OptimisticTransactionDB, func: &str, n: u64) -> u64 {
    let cf = db.cf_handle(CF).expect("column family opened");
    let wo = WriteOptions::default();
    let to = OptimisticTransactionOptions::new();
    let ro = ReadOptions::default();
    let val = [b'v'; 100];
    let mut hits = 0;
    // The transactional loops: TXN_OPS calls per transaction.
    let txn_loop = |f: &dyn Fn(&ckb_rocksdb::OptimisticTransaction, u64)| {
        let mut done = 0;
        while done < n {
            let txn = db.transaction(&wo, &to);
            for i in done..(done + TXN_OPS).min(n) {
                f(&txn, i);
            }
            done = (done + TXN_OPS).min(n);
            check(txn.commit());
        }
        n
    };
    match func {
        "rocksdb_get" => (0..n).for_each(|i| {
            check(db.get(key(i % PREFILL)));
        }),
        "rocksdb_get_cf" => (0..n).for_each(|i| {
            check(db.get_cf(cf, key(i % PREFILL)));
        }),
        "rocksdb_get_pinned" => (0..n).for_each(|i| {
            check(db.get_pinned(key(i % PREFILL)));
        }),
        "rocksdb_get_pinned_cf" => (0..n).for_each(|i| {
            check(db.get_pinned_cf(cf, key(i % PREFILL)));
        }),
        "rocksdb_transaction_get_pinned" => {
            hits = txn_loop(&|t, i| {
                check(t.get_pinned(key(i % PREFILL)));
            })
        }
        "rocksdb_transaction_get_pinned_cf" => {
            hits = txn_loop(&|t, i| {
                check(t.get_pinned_cf(cf, key(i % PREFILL)));
            })
        }
        "rocksdb_transaction_get_for_update_cf" => {
            hits = txn_loop(&|t, i| {
                check(t.get_for_update_cf(cf, key(i % PREFILL)));
            })
        }
        "rocksdb_put" => (0..n).for_each(|i| check(db.put_opt(key(i), val, &wo))),
        "rocksdb_put_cf" => (0..n).for_each(|i| {
            check(ckb_rocksdb::ops::PutCF::put_cf_opt(
                db,
                cf,
                key(i),
                val,
                &wo,
            ))
        }),
        "rocksdb_transaction_put" => hits = txn_loop(&|t, i| check(t.put(key(i), val))),
        "rocksdb_transaction_put_cf" => hits = txn_loop(&|t, i| check(t.put_cf(cf, key(i), val))),
        "rocksdb_delete" => (0..n).for_each(|i| check(db.delete(key(PREFILL + i)))),
        "rocksdb_delete_cf" => (0..n).for_each(|i| check(db.delete_cf(cf, key(PREFILL + i)))),
        "rocksdb_transaction_delete" => hits = txn_loop(&|t, i| check(t.delete(key(PREFILL + i)))),
        "rocksdb_transaction_delete_cf" => {
            hits = txn_loop(&|t, i| check(t.delete_cf(cf, key(PREFILL + i))))
        }
        "rocksdb_write" => (0..n).for_each(|i| {
            let mut b = WriteBatch::default();
            check(b.put(key(i), val));
            check(db.write(&b));
        }),
        "rocksdb_iter_seek" => {
            let mut it = check(db.get_raw_iter_cf(cf, &ro));
            (0..n).for_each(|i| it.seek(key(i % PREFILL)));
        }
        "rocksdb_iter_seek_to_first" => {
            let mut it = db.get_raw_iter(&ro);
            (0..n).for_each(|_| it.seek_to_first());
        }
        "rocksdb_iter_next" => {
            // Walks PREFILL keys, seeking (rocksdb_iter_seek) back to the
            // start at the end: the seeks are not the probed function.
            let mut it = check(db.get_raw_iter_cf(cf, &ro));
            it.seek(key(0));
            for _ in 0..n {
                if !it.valid() {
                    it.seek(key(0));
                }
                it.next();
            }
        }
        "rocksdb_create_iterator" => (0..n).for_each(|_| drop(db.get_raw_iter(&ro))),
        "rocksdb_create_iterator_cf" => {
            (0..n).for_each(|_| drop(check(db.get_raw_iter_cf(cf, &ro))))
        }
        "rocksdb_optimistictransaction_begin" => {
            (0..n).for_each(|_| drop(db.transaction(&wo, &to)))
        }
        "rocksdb_transaction_commit" => {
            (0..n).for_each(|_| check(db.transaction(&wo, &to).commit()))
        }
        other => {
            eprintln!("rocksdb_percall: unknown --func {other} (see --list)");
            std::process::exit(2)
        }
    }
    if hits == 0 {
        hits = n;
    }
    hits
}

fn main() {
    let mut func = None;
    let mut n: u64 = 100_000;
    let mut db_dir: Option<PathBuf> = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--func" => func = it.next(),
            "--n" => {
                n = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                    eprintln!("rocksdb_percall: --n needs a number");
                    std::process::exit(2)
                })
            }
            "--db" => db_dir = it.next().map(PathBuf::from),
            "--list" => {
                FUNCS.iter().for_each(|f| println!("{f}"));
                return;
            }
            _ => {
                eprintln!("usage: rocksdb_percall --func NAME [--n N] [--db DIR] | --list");
                std::process::exit(2)
            }
        }
    }
    let Some(func) = func else {
        eprintln!("rocksdb_percall: --func NAME needed (see --list)");
        std::process::exit(2)
    };
    if !FUNCS.contains(&func.as_str()) {
        eprintln!("rocksdb_percall: unknown --func {func} (see --list)");
        std::process::exit(2)
    }
    let dir = db_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ckb-libbpf-percall-{}", std::process::id()))
    });
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = vec![
        ColumnFamilyDescriptor::new("default", Options::default()),
        ColumnFamilyDescriptor::new(CF, Options::default()),
    ];
    let db: OptimisticTransactionDB = check(OptimisticTransactionDB::open_cf_descriptors(
        &opts, &dir, cfs,
    ));
    prefill(&db);

    let (c0, t0) = (thread_cpu_ns(), Instant::now());
    let hits = run(&db, &func, n);
    let (c1, wall) = (thread_cpu_ns(), t0.elapsed());
    println!(
        "{{\"func\":\"{func}\",\"n\":{n},\"hits\":{hits},\"setup_calls\":{},\"loop_cpu_ns\":{},\"loop_wall_ns\":{}}}",
        u64::from(func == "rocksdb_write"),
        c1 - c0,
        wall.as_nanos()
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
