//! `check` and `symbols` on real files and on this machine's kernel, and the
//! rocksdb layer on a program using the system librocksdb.so.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::Value;

fn json_of(args: &[&str]) -> (i32, Value) {
    let (code, out, err) = run_tool(args);
    let v = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}\n{err}"));
    (code, v)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ckb-libbpf-sym-{:x}", rand_u64()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A C program linked against Debian's librocksdb.so (librocksdb-dev).
fn dynamic_program() -> PathBuf {
    let out = scratch("rocksdb_dyn");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/rocksdb_dyn.c");
    let st = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(src)
        .arg("-lrocksdb")
        .status()
        .expect("cc");
    assert!(
        st.success(),
        "building tests/c/rocksdb_dyn.c needs librocksdb-dev (make deps)"
    );
    out
}

fn kernel_config_has(key: &str) -> Option<bool> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let (_, cfg) = ckb_libbpf::node::procfs::kernel_config(release.trim())?;
    Some(cfg.get(key).is_some_and(|v| v == "y" || v == "m"))
}

#[test]
fn check_answers_for_this_machine() {
    if !bpf_available() {
        return;
    }
    let (code, v) = json_of(&["check", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"], true);
    // Probed for real, not guessed: uprobes and tracepoints must work here.
    assert_eq!(v["probes"]["uprobe"], true, "{v}");
    assert_eq!(v["probes"]["tracepoint"], true, "{v}");
    assert_eq!(v["probes"]["raw_tp"], true, "{v}");
    // kprobes: whatever the kernel config says (absent on this machine kind).
    if let Some(kp) = kernel_config_has("KPROBES") {
        assert_eq!(v["probes"]["kprobe"], kp, "{v}");
        if !kp {
            assert_eq!(v["probes"]["fentry"], false, "{v}");
            // The tracepoints, preferably in their cheaper tp_btf flavour.
            let net = v["backends"]["net"].as_str();
            assert!(matches!(net, Some("tp_btf" | "tracepoint")), "{v}");
        }
    }
    let rocks = v["backends"]["rocksdb"].as_str().unwrap();
    assert!(rocks == "uprobe_multi" || rocks == "uprobe", "{v}");
    // A failed optional line carries a remedy.
    for c in v["checks"].as_array().unwrap() {
        if c["status"] != "ok" {
            assert!(c["remedy"].as_str().is_some_and(|r| !r.is_empty()), "{c}");
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
    if !bpf_available() {
        return;
    }
    // A workload that keeps calling RocksDB during the 3 s test.
    let mut wl = Workload::start(&["--secs", "8", "--pause-ms", "20"]);
    let pid = wl.pid;
    let handle = std::thread::spawn(move || {
        let counts = wl.run();
        wl.finish();
        counts
    });
    let (code, v) = json_of(&["check", "--json", "--pid", &pid.to_string()]);
    assert_eq!(code, 0, "{v}");
    let live = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "live uprobe")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(live["status"], "ok", "{live}");
    let n: u64 = live["detail"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 100, "{live}");
    let _ = handle.join();
}

#[test]
fn symbols_of_the_static_workload() {
    let (code, v) = json_of(&["symbols", "--json", workload_bin().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(v["link_mode"], "static");
    assert_eq!(v["stripped"], false);
    assert!(
        v["build_id"].as_str().is_some_and(|b| b.len() == 40),
        "{}",
        v["build_id"]
    );
    let t1 = v["tier1"].as_array().unwrap();
    let get = |n: &str| t1.iter().find(|t| t["name"] == n).unwrap().clone();
    for present in [
        "rocksdb_put",
        "rocksdb_get_pinned_cf",
        "rocksdb_write",
        "rocksdb_transaction_commit",
        "rocksdb_iter_seek",
    ] {
        assert_eq!(get(present)["present"], true, "{present}");
        assert!(get(present)["offset"].as_u64().unwrap() > 0);
    }
    assert_eq!(get("rocksdb_transactiondb_put")["present"], false);
    // `.cold` clones are never Tier 1 or Tier 2 entries.
    assert!(
        !v.to_string().contains(".cold\""),
        "a .cold clone was listed"
    );
    let t2: Vec<String> = v["tier2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        t2.iter().any(|n| n == "rocksdb::CompactionJob::Run()"),
        "{t2:?}"
    );
    assert!(
        t2.iter()
            .any(|n| n.starts_with("rocksdb::DBImpl::DelayWrite(")),
        "{t2:?}"
    );
    assert!(v["tier3_count"].as_u64().unwrap() > 1000);

    // --tier and --filter narrow the report.
    let (_, v) = json_of(&[
        "symbols",
        "--json",
        "--tier",
        "1",
        "--filter",
        "iter",
        workload_bin().to_str().unwrap(),
    ]);
    assert!(v.get("tier2").is_none());
    assert!(v["tier1"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"].as_str().unwrap().contains("iter")));
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
    let copy = scratch("rocksdb_workload_stripped");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(workload_bin())
        .status()
        .expect("strip (binutils)");
    assert!(st.success());
    let (code, v) = json_of(&["symbols", "--json", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "a stripped file still gets a correct report");
    assert_eq!(v["stripped"], true);
    assert_eq!(v["tier1_present"], 0);
    let (code, out, _) = run_tool(&["symbols", copy.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("hint: the binary is stripped"), "{out}");
    // The rocksdb layer refuses it with the same remedy and exit 2.
    let (code, _, err) = run_tool(&["rocksdb", "--binary", copy.to_str().unwrap()]);
    if code != 3 {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("stripped"), "{err}");
    }
    let (code, v) = json_of(&["check", "--json", "--binary", copy.to_str().unwrap()]);
    if bpf_available() {
        assert_eq!(code, 2, "{v}");
        assert_eq!(v["ok"], false);
    }
}

#[test]
fn symbols_of_a_dynamically_linked_program() {
    let prog = dynamic_program();
    let (code, v) = json_of(&["symbols", "--json", prog.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(v["link_mode"], "dynamic", "{v}");
    let lib = v["rocksdb_library"].as_str().unwrap();
    assert!(
        Path::new(lib).exists() && lib.contains("librocksdb.so"),
        "{lib}"
    );
    let put = v["tier1"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rocksdb_put")
        .unwrap();
    assert_eq!(put["present"], true);
    assert_eq!(put["file"].as_str(), Some(lib));
    // The library itself.
    let (code, v) = json_of(&["symbols", "--json", lib]);
    assert_eq!(code, 0);
    assert_eq!(v["link_mode"], "library");
}

#[test]
fn rocksdb_traces_a_shared_library() {
    if !bpf_available() {
        return;
    }
    let prog = dynamic_program();
    let (_, v) = json_of(&["symbols", "--json", prog.to_str().unwrap()]);
    let lib = v["rocksdb_library"].as_str().unwrap().to_string();
    // A private copy of the library, so other users of the system one
    // cannot disturb the counts; the program loads it via LD_LIBRARY_PATH.
    let libdir = scratch("lib");
    std::fs::create_dir_all(&libdir).unwrap();
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
    ]);
    tool.wait_attached();
    let db = scratch("db");
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
    let counts: Value = serde_json::from_str(&line).unwrap();
    stdin.write_all(b"done\n").unwrap();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(400));
    tool.signal(libc::SIGINT);
    let (status, lines, err) = tool.wait();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let fin = final_report(&lines);
    assert_eq!(
        fin["functions"]["rocksdb_put"]["count"], counts["puts"],
        "{err:#?}"
    );
    assert_eq!(fin["functions"]["rocksdb_get"]["count"], counts["gets"]);
    let hits = counts["hits"].as_u64().unwrap();
    assert_eq!(
        fin["operations"]["GET"]["misses"].as_u64(),
        Some(300 - hits)
    );
    // PUT bytes: "key-%06d" (10) + "value" (5) per put; GET bytes: 5 per hit.
    assert_eq!(fin["operations"]["PUT"]["bytes"].as_u64(), Some(300 * 15));
    assert_eq!(fin["operations"]["GET"]["bytes"].as_u64(), Some(hits * 5));
}

#[test]
fn bad_files_get_clear_errors() {
    let trunc = scratch("truncated");
    let bytes = std::fs::read(workload_bin()).unwrap();
    std::fs::write(&trunc, &bytes[..200]).unwrap();
    let text = scratch("notes.txt");
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
