//! ckb-libbpf as a long-running agent, in the real kernel: it follows the
//! node across restarts and upgrades, leaves nothing behind whatever ends it,
//! and several instances do not disturb each other.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

/// Replaces `bin` the way a package upgrade does: a new file (new inode)
/// renamed over the old path while the old process keeps running.
fn upgrade_in_place(bin: &Path) {
    let new = bin.with_extension("new");
    std::fs::copy(bin, &new).unwrap();
    std::fs::rename(&new, bin).unwrap();
}

#[test]
fn restart_and_upgrade_are_followed_and_counted_exactly() {
    require_bpf();
    let bin = private_workload_copy();
    let mut first = Workload::start_bin(&bin, &["--rounds", "1"]);
    let old_pid = first.pid;
    let pid = old_pid.to_string();
    let mut tool = Tool::start(&["rocksdb", "--pid", &pid, "--json", "--interval", "0.2"]);
    tool.wait_attached();
    let progs_first = progs_held_by(tool.child.id());
    assert_eq!(rdb_progs(&progs_first), 2);
    // The package manager replaces the file while the node runs: the probes
    // sit on the old inode (through /proc/PID/exe) and keep counting.
    upgrade_in_place(&bin);
    let c1 = first.run();
    first.finish();

    // A process of the same name but another executable is not the node.
    let other_bin = private_workload_copy();
    let mut other = Workload::start_bin(&other_bin, &["--rounds", "1"]);
    // The node restarts, now from the upgraded file.
    let mut second = Workload::start_bin(&bin, &["--rounds", "2"]);
    let new_pid = second.pid;
    tool.wait_rocksdb_attached(new_pid);
    let progs_second = progs_held_by(tool.child.id());
    let c2 = second.run();
    let _ = other.run();
    other.finish();
    wait_counted(&mut tool, "PUT", c1.sum(PUTS) + c2.sum(PUTS));
    tool.signal(libc::SIGTERM);
    let (status, out, err) = tool.wait();
    second.finish();
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0: {err:#?}");

    assert!(
        err.iter().any(|l| l.contains(&format!(
            "target process {old_pid} exited; all probes detached; waiting for"
        ))),
        "{err:#?}"
    );
    let Report::Rocksdb(fin) = assert_one_restart(&out, None, old_pid, new_pid, true) else {
        panic!("not a rocksdb report");
    };
    let (put, get) = (&fin.operations["PUT"], &fin.operations["GET"]);
    assert_eq!(
        put.count,
        c1.sum(PUTS) + c2.sum(PUTS),
        "both processes counted exactly, the unrelated one not at all"
    );
    assert_eq!(get.count, c1.sum(GETS) + c2.sum(GETS));
    assert_eq!(put.bytes, Some(c1.put_bytes + c2.put_bytes));
    assert_eq!(fin.lost_events, 0);

    // Nothing of either session is left.
    let mut all = progs_first.clone();
    all.extend(progs_second);
    assert_eq!(progs_left(&all), Vec::<u64>::new());
}

#[test]
fn sigterm_mid_capture_leaves_nothing_behind() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "1"]);
    let pid = wl.pid.to_string();
    // Classic uprobes too: those are perf events with their own lifetimes.
    for backend in ["multi", "single"] {
        let mut tool = Tool::start_env(
            &[("CKB_LIBBPF_BACKEND", backend)],
            &["rocksdb", "--pid", &pid, "--slow", "--threshold", "0"],
        );
        tool.wait_attached();
        let tool_pid = tool.child.id();
        let progs = progs_held_by(tool_pid);
        assert!(!progs.is_empty());
        let links_before = links_of(&progs);
        assert!(!links_before.is_empty(), "{backend}: links while running");
        tool.signal(libc::SIGTERM);
        let (status, out, err) = tool.wait();
        assert_eq!(status.code(), Some(0), "{backend}: {err:#?}");
        assert!(
            out.iter().any(|l| l.contains("rocksdb summary")),
            "{backend}: the summary is printed"
        );
        assert_eq!(progs_left(&progs), Vec::<u64>::new(), "{backend}");
        assert!(
            links_of(&progs).is_empty(),
            "{backend}: bpftool link show still lists ours"
        );
        assert!(leftover_uprobe_events(tool_pid).is_empty(), "{backend}");
    }
    wl.run();
    wl.finish();
}

#[test]
fn three_instances_at_once_each_count_exactly() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "2"]);
    let pid = wl.pid.to_string();
    let views: [&[&str]; 3] = [
        &["--json"],
        &["--json", "--slow", "--threshold", "0"],
        &["--json", "--ops", "PUT,GET", "--by-function"],
    ];
    let mut tools: Vec<Tool> = views
        .iter()
        .map(|extra| {
            let mut args = vec!["rocksdb", "--pid", &pid, "--interval", "0.3"];
            args.extend_from_slice(extra);
            Tool::start(&args)
        })
        .collect();
    for t in &mut tools {
        t.wait_attached();
    }
    let counts = wl.run();
    for t in &mut tools {
        wait_counted(t, "PUT", counts.sum(PUTS));
        t.signal(libc::SIGINT);
    }
    for (i, t) in tools.into_iter().enumerate() {
        let (status, out, err) = t.wait();
        assert_eq!(status.code(), Some(0), "instance {i}: {err:#?}");
        let fin = final_rocksdb(&out);
        assert_eq!(
            fin.operations["PUT"].count,
            counts.sum(PUTS),
            "instance {i}"
        );
        assert_eq!(
            fin.operations["GET"].count,
            counts.sum(GETS),
            "instance {i}"
        );
        assert_eq!(fin.lost_events, 0, "instance {i}");
        let slow = lines(&out)
            .iter()
            .filter(|l| matches!(l, Line::Slow(_)))
            .count() as u64;
        assert_eq!(slow, fin.slow_events, "instance {i}");
        if i == 1 {
            // Every traced call (the default plan leaves out the
            // single-stepped ones), none twice.
            let traced: u64 = fin.operations.values().map(|o| o.count).sum();
            assert_eq!(slow, traced, "threshold 0 logs every call");
            assert!(slow >= counts.sum(PUTS) + counts.sum(GETS));
        } else {
            assert_eq!(slow, 0, "instance {i}: no --slow");
        }
    }
    wl.finish();
}

