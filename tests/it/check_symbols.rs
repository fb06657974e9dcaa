//! `check` and `symbols` on real files and on this machine's kernel, and the
//! rocksdb layer on a program using the system librocksdb.so.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ckb_libbpf::schema::check::Status;
use ckb_libbpf::schema::symbols::Symbols;
use serde::{Deserialize, Serialize};

use crate::common::*;

/// `symbols --json ARGS...`: exit code and the object, decoded exactly.
fn symbols_json(args: &[&str]) -> (i32, Symbols) {
    let (code, out, err) = run_tool(args);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (code, decode(&out))
}

/// What tests/c/rocksdb_dyn.c says it did.
#[derive(Debug, Serialize, Deserialize)]
struct DynCounts {
    puts: u64,
    gets: u64,
    hits: u64,
}

/// A C program linked against Debian's librocksdb.so (librocksdb-dev).
fn dynamic_program() -> PrivateBin {
    build_c("rocksdb_dyn", &["rocksdb"])
}

#[test]
fn check_answers_for_this_machine() {
    require_bpf();
    let (code, v) = check_json(&["check", "--json"]);
    assert_eq!(code, 0, "{v:?}");
    assert!(v.ok);
    // Probed for real, not guessed: uprobes and tracepoints must work here.
    for a in ["uprobe", "tracepoint", "raw_tp"] {
        assert_eq!(v.probes.get(a), Some(&true), "{a}: {v:?}");
    }
    for a in ["uprobe_multi", "kprobe", "fentry", "tp_btf"] {
        assert!(v.probes.contains_key(a), "{a} probed: {v:?}");
    }
    // kprobes: whatever the kernel config says (absent on this machine kind).
    let kp = kernel_config_has("KPROBES").expect("this kernel's config is readable");
    assert_eq!(v.probes.get("kprobe"), Some(&kp), "{v:?}");
    if !kp {
        assert_eq!(v.probes.get("fentry"), Some(&false), "{v:?}");
        // The tracepoints, preferably in their cheaper tp_btf flavour.
        let net = v.backends.net.as_deref();
        assert!(matches!(net, Some("tp_btf" | "tracepoint")), "{v:?}");
    }
    let rocks = v.backends.rocksdb.as_deref();
    assert!(matches!(rocks, Some("uprobe_multi" | "uprobe")), "{v:?}");
    assert!(v.backends.syscall.is_some(), "{v:?}");
    // A line that is not ok carries a remedy.
    for c in &v.checks {
        if c.status != Status::Ok {
            assert!(c.remedy.as_ref().is_some_and(|r| !r.is_empty()), "{c:?}");
        }
    }
    // The text form says the same.
    let (code, out, _) = run_tool(&["check"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("[ ok ] probe uprobe") && out.contains("result: ckb-libbpf can run here"),
        "{out}"
    );
}

#[test]
fn check_pid_attaches_live_and_detaches() {
    require_bpf();
    // A workload that keeps calling RocksDB during the 3 s test, and
    // for a while after it: a probe left behind would still trap in it.
    let mut wl = Workload::start(&["--secs", "12", "--pause-ms", "20"]);
    let pid = wl.pid;
    let handle = std::thread::spawn(move || {
        let counts = wl.run();
        wl.finish();
        counts
    });
    let mut tool = Tool::start(&["check", "--json", "--pid", &pid.to_string()]);
    let tool_pid = tool.child.id();
    // Every program the check holds while it runs, and their links, polled
    // until its live RocksDB probes are in (a condition, not a timer).
    let mut held: Vec<u64> = Vec::new();
    let mut links = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Until its RocksDB programs are loaded and attached (programs load
    // before their links exist; the feature probes before them have links
    // of their own).
    let mut rdb_ids: Vec<u64> = Vec::new();
    while rdb_ids.is_empty() || links == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the live test attached no RocksDB probe: programs {held:?}, links {links}"
        );
        if let Some(st) = tool.child.try_wait().unwrap() {
            let (_, out, err) = tool.wait();
            panic!("check ended ({st}) before its live probes were seen: {out:#?} {err:#?}");
        }
        for id in progs_held_by(tool_pid) {
            if !held.contains(&id) {
                held.push(id);
            }
        }
        // bpftool can fail on a program or link that goes away while it
        // reads it: such a round counts nothing.
        let listed = Command::new("bpftool")
            .args(["link", "show", "--json"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).ok())
            .unwrap_or_default();
        rdb_ids = held
            .iter()
            .copied()
            .filter(|id| prog_names(&[*id]).iter().any(|n| n.starts_with("rdb_")))
            .collect();
        let ours = listed
            .iter()
            .filter(|l| l["prog_id"].as_u64().is_some_and(|p| rdb_ids.contains(&p)))
            .count();
        links = links.max(ours);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, out, err) = tool.wait();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let v: ckb_libbpf::schema::check::Check = decode(&out.join("\n"));
    assert!(v.ok, "{v:?}");
    let line = |name: &str| {
        v.checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} line: {v:?}"))
    };
    let live = line("live uprobe");
    assert_eq!(live.status, Status::Ok, "{live:?}");
    let n: u64 = live
        .detail
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{live:?}"));
    assert!(n > 100, "{live:?}");
    assert_eq!(line("detach").status, Status::Ok);
    // The detach, checked from outside while the workload still runs: no
    // program, link or uprobe event of the check is left.
    assert!(links > 0, "the live probes were attached through links");
    assert_eq!(progs_left(&held), Vec::<u64>::new(), "programs left behind");
    assert_eq!(
        links_of(&held),
        Vec::<serde_json::Value>::new(),
        "links left behind"
    );
    assert!(leftover_uprobe_events(tool_pid).is_empty());
    assert!(!handle.is_finished(), "the workload outlived the check");
    let counts = handle.join().unwrap();
    assert!(counts.total() > 0);
}

