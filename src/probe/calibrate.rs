//! Start-up self-calibration: what one uprobe + uretprobe hit of the RocksDB
//! programs costs on THIS machine, for an emulated and for a single-stepped
//! first instruction (the two classes of `node::insn`).
//!
//! The tool probes two tiny functions of its own binary (below, in
//! assembly so their first instruction is fixed: `push rbx`, emulated by
//! the kernel; `lea`, single-stepped) with the same programs, attach path
//! and backend the capture uses, loaded separately and filtered to this
//! process. Each is called in short batches alternating with an identical
//! unprobed twin; the per-hit cost is (median probed − median twin) / N of
//! the batches' thread CPU time (CLOCK_THREAD_CPUTIME_ID: user + kernel,
//! where the trap, the `uretprobe` syscall and the programs run). CPU time
//! ignores preemption by other jobs and the medians ignore the odd
//! interrupted batch, so the result holds on a loaded machine. About
//! 7 × (500 + 100) hits: ~15 ms.

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::rocksdb::{self as rdb, Backend, Config, Plan, Planned};
use crate::model::overhead::PerHit;
use crate::model::rocksdb::FUNCS;
use crate::node::elf::Elf;
use crate::node::insn::classify;
use crate::node::ProbeFile;

/// Probed: emulated first instruction, and single-stepped one.
const EMULATED: &str = "ckb_libbpf_calib_push";
const STEPPED: &str = "ckb_libbpf_calib_step";

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.ckb_libbpf_calib,\"ax\",@progbits",
    ".p2align 4",
    ".globl ckb_libbpf_calib_push",
    ".type ckb_libbpf_calib_push,@function",
    "ckb_libbpf_calib_push:",
    "push rbx",
    "lea rax, [rdi + 1]",
    "pop rbx",
    "ret",
    ".size ckb_libbpf_calib_push, . - ckb_libbpf_calib_push",
    ".p2align 4",
    ".globl ckb_libbpf_calib_push_twin",
    ".type ckb_libbpf_calib_push_twin,@function",
    "ckb_libbpf_calib_push_twin:",
    "push rbx",
    "lea rax, [rdi + 1]",
    "pop rbx",
    "ret",
    ".size ckb_libbpf_calib_push_twin, . - ckb_libbpf_calib_push_twin",
    ".p2align 4",
    ".globl ckb_libbpf_calib_step",
    ".type ckb_libbpf_calib_step,@function",
    "ckb_libbpf_calib_step:",
    "lea rax, [rdi + 1]",
    "ret",
    ".size ckb_libbpf_calib_step, . - ckb_libbpf_calib_step",
    ".p2align 4",
    ".globl ckb_libbpf_calib_step_twin",
    ".type ckb_libbpf_calib_step_twin,@function",
    "ckb_libbpf_calib_step_twin:",
    "lea rax, [rdi + 1]",
    "ret",
    ".size ckb_libbpf_calib_step_twin, . - ckb_libbpf_calib_step_twin",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn ckb_libbpf_calib_push(x: u64) -> u64;
    fn ckb_libbpf_calib_push_twin(x: u64) -> u64;
    fn ckb_libbpf_calib_step(x: u64) -> u64;
    fn ckb_libbpf_calib_step_twin(x: u64) -> u64;
}

/// Calls per batch: a few ms of probed calls each.
const N_EMULATED: u32 = 500;
const N_STEPPED: u32 = 100;
const ROUNDS: usize = 7;
/// The database handle the calibration calls pass (one `stats` row).
const FAKE_DB: u64 = 0x1000;

/// What the calibration measured.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub per_hit: PerHit,
    /// Probed calls the programs counted (= made).
    pub hits: u64,
    pub took: Duration,
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Thread CPU time of `n` calls of `f`.
fn batch(f: unsafe extern "C" fn(u64) -> u64, n: u32) -> u64 {
    let t = thread_cpu_ns();
    let mut x = FAKE_DB;
    for _ in 0..n {
        // SAFETY: the functions read only rdi and preserve the ABI.
        x = unsafe { f(std::hint::black_box(FAKE_DB)) }.wrapping_add(x);
    }
    std::hint::black_box(x);
    thread_cpu_ns().saturating_sub(t)
}

/// (median probed − median twin) / n, in ns per call.
fn per_call(probed: &mut [u64], twin: &mut [u64], n: u32) -> f64 {
    (median(probed) as f64 - median(twin) as f64) / n as f64
}

/// Measures the per-hit cost of each class with `backend`. Fails (and the
/// caller falls back to the defaults) when the binary lacks the helper
/// symbols (stripped), the load or attach fails, or the programs did not
/// count every call.
pub fn calibrate(backend: Backend) -> Result<Calibration> {
    if super::fault("calibrate") {
        bail!("CKB_LIBBPF_FAULT=calibrate");
    }
    if !cfg!(target_arch = "x86_64") {
        bail!("calibration helpers exist only on x86_64");
    }
    run(backend)
}

