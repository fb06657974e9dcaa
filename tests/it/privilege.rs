//! Least privilege, for real: the tool copied with `setcap` file
//! capabilities and run by an unprivileged user, against the bundled
//! workload run by that same user and by root (another user, as a node
//! usually is). With the set README "Privileges" names, a subcommand works
//! in full: exact counts, every default layer loaded, the probe cost
//! measured, databases and column families named. With one capability
//! fewer it is refused before anything attaches, with exit 2 or 3 and a
//! remedy that names the capability. The systemd unit's
//! AmbientCapabilities are read from packaging/ and proven the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::export::{calls_per_class, free_port, sample};

/// The unprivileged user the tool runs as.
const USER: &str = "ckb-libbpf-test";
/// What tracing a process of one's own user takes.
const OWN: &[&str] = &["cap_bpf", "cap_perfmon"];
/// ... and a process of another user: its /proc/PID/exe, maps and memory.
const OTHER: &[&str] = &["cap_bpf", "cap_perfmon", "cap_sys_ptrace"];

/// The test user's uid and gid. A system user without home or shell is
/// created the first time and left in place (the tests share it).
fn test_user() -> (u32, u32) {
    static CREATE: Mutex<()> = Mutex::new(());
    let _one_at_a_time = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, USER]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if let (Some(u), Some(g)) = (id("-u"), id("-g")) {
        return (u, g);
    }
    let st = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell"])
        .args(["/usr/sbin/nologin", USER])
        .status()
        .expect("useradd (Debian's passwd package) runs");
    assert!(st.success(), "useradd {USER}: {st}");
    (id("-u").expect("uid"), id("-g").expect("gid"))
}

/// A fresh directory every user may enter; removed on drop.
struct SharedDir(Scratch);

impl SharedDir {
    fn new() -> SharedDir {
        let dir = scratch_dir("priv");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        SharedDir(dir)
    }

