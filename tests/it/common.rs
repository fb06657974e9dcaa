//! Shared by the root integration tests: the bundled workload as ground
//! truth, the tool as a child process, and leak checks on the kernel.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use ckb_libbpf::schema::{self, Line, Report, RocksdbReport};
use serde::Serialize;
use serde_json::Value;

pub fn tool() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ckb-libbpf"))
}

/// The bundled RocksDB workload.
pub fn workload_bin() -> PathBuf {
    example_bin("rocksdb_workload")
}

/// An example program (ground truth) of this package. A full `cargo test`
/// builds examples; a filtered run (`cargo test --test it rocksdb`) does not,
/// so cargo is asked once per test binary and example: a no-op when it is
/// up to date (an existing binary may be stale, so it proves nothing).
pub fn example_bin(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = tool()
        .parent()
        .expect("binary has a directory")
        .to_path_buf();
    let p = dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("running cargo to build an example");
        assert!(st.success(), "building examples/{name} failed");
        built.push(name.to_string());
    }
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// A test that loads BPF programs calls this first: without root or kernel
/// BTF it fails, saying why. A run that could not test is not a pass (the
/// pure tests run anywhere: `cargo test --lib`). `CKB_LIBBPF_REQUIRE_BPF=1`,
/// which `make test` sets, asked for this before it was the default.
pub fn require_bpf() {
    let root = unsafe { libc::geteuid() } == 0;
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    assert!(
        root && btf,
        "this test loads BPF programs into the kernel: it needs root and kernel BTF \
         (here root={root}, BTF={btf}); run it as root (`sudo make test`), or run only \
         the tests that need neither with `cargo test --lib`"
    );
}

/// What the bundled workload says it did (its one JSON line after `go`):
/// the ground truth, decoded exactly like the tool's own lines.
pub use ckb_libbpf::schema::workload::{Counts, RocksStats};

/// A fresh directory `ckb-libbpf-WHAT-XXXXXX` in the temp dir, removed with
/// everything in it when dropped: when the test ends, passed or failed.
/// Whatever still uses it (a workload's database, a copied binary) must be
/// declared after it, or be waited for before it goes.
pub struct Scratch(tempfile::TempDir);

pub fn scratch_dir(what: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("ckb-libbpf-{what}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("creating a scratch directory for {what}: {e}"));
    Scratch(dir)
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self
    }
}

impl AsRef<OsStr> for Scratch {
    fn as_ref(&self) -> &OsStr {
        self.0.path().as_os_str()
    }
}

/// A program alone in a scratch directory of its own (removed on drop, so
/// keep it until its processes are waited for): a private copy of a shared
/// binary, or one built for a test.
pub struct PrivateBin {
    dir: Scratch,
    path: PathBuf,
}

impl PrivateBin {
    /// `src` copied into a fresh `ckb-libbpf-WHAT-*` directory, same file name.
    pub fn copy_of(src: &Path, what: &str) -> PrivateBin {
        let dir = scratch_dir(what);
        let path = dir.join(src.file_name().expect("a binary has a file name"));
        std::fs::copy(src, &path)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), path.display()));
        PrivateBin { dir, path }
    }

    /// The directory holding the program, free for its other files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Deref for PrivateBin {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for PrivateBin {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<OsStr> for PrivateBin {
    fn as_ref(&self) -> &OsStr {
        self.path.as_os_str()
    }
}

/// The bundled RocksDB workload, paused before its first call. Killed on
/// drop unless `finish`ed, before its scratch directory goes.
pub struct Workload {
    pub child: Child,
    pub pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Holds the database unless the test gave its own place.
    _scratch: Option<Scratch>,
}

impl Workload {
    pub fn start(args: &[&str]) -> Workload {
        Workload::start_bin(&workload_bin(), args)
    }

