//! Least privilege, for real: `ckb-libbpf rocksdb` run by an unprivileged
//! user whose copy of the binary holds only file capabilities (setcap), on
//! the bundled workload started by that same user and by root. The counts
//! must equal the workload's own; one capability fewer must fail before
//! attaching, with the environment (3) or usage (2) exit code.
//! The sets are README "Privileges".

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

/// The system user the tests run the tool as; created when missing and
/// left in place (tests run in parallel and share it).
const USER: &str = "ckb-libbpf-test";

/// What the tool needs to trace a process of its own user.
const OWN: &str = "cap_bpf,cap_perfmon";
/// ... and a process of another user: /proc/PID/exe, maps and the threads
/// of a process it may not ptrace are hidden without CAP_SYS_PTRACE.
const OTHER: &str = "cap_bpf,cap_perfmon,cap_sys_ptrace";

fn ids() -> (u32, u32) {
    let q = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, USER]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if let (Some(u), Some(g)) = (q("-u"), q("-g")) {
        return (u, g);
    }
    let st = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ])
        .status()
        .expect("useradd (passwd) creates the test user");
    // Another test may have created it meanwhile: exit 9 means it exists.
    assert!(st.success() || st.code() == Some(9), "useradd {USER}: {st}");
    (q("-u").expect("uid"), q("-g").expect("gid"))
}

/// A copy of `src` in a fresh world-readable directory, mode 0755.
fn world_copy(src: &Path, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ckb-libbpf-priv-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.join(name);
    std::fs::copy(src, &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The tool's binary, copied, with exactly `caps` as permitted+effective
/// file capabilities.
fn tool_with(caps: &str) -> PathBuf {
    let p = world_copy(&tool(), "ckb-libbpf");
    let st = Command::new("setcap")
        .arg(format!("{caps}+ep"))
        .arg(&p)
        .status()
        .expect("setcap (libcap2-bin) runs");
    assert!(st.success(), "setcap {caps} {}", p.display());
    p
}

/// Who runs the traced workload.
#[derive(Clone, Copy)]
enum Owner {
    /// The same user as the tool.
    TestUser,
    /// Another user: root, the usual owner of a node's process.
    Root,
}

/// The workload, paused on stdin, as `uid` (root: 0).
struct Wl {
    child: std::process::Child,
    pid: u32,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    dir: PathBuf,
}

fn workload_as(uid: u32, gid: u32) -> Wl {
    let bin = world_copy(&workload_bin(), "rocksdb_workload");
    let dir = bin.parent().unwrap().join("db");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.arg("--db")
        .arg(&dir)
        .args(["--wait-stdin", "--rounds", "2"])
        .uid(uid)
        .gid(gid);
    let (child, pid, stdin, stdout) = spawn_ready(&mut cmd);
    Wl {
        child,
        pid,
        stdin,
        stdout,
        dir,
    }
}

/// Runs `rocksdb --pid` for 2 s as the test user with the capabilities of
/// `caps`, the workload's rounds inside the capture. Returns (exit code,
/// final report if any, stderr, workload counts if it ran).
fn capture(
    caps: &str,
    owner: Owner,
) -> (
    Option<i32>,
    Option<ckb_libbpf::schema::rocksdb::RocksdbReport>,
    String,
    Option<Counts>,
) {
    let (uid, gid) = ids();
    let (wu, wg) = match owner {
        Owner::Root => (0, 0),
        Owner::TestUser => (uid, gid),
    };
    let mut wl = workload_as(wu, wg);
    let bin = tool_with(caps);
    let mut tool = Command::new(&bin)
        .args(["rocksdb", "2s", "--pid", &wl.pid.to_string()])
        .args([
            "--json",
            "--by-function",
            "--ops",
            "all",
            "--interval",
            "0.5",
        ])
        .uid(uid)
        .gid(gid)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the setcap copy");
    let mut err_lines = BufReader::new(tool.stderr.take().unwrap()).lines();
    let mut err = String::new();
    let mut attached = false;
    for l in err_lines.by_ref() {
        let l = l.unwrap_or_default();
        err.push_str(&l);
        err.push('\n');
        if l.contains("attached ") {
            attached = true;
            break;
        }
    }
    let counts = if attached {
        wl.stdin.write_all(b"go\n").unwrap();
        let mut line = String::new();
        wl.stdout.read_line(&mut line).unwrap();
        Some(serde_json::from_str::<Counts>(&line).expect("the workload's counts"))
    } else {
        None
    };
    for l in err_lines {
        err.push_str(&l.unwrap_or_default());
        err.push('\n');
    }
    let out = tool.wait_with_output().unwrap();
    let _ = wl.stdin.write_all(b"done\n");
    let _ = wl.child.wait();
    let _ = std::fs::remove_dir_all(wl.dir.parent().unwrap());
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let fin = reports(&lines).into_iter().find_map(|r| match r {
        ckb_libbpf::schema::Report::Rocksdb(r) if r.is_final => Some(r),
        _ => None,
    });
    (out.status.code(), fin, err, counts)
}

fn assert_exact(caps: &str, owner: Owner) {
    let (code, fin, err, counts) = capture(caps, owner);
    assert_eq!(code, Some(0), "{caps}: {err}");
    let fin = fin.unwrap_or_else(|| panic!("{caps}: no final report: {err}"));
    let counts = counts.expect("attached, so the workload ran");
    assert!(counts.calls.len() > 10, "{counts:?}");
    let functions = fin.functions.expect("--by-function rows");
    for (f, n) in &counts.calls {
        assert_eq!(
            functions.get(f).map(|r| r.count),
            Some(*n),
            "{caps}, {f}: {err}"
        );
    }
}

/// The tool refuses before attaching, with the environment or usage exit
/// code and an error containing `says`.
fn assert_refused(caps: &str, owner: Owner, says: &str) {
    let (code, _, err, counts) = capture(caps, owner);
    assert!(counts.is_none(), "{caps} attached: {err}");
    assert!(matches!(code, Some(2) | Some(3)), "{caps}: {code:?} {err}");
    assert!(err.contains(says), "{caps}: {says:?} not said: {err}");
}

#[test]
fn own_process_needs_bpf_and_perfmon_only() {
    require_bpf();
    assert_exact(OWN, Owner::TestUser);
    // The capability check names what is missing, with a remedy.
    assert_refused("cap_bpf", Owner::TestUser, "hint: run as root");
    assert_refused("cap_bpf", Owner::TestUser, "CAP_PERFMON");
    assert_refused("cap_perfmon", Owner::TestUser, "CAP_BPF");
}

#[test]
fn another_users_process_also_needs_sys_ptrace() {
    require_bpf();
    assert_exact(OTHER, Owner::Root);
    // What a container without SYS_PTRACE printed (packaging/container-test.sh
    // with CONTAINER_FLAGS lacking it). It names no capability yet.
    assert_refused(OWN, Owner::Root, "/exe: Permission denied");
}