    /// `src` copied in as `name`, mode 0755.
    fn copy(&self, src: &Path, name: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::copy(src, &p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// The tool, copied in with exactly `caps` as its permitted and
    /// effective file capabilities (none when empty).
    fn tool_with(&self, caps: &[&str]) -> PathBuf {
        let p = self.copy(&tool(), &format!("ckb-libbpf-{:x}", rand_u64()));
        if !caps.is_empty() {
            let st = Command::new("setcap")
                .arg(format!("{}+ep", caps.join(",")))
                .arg(&p)
                .status()
                .expect("setcap (libcap2-bin, `make deps`) runs");
            assert!(st.success(), "setcap {caps:?} {}", p.display());
        }
        p
    }
}

/// Who runs the traced workload.
#[derive(Clone, Copy, Debug)]
enum Owner {
    /// The tool's own user.
    TestUser,
    /// Another user: root, whose process also holds every capability.
    Root,
}

/// The bundled workload run by `owner`, paused before its first call.
/// Killed on drop: a refused capture never lets it run, and a workload
/// left waiting on its stdin would hang the test (the first version of
/// this test did).
struct OwnedWorkload {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl OwnedWorkload {
    fn start(dir: &SharedDir, owner: Owner) -> OwnedWorkload {
        let (uid, gid) = match owner {
            Owner::Root => (0, 0),
            Owner::TestUser => test_user(),
        };
        let bin = dir.copy(&workload_bin(), "rocksdb_workload");
        let db = dir.0.join("db");
        std::fs::create_dir(&db).unwrap();
        std::os::unix::fs::chown(&db, Some(uid), Some(gid)).unwrap();
        let (child, pid, stdin, stdout) = spawn_ready(
            Command::new(&bin)
                .arg("--db")
                .arg(&db)
                .args(["--wait-stdin", "--rounds", "2"])
                .current_dir(&dir.0)
                .uid(uid)
                .gid(gid),
        );
        OwnedWorkload {
            child,
            pid,
            stdin,
            stdout,
        }
    }

    /// Runs the rounds; the workload's own counts.
    fn run(&mut self) -> Counts {
        self.stdin.write_all(b"go\n").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        decode(&line)
    }
}

impl Drop for OwnedWorkload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tool run by the test user from a copy holding `caps`. Killed on
/// drop, so a failed assertion leaves no capture running.
struct AsUser(Option<Tool>);

impl AsUser {
    fn start(dir: &SharedDir, caps: &[&str], args: &[&str]) -> AsUser {
        let (uid, gid) = test_user();
        let bin = dir.tool_with(caps);
        AsUser(Some(Tool::start_cmd(
            Command::new(bin)
                .args(args)
                .current_dir(&dir.0)
                .uid(uid)
                .gid(gid),
        )))
    }

    fn tool(&mut self) -> &mut Tool {
        self.0.as_mut().expect("running")
    }

    fn wait(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        self.0.take().expect("running").wait()
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if let Some(t) = &mut self.0 {
            let _ = t.child.kill();
            let _ = t.child.wait();
        }
    }
}

/// `rocksdb` run by the test user holding `caps` on a workload of `owner`
/// counts every call exactly, and nothing is missing for want of a
/// privilege: the background and net layers load, the probe cost is
/// measured, every database and column family is named.
fn rocksdb_works(caps: &[&str], owner: Owner) {
    let dir = SharedDir::new();
    let mut wl = OwnedWorkload::start(&dir, owner);
    let pid = wl.pid.to_string();
    // --no-follow: the capture ends if the workload does; --ops all: the
    // workload's single-stepped calls are counted too.
    let mut t = AsUser::start(
        &dir,
        caps,
        &[
            "rocksdb",
            "--pid",
            &pid,
            "--no-follow",
            "--interval",
            "0.2",
            "--json",
            "--by-function",
            "--ops",
            "all",
        ],
    );
    t.tool().wait_rocksdb_attached(wl.pid);
    let counts = wl.run();
    wait_idle_after_calls(t.tool());
    t.tool().signal(libc::SIGINT);
    let (st, out, err) = t.wait();
    let ctx = format!("{caps:?} on a process of {owner:?}");
    assert_eq!(st.code(), Some(0), "{ctx}: {err:#?}");
    let fin = final_rocksdb(&out);
    let funcs = fin.functions.as_ref().expect("--by-function rows");
    assert!(counts.calls.len() > 10, "{counts:?}");
    for (f, n) in &counts.calls {
        assert_eq!(
            funcs.get(f).map(|r| r.count),
            Some(*n),
            "{ctx}, {f}: {err:#?}"
        );
    }
    assert!(
        fin.background.is_some(),
        "{ctx}: background layer: {err:#?}"
    );
    let said = |s: &str| err.iter().any(|l| l.contains(s));
    assert!(
        said("cause inputs: net layer"),
        "{ctx}: net layer: {err:#?}"
    );
    assert!(said("probe cost per hit measured here"), "{ctx}: {err:#?}");
    assert!(
        !said("unavailable"),
        "{ctx}: a layer did not load: {err:#?}"
    );
    assert!(!fin.by_cf.is_empty(), "{ctx}: by_cf rows");
    for r in &fin.by_cf {
        assert!(
            !r.db.starts_with("db@") && !r.cf.starts_with("cf@"),
            "{ctx}: names read from the node's memory: {r:?}"
        );
    }
}

/// `args --pid PID` run by the test user holding `caps`, on a paused
/// workload of `owner`, is refused before anything attaches: exit `code`,
/// stderr says `says`, and a remedy line follows.
fn refused(caps: &[&str], owner: Owner, args: &[&str], code: i32, says: &str) {
    let dir = SharedDir::new();
    let wl = OwnedWorkload::start(&dir, owner);
    let pid = wl.pid.to_string();
    let mut all = args.to_vec();
    all.extend(["--pid", pid.as_str()]);
    let (st, out, err) = AsUser::start(&dir, caps, &all).wait();
    drop(wl);
    let err = err.join("\n");
    let ctx = format!("{all:?} with {caps:?} on a process of {owner:?}");
    assert_eq!(st.code(), Some(code), "{ctx}: {err}");
    assert!(err.contains(says), "{ctx}: {says:?} not said: {err}");
    assert!(
        err.contains("ckb-libbpf: hint: "),
        "{ctx}: no remedy: {err}"
    );
    assert!(!err.contains("attached"), "{ctx}: attached: {err}");
    assert!(out.is_empty(), "{ctx}: {out:?}");
}

#[test]
fn rocksdb_on_a_node_of_the_same_user_needs_bpf_and_perfmon() {
    require_bpf();
    rocksdb_works(OWN, Owner::TestUser);
    let rocksdb = &["rocksdb", "1s"][..];
    refused(
        &["cap_bpf"],
        Owner::TestUser,
        rocksdb,
        3,
        "missing CAP_PERFMON",
    );
    refused(
        &["cap_perfmon"],
        Owner::TestUser,
        rocksdb,
        3,
        "missing CAP_BPF",
    );
    refused(&[], Owner::TestUser, rocksdb, 3, "CAP_BPF, CAP_PERFMON");
}

#[test]
fn rocksdb_on_another_users_node_also_needs_sys_ptrace() {
    require_bpf();
    rocksdb_works(OTHER, Owner::Root);
    refused(OWN, Owner::Root, &["rocksdb", "1s"], 2, "CAP_SYS_PTRACE");
}

/// The capabilities the systemd unit grants (AmbientCapabilities, the same
/// as its bounding set), in setcap's spelling.
fn unit_caps() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/ckb-libbpf-export.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    let set = |key: &str| -> Vec<String> {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {}", path.display()))
            .split_whitespace()
            .map(str::to_lowercase)
            .collect()
    };
    let ambient = set("AmbientCapabilities=");
    assert_eq!(ambient, set("CapabilityBoundingSet="));
    ambient
}

/// The exporter's page, or None while it does not answer.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// Scrapes until `want` holds for the page (at most 30 s); returns it.
fn wait_page(t: &mut AsUser, addr: SocketAddr, what: &str, want: impl Fn(&str) -> bool) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(st)) = t.tool().child.try_wait() {
            panic!("export exited ({st}) before {what}");
        }
        if let Some(body) = scrape(addr) {
            if want(&body) {
                return;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {what} within 30 s; last page:\n{last}");
}

/// `export` as the unit runs it (a user holding only the unit's
/// capabilities, the node another user's, the default layers) serves exact
/// counts with every layer attached; without any one of those capabilities
/// it is refused.
#[test]
fn export_runs_with_exactly_the_units_capabilities() {
    require_bpf();
    let owned = unit_caps();
    let caps: Vec<&str> = owned.iter().map(String::as_str).collect();
    let dir = SharedDir::new();
    let mut wl = OwnedWorkload::start(&dir, Owner::Root);
    let pid = wl.pid.to_string();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let listen = addr.to_string();
    // --ops all: the workload's single-stepped calls are counted too.
    let args = [
        "export",
        "--pid",
        &pid,
        "--listen",
        &listen,
        "--interval",
        "0.2",
        "--ops",
        "all",
    ];
    let mut t = AsUser::start(&dir, &caps, &args);
    let layers = ["rocksdb", "background", "net"];
    wait_page(&mut t, addr, "every default layer attached", |body| {
        layers.iter().all(|l| {
            let series = format!("ckb_libbpf_attached_programs{{layer=\"{l}\"}}");
            sample(body, &series).is_some_and(|n| n > 0.0)
        })
    });
    let want = calls_per_class(&wl.run());
    wait_page(&mut t, addr, "the workload's exact counts", |body| {
        want.iter().all(|(op, n)| {
            let series = format!("ckb_libbpf_rocksdb_op_duration_seconds_count{{op=\"{op}\"}}");
            sample(body, &series).unwrap_or(0.0) == *n as f64
        })
    });
    t.tool().signal(libc::SIGTERM);
    let (st, _, err) = t.wait();
    assert_eq!(st.code(), Some(0), "SIGTERM ends export with 0: {err:#?}");
    drop(wl);

    // Each capability of the unit is needed.
    for drop_one in &caps {
        let fewer: Vec<&str> = caps.iter().copied().filter(|c| c != drop_one).collect();
        let (code, says) = match *drop_one {
            "cap_bpf" => (3, "missing CAP_BPF"),
            "cap_perfmon" => (3, "missing CAP_PERFMON"),
            "cap_sys_ptrace" => (2, "CAP_SYS_PTRACE"),
            other => panic!("{other}: the unit grants it, but no test shows it is needed"),
        };
        refused(
            &fewer,
            Owner::Root,
            &["export", "--listen", "127.0.0.1:0"],
            code,
            says,
        );
    }
}

/// `check` as a user holding CAP_BPF + CAP_PERFMON says the tool can run
/// here and picks the backends it picks for root; without CAP_PERFMON it
/// says the privileges line fails (exit 3).
#[test]
fn check_with_bpf_and_perfmon_picks_roots_backends() {
    use ckb_libbpf::schema::check::{Check, Status};
    require_bpf();
    let (code, root) = check_json(&["check", "--json"]);
    assert_eq!(code, 0, "as root: {root:#?}");
    let dir = SharedDir::new();
    let (st, out, err) = AsUser::start(&dir, OWN, &["check", "--json"]).wait();
    assert_eq!(st.code(), Some(0), "{err:#?}");
    let user: Check = decode(&out.join("\n"));
    assert!(user.ok, "{user:#?}");
    assert_eq!(user.backends, root.backends);
    let (st, out, err) = AsUser::start(&dir, &["cap_bpf"], &["check", "--json"]).wait();
    assert_eq!(st.code(), Some(3), "{err:#?}");
    let short: Check = decode(&out.join("\n"));
    assert!(!short.ok);
    let line = short.checks.iter().find(|l| l.name == "privileges");
    assert_eq!(line.map(|l| l.status), Some(Status::Fail), "{short:#?}");
    assert!(
        line.is_some_and(|l| l.detail.contains("CAP_PERFMON")),
        "{short:#?}"
    );
}