    /// Runs `bin` (a copy of the workload) instead of the shared one.
    pub fn start_bin(bin: &Path, args: &[&str]) -> Workload {
        let scratch = scratch_dir("test");
        // Not created here: the workload creates its database directory.
        let db = scratch.join("db");
        Workload::spawn(bin, &db, args, Some(scratch))
    }

    /// Runs `bin` with its database in `db`, which the caller owns.
    pub fn start_at(bin: &Path, db: &Path, args: &[&str]) -> Workload {
        Workload::spawn(bin, db, args, None)
    }

    fn spawn(bin: &Path, db: &Path, args: &[&str], scratch: Option<Scratch>) -> Workload {
        let (child, pid, stdin, stdout) = spawn_ready(
            Command::new(bin)
                .arg("--db")
                .arg(db)
                .arg("--wait-stdin")
                .args(args),
        );
        Workload {
            child,
            pid,
            stdin,
            stdout,
            _scratch: scratch,
        }
    }

    /// Runs the scripted operations; returns the workload's own counts.
    pub fn run(&mut self) -> Counts {
        self.stdin.write_all(b"go\n").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        decode(&line)
    }

    /// Starts the scripted operations without waiting for them (for runs
    /// with --secs that a test ends itself: kill `child`, then `finish`).
    pub fn go(&mut self) {
        self.stdin.write_all(b"go\n").unwrap();
    }

    /// Lets the workload exit.
    pub fn finish(mut self) {
        let _ = self.stdin.write_all(b"done\n");
        let _ = self.child.wait();
    }
}

impl Drop for Workload {
    /// A workload left behind by a failed test would run its rounds on EOF
    /// (for minutes with --secs) in a directory being removed.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private copy of the workload binary, so file-wide probes on it see only
/// the processes a test starts from it (tests run in parallel).
pub fn private_workload_copy() -> PrivateBin {
    PrivateBin::copy_of(&workload_bin(), "bin")
}

pub fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    u64::from_ne_bytes(b)
}

/// The tool as a child: stdout collected, stderr watched for the attach note.
pub struct Tool {
    pub child: Child,
    stdout_rx: mpsc::Receiver<String>,
    stderr_rx: mpsc::Receiver<String>,
    pub stderr: Vec<String>,
    /// Stdout lines already read by `wait_stdout`; `wait` returns them first.
    stdout_seen: Vec<String>,
}

impl Tool {
    pub fn start(args: &[&str]) -> Tool {
        Tool::start_env(&[], args)
    }

    /// Like `start`, with extra environment variables.
    pub fn start_env(env: &[(&str, &str)], args: &[&str]) -> Tool {
        Tool::start_cmd(Command::new(tool()).args(args).envs(env.iter().copied()))
    }