#[test]
fn symbols_of_the_static_workload() {
    let (code, v) = symbols_json(&["symbols", "--json", workload_bin().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(v.link_mode, "static");
    assert!(!v.stripped);
    assert!(
        v.build_id.as_ref().is_some_and(|b| b.len() == 40),
        "{:?}",
        v.build_id
    );
    let t1 = v.tier1.as_ref().expect("all tiers shown");
    let get = |n: &str| t1.iter().find(|t| t.name == n).unwrap();
    for present in [
        "rocksdb_put",
        "rocksdb_get_pinned_cf",
        "rocksdb_write",
        "rocksdb_transaction_commit",
        "rocksdb_iter_seek",
    ] {
        let t = get(present);
        assert!(t.present, "{present}");
        assert!(t.offset.is_some_and(|o| o > 0), "{t:?}");
        assert!(t.probe_cost.is_some() && t.first_insn.is_some(), "{t:?}");
    }
    // The symbol another tracer attaches to: the C name, or a stand-in's
    // mangled name (bpftrace cannot parse `::` in a probe).
    assert_eq!(get("rocksdb_put").symbol.as_deref(), Some("rocksdb_put"));
    let seek = get("rocksdb::DBIter::Seek");
    assert!(seek.present, "{seek:?}");
    assert_eq!(
        seek.symbol.as_deref(),
        Some("_ZN7rocksdb6DBIter4SeekERKNS_5SliceE")
    );
    let absent = get("rocksdb_transactiondb_put");
    assert!(!absent.present);
    assert_eq!((&absent.file, absent.offset), (&None, None));
    assert_eq!(
        v.tier1_present,
        t1.iter().filter(|t| t.present).count() as u64
    );
    // `.cold` clones are never Tier 1 or Tier 2 entries.
    let t2: Vec<String> = v
        .tier2
        .as_ref()
        .expect("all tiers shown")
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(
        !t2.iter()
            .chain(t1.iter().map(|t| &t.name))
            .any(|n| n.contains(".cold")),
        "a .cold clone was listed"
    );
    assert!(
        t2.iter().any(|n| n == "rocksdb::CompactionJob::Run()"),
        "{t2:?}"
    );
    assert!(
        t2.iter()
            .any(|n| n.starts_with("rocksdb::DBImpl::DelayWrite(")),
        "{t2:?}"
    );
    assert!(v.tier3_count > 1000);
    assert_eq!(v.tier3, None, "tier 3 names only with --filter");

    // --tier and --filter narrow the report.
    let (_, v) = symbols_json(&[
        "symbols",
        "--json",
        "--tier",
        "1",
        "--filter",
        "iter",
        workload_bin().to_str().unwrap(),
    ]);
    assert_eq!((&v.tier2, &v.tier3), (&None, &None));
    let t1 = v.tier1.as_ref().unwrap();
    assert!(!t1.is_empty() && t1.iter().all(|t| t.name.contains("iter")));
    let (code, out, _) = run_tool(&[
        "symbols",
        "--tier",
        "3",
        "--filter",
        "CompactionJob",
        workload_bin().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("rocksdb::CompactionJob::"), "{out}");
}

#[test]
fn symbols_of_a_stripped_copy() {
    let dir = scratch_dir("sym");
    let copy = dir.join("rocksdb_workload_stripped");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(workload_bin())
        .status()
        .expect("strip (binutils)");
    assert!(st.success());
    let (code, v) = symbols_json(&["symbols", "--json", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "a stripped file still gets a correct report");
    assert!(v.stripped);
    assert_eq!(v.tier1_present, 0);
    let (code, out, _) = run_tool(&["symbols", copy.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("hint: the binary is stripped"), "{out}");
    // The rocksdb layer refuses it with the same remedy and exit 2.
    let (code, _, err) = run_tool(&["rocksdb", "--binary", copy.to_str().unwrap()]);
    if code != 3 {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("stripped"), "{err}");
    }
}

#[test]
fn check_refuses_a_stripped_binary() {
    require_bpf();
    let dir = scratch_dir("sym");
    let copy = dir.join("rocksdb_workload_stripped");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(workload_bin())
        .status()
        .expect("strip (binutils)");
    assert!(st.success());
    // The environment is fine (root), the binary is not.
    let (code, v) = check_json(&["check", "--json", "--binary", copy.to_str().unwrap()]);
    assert_eq!(code, 2, "{v:?}");
    assert!(!v.ok);
    assert!(v.checks.iter().any(|c| c.status == Status::Fail), "{v:?}");
}

#[test]
fn symbols_of_a_dynamically_linked_program() {
    let prog = dynamic_program();
    let (code, v) = symbols_json(&["symbols", "--json", prog.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(v.link_mode, "dynamic", "{v:?}");
    let lib = v.rocksdb_library.as_deref().expect("the library it loads");
    assert!(
        Path::new(lib).exists() && lib.contains("librocksdb.so"),
        "{lib}"
    );
    let put = v
        .tier1
        .as_ref()
        .unwrap()
        .iter()
        .find(|t| t.name == "rocksdb_put")
        .unwrap();
    assert!(put.present);
    assert_eq!(put.file.as_deref(), Some(lib));
    // The library itself.
    let (code, v) = symbols_json(&["symbols", "--json", lib]);
    assert_eq!(code, 0);
    assert_eq!(v.link_mode, "library");
    assert_eq!(v.rocksdb_library, None);
}

#[test]
fn rocksdb_traces_a_shared_library() {
    require_bpf();
    let prog = dynamic_program();
    let (_, v) = symbols_json(&["symbols", "--json", prog.to_str().unwrap()]);
    let lib = v.rocksdb_library.expect("the library it loads");
    // A private copy of the library, so other users of the system one
    // cannot disturb the counts; the program loads it via LD_LIBRARY_PATH.
    let libdir = scratch_dir("sym");
    let soname = Path::new(&lib)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let private = libdir.join(&soname);
    std::fs::copy(&lib, &private).unwrap();
    let needed = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "readelf -d {} | sed -n 's/.*NEEDED.*\\[\\(librocksdb[^]]*\\)\\]/\\1/p'",
            prog.display()
        ))
        .output()
        .unwrap();
    let needed = String::from_utf8_lossy(&needed.stdout).trim().to_string();
    if needed != soname {
        std::fs::copy(&lib, libdir.join(&needed)).unwrap();
    }
    let lib_for_tool = libdir.join(&needed);

    let mut tool = Tool::start(&[
        "rocksdb",
        "--binary",
        lib_for_tool.to_str().unwrap(),
        "--json",
        "--interval",
        "0.2",
        "--by-function",
        "--value-sizes",
    ]);
    tool.wait_attached();
    // Not created here: the program's RocksDB creates it.
    let db = prog.dir().join("db");
    let mut child = Command::new(&prog)
        .arg(&db)
        .arg("300")
        .env("LD_LIBRARY_PATH", &libdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY");
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let counts: DynCounts = decode(&line);
    stdin.write_all(b"done\n").unwrap();
    let _ = child.wait();
    assert_eq!((counts.puts, counts.gets), (300, 300));
    wait_counted(&mut tool, "GET", counts.gets);
    tool.signal(libc::SIGINT);
    let (status, lines, err) = tool.wait();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let fin = final_rocksdb(&lines);
    let funcs = fin.functions.as_ref().expect("--by-function rows");
    let count = |f: &str| funcs.get(f).map(|r| r.count);
    assert_eq!(count("rocksdb_put"), Some(counts.puts), "{err:#?}");
    assert_eq!(count("rocksdb_get"), Some(counts.gets));
    let (put, get) = (&fin.operations["PUT"], &fin.operations["GET"]);
    assert_eq!(get.misses, Some(counts.gets - counts.hits));
    // PUT bytes: "key-%06d" (10) + "value" (5) per put; GET bytes: 5 per hit.
    assert_eq!(put.bytes, Some(counts.puts * 15));
    assert_eq!(get.bytes, Some(counts.hits * 5));
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = scratch_dir("sym");
    let trunc = dir.join("truncated");
    let bytes = std::fs::read(workload_bin()).unwrap();
    std::fs::write(&trunc, &bytes[..200]).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not an ELF file\n").unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (text, "not a valid ELF file"),
        (trunc, "not a valid ELF file"),
        (PathBuf::from("/tmp"), "is a directory"),
        (
            PathBuf::from("/nonexistent/ckb"),
            "cannot read /nonexistent/ckb",
        ),
    ];
    for (p, msg) in cases {
        let (code, out, err) = run_tool(&["symbols", p.to_str().unwrap()]);
        assert_eq!(code, 2, "{}: {err}", p.display());
        assert!(err.contains(msg), "{}: {err}", p.display());
        assert!(
            err.contains("ckb-libbpf: error:") && !err.contains("panicked"),
            "{err}"
        );
        assert!(out.is_empty());
    }
}