#[test]
fn deadline_while_waiting_for_a_restart_ends_normally() {
    require_bpf();
    let bin = private_workload_copy();
    let mut wl = Workload::start_bin(&bin, &["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let started = Instant::now();
    let mut tool = Tool::start(&[
        "rocksdb",
        "3s",
        "--pid",
        &pid,
        "--json",
        "--interval",
        "0.2",
    ]);
    tool.wait_attached();
    let c = wl.run();
    wl.finish();
    let (status, out, err) = tool.wait();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it waited for the node"
    );
    assert_eq!(
        status.code(),
        Some(0),
        "the capture ran its course: {err:#?}"
    );
    let fin = final_rocksdb(&out);
    assert_eq!(fin.operations["PUT"].count, c.sum(PUTS));
    assert_eq!(fin.gaps, [], "no restart happened");
}

/// Runs `script` with sh in a private mount namespace (what it mounts or
/// hides is invisible to the rest of the machine and to parallel tests).
fn in_private_mounts(script: &str) -> (i32, String, String) {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("T", tool())
        .output()
        .expect("unshare (util-linux)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_targets_and_environments_get_a_cause_a_remedy_and_an_exit_code() {
    require_bpf();
    let no_panic = |what: &str, err: &str| {
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{what}: {err}"
        );
        let causes = err
            .lines()
            .filter(|l| l.starts_with("ckb-libbpf: error:"))
            .count();
        let hints = err
            .lines()
            .filter(|l| l.starts_with("ckb-libbpf: hint:"))
            .count();
        assert_eq!(
            (causes, hints),
            (1, 1),
            "{what}: one cause line, one remedy line: {err}"
        );
    };

    // A live process that is not a node.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    let (code, _, err) = run_tool(&["rocksdb", "--pid", &pid]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("process {pid} (sleep): no RocksDB C API symbols")),
        "{err}"
    );
    no_panic("not a node", &err);

    // A stripped node.
    let bin = private_workload_copy();
    let stripped = bin.with_file_name("stripped");
    let st = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin)
        .status()
        .expect("strip (binutils)");
    assert!(st.success());
    let (code, _, err) = run_tool(&["rocksdb", "--binary", stripped.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the binary is stripped"), "{err}");
    no_panic("stripped", &err);
    drop(bin);

    // Kernel BTF unreadable (hidden in a private mount namespace).
    let (code, _, err) = in_private_mounts(
        "mount --bind /dev/null /sys/kernel/btf/vmlinux && exec \"$T\" rocksdb --pid 1",
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("kernel BTF unavailable: /sys/kernel/btf/vmlinux unreadable"),
        "{err}"
    );
    assert!(err.contains("CONFIG_DEBUG_INFO_BTF=y"), "{err}");
    no_panic("no BTF", &err);
    let (_, out, _) =
        in_private_mounts("mount --bind /dev/null /sys/kernel/btf/vmlinux && exec \"$T\" check");
    assert!(
        out.lines().any(|l| l.contains("[FAIL] BTF")),
        "check reports the missing BTF: {out}"
    );

    // No ring buffer (a pre-5.8 kernel), by fault injection.
    let out = std::process::Command::new(tool())
        .args(["rocksdb", "--pid", "1"])
        .env("CKB_LIBBPF_FAULT", "ringbuf")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no BPF ring buffer"), "{err}");
    assert!(err.contains("Linux 5.8"), "{err}");
    no_panic("no ring buffer", &err);

    // Uprobes without BPF cookies (5.8-5.14), by fault injection: rocksdb
    // says what is missing and exits 3; check fails the rocksdb layer
    // instead of saying the tool can run; syscall does not need cookies.
    let out = std::process::Command::new(tool())
        .args(["rocksdb", "--pid", "1"])
        .env("CKB_LIBBPF_FAULT", "cookie")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no BPF cookie"), "{err}");
    assert!(err.contains("Linux 5.15"), "{err}");
    no_panic("no cookies", &err);
    let out = std::process::Command::new(tool())
        .arg("check")
        .env("CKB_LIBBPF_FAULT", "cookie")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("[FAIL] bpf cookies") && l.contains("CKB_LIBBPF_FAULT=cookie")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("[FAIL] layer rocksdb")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("[ ok ] layer syscall")),
        "{text}"
    );
    let out = std::process::Command::new(tool())
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("[ ok ] bpf cookies") && l.contains("receive their BPF cookie")),
        "cookies work on this kernel: {text}"
    );

    // tracefs not mounted: the tool mounts it (in its namespace) and goes on.
    let (code, out, err) = in_private_mounts(
        "umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/tracing 2>/dev/null; \
         test -d /sys/kernel/tracing/events && echo STILL-MOUNTED; \
         \"$T\" check && test -d /sys/kernel/tracing/events/raw_syscalls && echo MOUNTED-BY-TOOL",
    );
    assert!(
        !out.contains("STILL-MOUNTED"),
        "the test could not unmount tracefs: {out}{err}"
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("MOUNTED-BY-TOOL"), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("tracefs") && l.contains("[ ok ]")),
        "{out}"
    );
}