    /// Like `start`, for a command the caller made (another copy of the
    /// binary, another user).
    pub fn start_cmd(cmd: &mut Command) -> Tool {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ckb-libbpf");
        let (otx, stdout_rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = otx.send(l);
            }
        });
        let (etx, stderr_rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = etx.send(l);
            }
        });
        Tool {
            child,
            stdout_rx,
            stderr_rx,
            stderr: Vec::new(),
            stdout_seen: Vec::new(),
        }
    }

    /// Waits until the tool says its probes are attached.
    pub fn wait_attached(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(l) = self.stderr_rx.recv_timeout(Duration::from_millis(100)) {
                let done = l.contains("attached ");
                self.stderr.push(l);
                if done {
                    return;
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.drain_stderr();
                panic!("ckb-libbpf exited early ({st}): {:#?}", self.stderr);
            }
        }
        panic!("ckb-libbpf did not attach within 60 s: {:#?}", self.stderr);
    }

    /// Waits until `rocksdb` says its RocksDB probes are attached for `pid`
    /// (other layers' "attached" lines may come before or after it).
    pub fn wait_rocksdb_attached(&mut self, pid: u32) {
        let mine = format!("for pid {pid} (");
        while !self.wait_stderr("RocksDB functions").contains(&mine) {}
    }

    /// Waits until the tool writes a stderr line containing `needle` (after
    /// the lines already seen); returns it.
    pub fn wait_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(l) = self.stderr_rx.recv_timeout(Duration::from_millis(100)) {
                self.stderr.push(l.clone());
                if l.contains(needle) {
                    return l;
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.drain_stderr();
                panic!(
                    "ckb-libbpf exited ({st}) before saying {needle:?}: {:#?}",
                    self.stderr
                );
            }
        }
        panic!(
            "ckb-libbpf did not say {needle:?} within 60 s: {:#?}",
            self.stderr
        );
    }

    /// Waits until the tool prints a stdout line for which `want` holds (a
    /// condition to wait for instead of a timer); returns it.
    pub fn wait_stdout(&mut self, what: &str, mut want: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(l) = self.stdout_rx.recv_timeout(Duration::from_millis(100)) {
                self.stdout_seen.push(l.clone());
                if want(&l) {
                    return l;
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.drain_stderr();
                panic!(
                    "ckb-libbpf exited ({st}) before printing {what}: {:#?}",
                    self.stderr
                );
            }
        }
        panic!(
            "ckb-libbpf printed no {what} within 60 s: {:#?}",
            self.stdout_seen
        );
    }

    fn drain_stderr(&mut self) {
        while let Ok(l) = self.stderr_rx.recv_timeout(Duration::from_millis(200)) {
            self.stderr.push(l);
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit (at most 60 s); returns status and stdout lines.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("ckb-libbpf did not exit within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = std::mem::take(&mut self.stdout_seen);
        while let Ok(l) = self.stdout_rx.recv_timeout(Duration::from_millis(500)) {
            out.push(l);
        }
        self.drain_stderr();
        (status, out, self.stderr)
    }
}

/// Each case (arguments, exit code, message): the tool fails with that code
/// and says that, without a panic. Without root the privilege check comes
/// first, and must say so instead.
pub fn assert_bad_input(cases: &[(&[&str], i32, &str)]) {
    let root = unsafe { libc::geteuid() } == 0;
    for (args, code, msg) in cases {
        let (got, _out, err) = run_tool(args);
        if !root && got == 3 {
            assert!(err.contains("insufficient privileges"), "{err}");
            continue;
        }
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: expected {msg:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Runs the tool to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool())
        .args(args)
        .output()
        .expect("running ckb-libbpf");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bpftool_progs() -> Vec<Value> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .expect("bpftool is installed by `make deps`");
    assert!(out.status.success(), "bpftool prog show failed");
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// IDs of the BPF programs process `pid` holds: every BPF program and link
/// file descriptor shows `prog_id:` in /proc/PID/fdinfo.
pub fn progs_held_by(pid: u32) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter_map(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("prog_id:"))
                        .and_then(|v| v.trim().parse().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Names of the programs `ids` (the loaded ones).
pub fn prog_names(ids: &[u64]) -> Vec<String> {
    bpftool_progs()
        .iter()
        .filter(|p| p["id"].as_u64().is_some_and(|id| ids.contains(&id)))
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// How many of `ids` are RocksDB-layer programs (`rdb_*`). Other layers
/// (background, causes) load after the RocksDB attach line, so a count of
/// everything a running tool holds depends on when it is taken.
pub fn rdb_progs(ids: &[u64]) -> usize {
    prog_names(ids)
        .iter()
        .filter(|n| n.starts_with("rdb_"))
        .count()
}

/// Of `ids`, the programs that still exist after up to 5 s (the kernel frees
/// a program once its last fd and link are gone, after a grace period).
pub fn progs_left(ids: &[u64]) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live: Vec<u64> = bpftool_progs()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .collect();
        let left: Vec<u64> = ids.iter().copied().filter(|i| live.contains(i)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// BPF links (`bpftool link show`) whose program is one of `progs`.
pub fn links_of(progs: &[u64]) -> Vec<Value> {
    let out = Command::new("bpftool")
        .args(["link", "show", "--json"])
        .output()
        .expect("bpftool is installed by `make deps`");
    assert!(out.status.success(), "bpftool link show failed");
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l["prog_id"].as_u64().is_some_and(|p| progs.contains(&p)))
        .collect()
}

/// Legacy (tracefs) uprobe events libbpf created for process `pid`.
pub fn leftover_uprobe_events(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if let Ok(s) = std::fs::read_to_string(format!("{dir}/uprobe_events")) {
            out.extend(
                s.lines()
                    .filter(|l| l.contains(&format!("libbpf_{pid}_")))
                    .map(String::from),
            );
        }
    }
    out
}

/// `text` as `T`, exactly: a field `T` does not know, a field it requires
/// that is missing, a null where a value belongs or a float where an
/// integer does fail the test (`schema::decode_strict`).
pub fn decode<T: serde::de::DeserializeOwned + Serialize>(text: &str) -> T {
    schema::decode_strict(text.trim_end()).unwrap_or_else(|e| panic!("{e}"))
}

/// `check --json ARGS...` run to its end: exit code and the object,
/// decoded exactly.
pub fn check_json(args: &[&str]) -> (i32, schema::check::Check) {
    let (code, out, err) = run_tool(args);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (code, decode(&out))
}

/// Whether this kernel's build configuration has `key` (=y or =m); None
/// when the configuration cannot be read.
pub fn kernel_config_has(key: &str) -> Option<bool> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let (_, cfg) = ckb_libbpf::node::procfs::kernel_config(release.trim())?;
    Some(cfg.get(key).is_some_and(|v| v == "y" || v == "m"))
}

/// Every stdout line of a `--json` capture, decoded exactly.
pub fn lines(out: &[String]) -> Vec<Line> {
    out.iter().map(|l| decode(l)).collect()
}

/// Every report of a `--json` capture, in order (other lines skipped).
pub fn reports(out: &[String]) -> Vec<Report> {
    lines(out)
        .into_iter()
        .filter_map(|l| match l {
            Line::Report(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Waits until a `--json` capture has reported calls in an interval and
/// then an interval without any: everything the workload did before is in
/// the interval reports (a condition, not a timer).
pub fn wait_idle_after_calls(tool: &mut Tool) {
    let mut busy = false;
    tool.wait_stdout("an idle interval after calls", |l| {
        let n: u64 = match decode::<Line>(l) {
            Line::Report(Report::Rocksdb(r)) if !r.is_final => {
                r.operations.values().map(|o| o.count).sum()
            }
            _ => return false,
        };
        let idle = busy && n == 0;
        busy |= n > 0;
        idle
    });
}

/// Waits until the interval reports of a `--json` rocksdb capture have
/// counted `want` calls of `class`, summed over the lines no earlier wait
/// has read: the live output has caught up with the workload.
pub fn wait_counted(tool: &mut Tool, class: &str, want: u64) {
    let mut seen = 0;
    let what = format!("interval reports counting {want} {class} calls");
    tool.wait_stdout(&what, |l| {
        if let Line::Report(Report::Rocksdb(r)) = decode::<Line>(l) {
            if !r.is_final {
                seen += r.operations.get(class).map_or(0, |o| o.count);
            }
        }
        seen >= want
    });
}

/// The rocksdb reports of a capture, in order.
pub fn rocksdb_reports(out: &[String]) -> Vec<RocksdbReport> {
    reports(out)
        .into_iter()
        .map(|r| match r {
            Report::Rocksdb(r) => r,
            r => panic!("a {r:?} among rocksdb reports"),
        })
        .collect()
}

/// The final report of a capture: the last report, which must be final,
/// and the only final one.
pub fn final_report(out: &[String]) -> Report {
    let all = reports(out);
    assert_eq!(
        all.iter().filter(|r| r.is_final()).count(),
        1,
        "one final report in {out:#?}"
    );
    let last = all.into_iter().next_back().unwrap();
    assert!(last.is_final(), "the final report comes last: {out:#?}");
    last
}

/// The final report of a `rocksdb` capture.
pub fn final_rocksdb(out: &[String]) -> RocksdbReport {
    match final_report(out) {
        Report::Rocksdb(r) => r,
        r => panic!("not a rocksdb report: {r:?}"),
    }
}

/// The workload's functions of the PUT and GET classes (their slow-event
/// lines carry bytes, GET lines a miss flag).
pub const PUTS: &[&str] = &[
    "rocksdb_put",
    "rocksdb_put_cf",
    "rocksdb_transaction_put_cf",
];
pub const GETS: &[&str] = &[
    "rocksdb_get",
    "rocksdb_get_cf",
    "rocksdb_get_pinned",
    "rocksdb_get_pinned_cf",
    "rocksdb_transaction_get_pinned_cf",
    "rocksdb_transaction_get_for_update_cf",
];

/// Starts a workload (`cmd`, stdin and stdout piped here) and waits for its
/// `READY PID` line. A binary copied a moment ago can still be open for
/// writing in a child another test thread is forking (ETXTBSY): retried
/// briefly.
pub fn spawn_ready(cmd: &mut Command) -> (Child, u32, ChildStdin, BufReader<ChildStdout>) {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r.expect("starting the workload"),
        }
    };
    let stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("workload said {line:?}"));
    (child, pid, stdin, stdout)
}

/// The JSON output of a capture that followed one restart of its target:
/// one `exited` event for `old_pid` (run from `exe`, if given), one
/// `restarted` event for `new_pid` (`upgraded` as given), the gap between
/// them in the final report and in exactly one interval report (one of the
/// new process). Returns the final report.
pub fn assert_one_restart(
    out: &[String],
    exe: Option<&std::path::Path>,
    old_pid: u32,
    new_pid: u32,
    upgraded: bool,
) -> Report {
    let lines = lines(out);
    let events: Vec<&schema::TargetEvent> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Target(e) => Some(e),
            _ => None,
        })
        .collect();
    let [schema::TargetEvent::Exited(exited), schema::TargetEvent::Restarted(restarted)] =
        events[..]
    else {
        panic!("one exit, then one restart: {events:#?}");
    };
    assert_eq!(exited.pid, old_pid);
    if let Some(exe) = exe {
        assert_eq!(Some(exited.exe.as_str()), exe.to_str());
    }
    assert_eq!(restarted.pid, new_pid);
    assert_eq!(
        (restarted.gap.old_pid, restarted.gap.new_pid),
        (old_pid, new_pid)
    );
    assert_eq!(
        restarted.gap.upgraded, upgraded,
        "a new inode is an upgrade"
    );
    assert_eq!(restarted.time, restarted.gap.resumed_at);

    let fin = final_report(out);
    assert_eq!(fin.pid(), Some(new_pid));
    assert_eq!(
        fin.gaps(),
        std::slice::from_ref(&restarted.gap),
        "the final report has the gap"
    );
    assert!(restarted.gap.secs >= 0.0);
    let with_gap: Vec<&Report> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Report(r) if !r.is_final() && !r.gaps().is_empty() => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(with_gap.len(), 1, "one interval carries the gap");
    assert_eq!(with_gap[0].gaps(), fin.gaps());
    assert_eq!(with_gap[0].pid(), Some(new_pid));
    fin
}

/// Builds `tests/c/NAME.c` with cc (-O1, linked with `libs`) into a fresh
/// scratch dir (`dir()` of the result). A failed build names what `make deps`
/// installs for it.
pub fn build_c(name: &str, libs: &[&str]) -> PrivateBin {
    let dir = scratch_dir(name);
    let prog = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    let st = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&prog)
        .arg(src)
        .args(libs.iter().map(|l| format!("-l{l}")))
        .status()
        .expect("cc");
    assert!(
        st.success(),
        "building tests/c/{name}.c (make deps installs cc and librocksdb-dev)"
    );
    PrivateBin { dir, path: prog }
}
