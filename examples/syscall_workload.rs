//! Ground truth for the syscall layer's tests: a process that makes a known
//! number of specific syscalls from threads named like a CKB node's
//! (`rocksdb:low0` compaction, `rocksdb:high0` flush, `ChainService`
//! writing its WAL, `GlobalRt-N` runtime workers, `verify_blocks`).
//!
//! Protocol (stdin/stdout, one line each): it prints `READY <pid>`, then
//! - `go`: runs the script, one named thread after another, and prints what
//!   each thread did as JSON: {"pid", "threads": {name: {syscall:
//!   {"count", "bytes", "errors"}}}};
//! - `bench N [NR]`: N getppid (or syscall NR) calls on the main thread;
//!   prints {"calls", "ns"};
//! - `done` or end of input: exits.
//!
//! `--db DIR` is the scratch directory (created, removed by the caller);
//! `--wait-stdin` is accepted for symmetry with rocksdb_workload.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::time::Instant;

use serde_json::{json, Value};

/// What one thread does.
#[derive(Clone, Copy)]
enum Op {
    /// `n` pwrite64 of `len` bytes each.
    Pwrite(u64, usize),
    /// `n` pread64 of `len` bytes each from the prepared file.
    Pread(u64, usize),
    /// `n` pread64 on a closed descriptor: each fails with EBADF.
    PreadBadFd(u64),
    Fdatasync(u64),
    Fsync(u64),
    Getppid(u64),
}

const SCRIPT: &[(&str, &[Op])] = &[
    ("rocksdb:low0", &[Op::Pwrite(40, 4096), Op::Fdatasync(3)]),
    ("rocksdb:high0", &[Op::Pwrite(10, 1000), Op::Fsync(2)]),
    (
        "ChainService",
        &[
            Op::Pwrite(25, 512),
            Op::Fdatasync(5),
            Op::Getppid(4),
            Op::PreadBadFd(3),
        ],
    ),
    ("GlobalRt-1", &[Op::Getppid(7), Op::Pread(3, 100)]),
    ("GlobalRt-2", &[Op::Getppid(7), Op::Pread(3, 100)]),
    ("verify_blocks", &[Op::Getppid(2)]),
];

const FILE_SIZE: usize = 64 * 1024;

#[derive(Default)]
struct Tally(BTreeMap<&'static str, (u64, u64, u64)>);

impl Tally {
    fn call(&mut self, name: &'static str, ret: isize) {
        let e = self.0.entry(name).or_default();
        e.0 += 1;
        if ret > 0 {
            e.1 += ret as u64;
        } else if ret < 0 {
            e.2 += 1;
        }
    }
    fn json(&self) -> Value {
        self.0
            .iter()
            .map(|(k, (c, b, e))| (k.to_string(), json!({"count": c, "bytes": b, "errors": e})))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

fn run_thread(fd: i32, slot: usize, ops: &[Op]) -> Tally {
    let mut t = Tally::default();
    let buf = vec![0xabu8; 4096];
    let mut rbuf = vec![0u8; 4096];
    let base = (FILE_SIZE + slot * 1024 * 1024) as i64;
    let mut off = 0i64;
    for op in ops {
        match *op {
            Op::Pwrite(n, len) => {
                for _ in 0..n {
                    // SAFETY: buf outlives the call and holds len <= 4096 bytes.
                    let r = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), len, base + off) };
                    off += len as i64;
                    t.call("pwrite64", r);
                }
            }
            Op::Pread(n, len) => {
                for i in 0..n {
                    // SAFETY: rbuf holds 4096 >= len bytes.
                    let r =
                        unsafe { libc::pread(fd, rbuf.as_mut_ptr().cast(), len, i as i64 * 100) };
                    t.call("pread64", r);
                }
            }
            Op::PreadBadFd(n) => {
                for _ in 0..n {
                    // SAFETY: as above; the descriptor is invalid on purpose.
                    let r = unsafe { libc::pread(-1, rbuf.as_mut_ptr().cast(), 1, 0) };
                    t.call("pread64", r);
                }
            }
            Op::Fdatasync(n) => {
                for _ in 0..n {
                    // SAFETY: plain syscall on our descriptor.
                    t.call("fdatasync", unsafe { libc::fdatasync(fd) } as isize);
                }
            }
            Op::Fsync(n) => {
                for _ in 0..n {
                    // SAFETY: plain syscall on our descriptor.
                    t.call("fsync", unsafe { libc::fsync(fd) } as isize);
                }
            }
            Op::Getppid(n) => {
                for _ in 0..n {
                    // SAFETY: no preconditions.
                    t.call("getppid", unsafe { libc::getppid() } as isize);
                }
            }
        }
    }
    t
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .iter()
        .position(|a| a == "--db")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("syscall-workload-{}", std::process::id()))
        });
    std::fs::create_dir_all(&dir).expect("creating the scratch directory");
    let path = dir.join("data");
    std::fs::write(&path, vec![0x5au8; FILE_SIZE]).expect("preparing the data file");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("opening the data file");
    let fd = file.as_raw_fd();

    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {}", std::process::id()).ok();
    out.flush().ok();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("go") => {
                let mut threads = serde_json::Map::new();
                for (slot, (name, ops)) in SCRIPT.iter().enumerate() {
                    let ops: &'static [Op] = ops;
                    let t = std::thread::Builder::new()
                        .name(name.to_string())
                        .spawn(move || run_thread(fd, slot, ops))
                        .expect("spawning a thread")
                        .join()
                        .expect("workload thread panicked");
                    threads.insert(name.to_string(), t.json());
                }
                let v = json!({"pid": std::process::id(), "threads": threads});
                writeln!(out, "{v}").ok();
            }
            Some("bench") => {
                let n: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(100_000);
                // Another argument-less syscall by number, e.g. getpgrp.
                let nr: Option<libc::c_long> = words.next().and_then(|w| w.parse().ok());
                let t0 = Instant::now();
                for _ in 0..n {
                    // SAFETY: argument-less syscalls without side effects.
                    std::hint::black_box(match nr {
                        Some(nr) => unsafe { libc::syscall(nr) },
                        None => (unsafe { libc::getppid() }) as libc::c_long,
                    });
                }
                let ns = t0.elapsed().as_nanos() as u64;
                writeln!(out, "{}", json!({"calls": n, "ns": ns})).ok();
            }
            Some("done") | None => break,
            Some(_) => {}
        }
        out.flush().ok();
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
}