#[cfg(not(target_arch = "x86_64"))]
fn run(_backend: Backend) -> Result<Calibration> {
    bail!("calibration helpers exist only on x86_64")
}

#[cfg(target_arch = "x86_64")]
fn run(backend: Backend) -> Result<Calibration> {
    let start = Instant::now();
    let pid = std::process::id();
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let syms = Elf::open(&exe)?.functions(&[EMULATED, STEPPED])?;
    let file = ProbeFile {
        attach_path: exe.clone(),
        display: exe.clone(),
        elf_path: exe,
    };
    // Counted as rocksdb_write: arg1 is the db, nothing else is read.
    let id = FUNCS
        .iter()
        .position(|f| f.name == "rocksdb_write")
        .context("rocksdb_write missing from the function table")?;
    let mut plan = Plan::default();
    for (name, stepped) in [(EMULATED, false), (STEPPED, true)] {
        let sym = syms
            .get(name)
            .with_context(|| format!("{name} not in the symbol table (stripped binary?)"))?
            .clone();
        let cost = classify(&sym.head);
        if cost.is_single_step() != stepped {
            bail!(
                "{name} starts with `{}`, not the expected class",
                cost.insn()
            );
        }
        plan.attach.push(Planned {
            id,
            def: FUNCS[id],
            file: file.clone(),
            sym,
            cost,
        });
    }
    let cfg = Config {
        tgid: pid,
        slow_ns: None,
        empty: false,
        slots: plan.slots().len() as u32,
        ..Config::default()
    };
    let mut obj = MaybeUninit::uninit();
    let skel = rdb::load(&mut obj, &cfg, backend)?;
    let links = rdb::attach(&skel, &plan, backend)?;
    let maps = rdb::Maps::new(&skel, &plan)?;

    // Warm-up: the first hits map the out-of-line slot page and fault in
    // the programs' map values.
    let mut made = 0u64;
    for _ in 0..2 {
        batch(ckb_libbpf_calib_push, 50);
        batch(ckb_libbpf_calib_step, 20);
        made += 70;
    }
    let (mut ep, mut et, mut sp, mut st) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        ep.push(batch(ckb_libbpf_calib_push, N_EMULATED));
        et.push(batch(ckb_libbpf_calib_push_twin, N_EMULATED));
        sp.push(batch(ckb_libbpf_calib_step, N_STEPPED));
        st.push(batch(ckb_libbpf_calib_step_twin, N_STEPPED));
        made += u64::from(N_EMULATED + N_STEPPED);
    }
    let seen: u64 = rdb::read_sample(&maps, 0)?
        .rows
        .iter()
        .filter(|r| r.tgid == pid)
        .map(|r| r.stats.count)
        .sum();
    drop(links);
    drop(skel);
    if seen != made {
        bail!("the programs counted {seen} of {made} calibration calls");
    }
    let emulated_ns = per_call(&mut ep, &mut et, N_EMULATED);
    let single_stepped_ns = per_call(&mut sp, &mut st, N_STEPPED);
    for (what, v) in [
        ("emulated", emulated_ns),
        ("single-stepped", single_stepped_ns),
    ] {
        if !(50.0..1_000_000.0).contains(&v) {
            bail!("implausible {what} cost per hit: {v:.0} ns");
        }
    }
    Ok(Calibration {
        per_hit: PerHit {
            emulated_ns,
            single_stepped_ns,
            calibrated: true,
        },
        hits: made,
        took: start.elapsed(),
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn helpers_compute_and_their_first_instructions_have_the_right_class() {
        // SAFETY: plain functions of one integer argument.
        unsafe {
            assert_eq!(ckb_libbpf_calib_push(41), 42);
            assert_eq!(ckb_libbpf_calib_push_twin(41), 42);
            assert_eq!(ckb_libbpf_calib_step(41), 42);
            assert_eq!(ckb_libbpf_calib_step_twin(41), 42);
        }
        let exe = std::env::current_exe().unwrap();
        let syms = Elf::open(&exe)
            .unwrap()
            .functions(&[EMULATED, STEPPED])
            .unwrap();
        assert!(!classify(&syms[EMULATED].head).is_single_step());
        assert!(classify(&syms[STEPPED].head).is_single_step());
    }

    #[test]
    fn median_of_batches() {
        let mut v = vec![5, 1, 100, 3, 4];
        assert_eq!(median(&mut v), 4);
        assert_eq!(per_call(&mut [300, 250, 9000], &mut [50, 60, 40], 10), 25.0);
    }
}
