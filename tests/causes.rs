//! `ckb-libbpf rocksdb --causes`: the syscall and net layers feed the
//! anomaly detector's fsync, futex and peer-churn causes. Real BPF against
//! the bundled workload, whose disk the test slows down itself.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// A disk the test owns and slows down: ext4 on a loop device over a file
/// in the temp dir, so it works wherever that dir lives (overlayfs in a
/// container, tmpfs /tmp). Its writes are limited for the workload alone by
/// a block-I/O cgroup: v1 `blkio.throttle.write_iops_device` or v2 `io.max`,
/// whichever hierarchy holds the controller. Every fdatasync then waits for
/// the throttle: a disk gone slow. (A device-mapper `delay` target would
/// need no cgroup, but kernels without CONFIG_BLK_DEV_DM exist, this test
/// machine's among them; loop devices and block throttling are nearly
/// universal.) Everything is undone on drop, even when the test fails.
struct SlowDisk {
    /// The temp dir holding the image file and the mount point.
    dir: PathBuf,
    loop_dev: String,
    /// The loop device's `major:minor`, as the cgroup files name it.
    dev: String,
    mounted: bool,
    group: Option<IoGroup>,
}

/// A cgroup of one block-I/O hierarchy, created for the test.
enum IoGroup {
    V1(PathBuf),
    V2(PathBuf),
}

impl IoGroup {
    /// Creates a group in whichever mounted hierarchy throttles block I/O.
    fn create() -> Result<IoGroup, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        let name = format!("ckb-libbpf-slow-disk-{:x}", rand_u64());
        let mut seen = Vec::new();
        for line in mountinfo.lines() {
            // "... mount_point opts ... - fstype source super_opts"
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mnt = PathBuf::from(pre.split(' ').nth(4).unwrap_or(""));
            let mut post = post.split(' ');
            let fstype = post.next().unwrap_or("");
            let super_opts = post.nth(1).unwrap_or("");
            if fstype == "cgroup" && super_opts.split(',').any(|o| o == "blkio") {
                if mnt.join("blkio.throttle.write_iops_device").exists() {
                    let dir = mnt.join(&name);
                    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    return Ok(IoGroup::V1(dir));
                }
                seen.push(format!("{} (no throttling)", mnt.display()));
            } else if fstype == "cgroup2" {
                let controllers =
                    std::fs::read_to_string(mnt.join("cgroup.controllers")).unwrap_or_default();
                if !controllers.split_whitespace().any(|c| c == "io") {
                    seen.push(format!("{} (no io controller)", mnt.display()));
                    continue;
                }
                // Children get io.max only once the parent delegates "io".
                let _ = std::fs::write(mnt.join("cgroup.subtree_control"), "+io");
                let dir = mnt.join(&name);
                std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                if !dir.join("io.max").exists() {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(format!(
                        "{}: io controller not delegated to children",
                        mnt.display()
                    ));
                }
                return Ok(IoGroup::V2(dir));
            }
        }
        Err(format!(
            "no cgroup hierarchy throttles block I/O (seen: {seen:?}); the kernel needs \
             CONFIG_BLK_DEV_THROTTLING and a mounted blkio (v1) or io (v2) controller"
        ))
    }

    fn dir(&self) -> &std::path::Path {
        match self {
            IoGroup::V1(d) | IoGroup::V2(d) => d,
        }
    }

    /// Writes per second allowed on `dev` (None: no limit).
    fn limit(&self, dev: &str, iops: Option<u32>) -> std::io::Result<()> {
        match self {
            IoGroup::V1(d) => std::fs::write(
                d.join("blkio.throttle.write_iops_device"),
                format!("{dev} {}", iops.unwrap_or(0)),
            ),
            IoGroup::V2(d) => std::fs::write(
                d.join("io.max"),
                match iops {
                    Some(n) => format!("{dev} wiops={n}"),
                    None => format!("{dev} wiops=max"),
                },
            ),
        }
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir().join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

fn run_cmd(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e} (util-linux / e2fsprogs installed?)"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl SlowDisk {
    /// A fresh, mounted, not yet limited disk. Err says what is missing
    /// (loop devices, mkfs.ext4, a block-I/O cgroup).
    fn new() -> Result<SlowDisk, String> {
        let dir = std::env::temp_dir().join(format!("ckb-libbpf-slow-disk-{:x}", rand_u64()));
        std::fs::create_dir_all(dir.join("mnt")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut disk = SlowDisk {
            dir,
            loop_dev: String::new(),
            dev: String::new(),
            mounted: false,
            group: None,
        };
        let img = disk.dir.join("disk.img");
        // Sparse: only what RocksDB writes takes space.
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(512 << 20))
            .map_err(|e| format!("{}: {e}", img.display()))?;
        let img_s = img.to_string_lossy().into_owned();
        disk.loop_dev = run_cmd("losetup", &["--find", "--show", &img_s]).map_err(|e| {
            format!("{e} (a container needs --privileged or --device for loop devices)")
        })?;
        let rdev = std::fs::metadata(&disk.loop_dev)
            .map_err(|e| format!("{}: {e}", disk.loop_dev))?
            .rdev();
        disk.dev = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
        run_cmd(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-E",
                "nodiscard",
                "-L",
                "ckb-slow",
                &disk.loop_dev,
            ],
        )?;
        let mnt = disk.mnt().to_string_lossy().into_owned();
        run_cmd("mount", &[&disk.loop_dev, &mnt])?;
        disk.mounted = true;
        disk.group = Some(IoGroup::create()?);
        Ok(disk)
    }

    fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    /// Puts `pid` (the workload) in the throttled group.
    fn hold(&self, pid: u32) {
        let g = self.group.as_ref().expect("created in new");
        std::fs::write(g.dir().join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", g.dir().display()));
    }

    /// Limits the held processes' writes to `iops` per second (None: none).
    fn limit(&self, iops: Option<u32>) {
        let g = self.group.as_ref().expect("created in new");
        g.limit(&self.dev, iops)
            .unwrap_or_else(|e| panic!("throttling {} ({}): {e}", self.dev, self.loop_dev));
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        if let Some(g) = self.group.take() {
            let _ = g.limit(&self.dev, None);
            // Whatever still runs in the group writes to the disk and would
            // keep it busy: only the workload is ever put there.
            for _ in 0..50 {
                let pids = g.pids();
                if pids.is_empty() {
                    break;
                }
                for p in pids {
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = std::fs::remove_dir(g.dir());
        }
        if self.mounted {
            let mnt = self.mnt().to_string_lossy().into_owned();
            if run_cmd("umount", &[&mnt]).is_err() {
                // Detach now, free when the last user goes.
                let _ = run_cmd("umount", &["-l", &mnt]);
            }
        }
        if !self.loop_dev.is_empty() {
            // Frees it now, or (busy) once its last user closes it.
            let _ = run_cmd("losetup", &["-d", &self.loop_dev]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn anomalies(line: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["anomalies"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn a_slow_disk_names_the_fsync_cause_with_its_evidence() {
    if !bpf_available() {
        return;
    }
    let disk = match SlowDisk::new() {
        Ok(d) => d,
        Err(why) => {
            if std::env::var("CKB_LIBBPF_REQUIRE_BPF").as_deref() == Ok("1") {
                panic!("cannot make a slow disk: {why}");
            }
            eprintln!("\n!!!!!!!! SKIPPED: cannot make a slow disk: {why} !!!!!!!!\n");
            return;
        }
    };
    // Every PUT of the rounds waits for its WAL's fdatasync.
    let mut wl = Workload::start_at(
        &workload_bin(),
        disk.mnt().join("db"),
        &["--secs", "600", "--sync-writes"],
    );
    disk.hold(wl.pid);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--pid",
        &pid,
        "--interval",
        "0.5",
        "--json",
        "--baseline-secs",
        "3",
        "--causes",
        "syscall",
    ]);
    tool.wait_stderr("cause inputs: syscall layer");
    wl.go();
    // Learn a baseline of ordinary sync writes: wait for the first report
    // after the learning period that shows PUTs and no alert.
    tool.wait_stdout("a report past the learning period", |l| {
        let v: Value = serde_json::from_str(l).unwrap_or_default();
        v["elapsed_secs"].as_f64().unwrap_or(0.0) > 4.0
            && v["operations"]["PUT"]["count"].as_u64().unwrap_or(0) > 0
    });
    // The disk slows down: 10 writes per second for this process.
    disk.limit(Some(10));
    let line = tool.wait_stdout("an alert naming fsync", |l| {
        anomalies(l).iter().any(|a| a["cause"] == "fsync_latency")
    });
    disk.limit(None);
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.child.kill().ok();
    wl.finish();
    drop(disk);
    assert_eq!(status.code(), Some(0), "{err:#?}");

    let all = anomalies(&line);
    let a = all
        .iter()
        .find(|a| a["cause"] == "fsync_latency")
        .expect("found above");
    eprintln!("alert: {a}");
    // The slowed operation is a write: PUTs wait for the WAL's fdatasync.
    assert_eq!(a["operation"], "PUT", "{a}");
    assert_eq!(a["type"], "latency_spike");
    let ev = &a["evidence"];
    let num = |k: &str| {
        ev[k]
            .as_f64()
            .unwrap_or_else(|| panic!("evidence {k} missing: {a}"))
    };
    assert!(
        num("fsync_avg_us") > 5.0 * num("fsync_baseline_us"),
        "the rule's own threshold: {a}"
    );
    assert!(num("fsync_calls") >= 1.0, "{a}");
    assert!(num("fsync_p99_us") >= num("fsync_baseline_us"), "{a}");
    assert!(a["next_step"]
        .as_str()
        .unwrap()
        .contains("ckb-libbpf syscall"));
    // The syscall layer was loaded: only the net layer's input is missing.
    assert_eq!(a["unchecked"], serde_json::json!(["peers"]), "{a}");
    let fin = final_report(&out);
    assert!(fin["anomaly_alerts"].as_u64().unwrap_or(0) >= 1, "{fin}");
}

/// Which cause layers a capture loads: their notes on stderr.
fn cause_notes(causes: Option<&str>) -> Vec<String> {
    let mut wl = Workload::start(&["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let mut args = vec!["rocksdb", "--pid", &pid, "--interval", "0.2"];
    if let Some(c) = causes {
        args.extend(["--causes", c]);
    }
    let mut tool = Tool::start(&args);
    tool.wait_attached();
    // The cause layers attach after the RocksDB probes: one report later
    // they are in.
    tool.wait_stdout("a report", |_| true);
    wl.run();
    tool.signal(libc::SIGINT);
    let (status, _, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    err.into_iter()
        .filter(|l| l.contains("cause inputs"))
        .collect()
}

#[test]
fn net_is_on_by_default_syscall_on_request() {
    if !bpf_available() {
        return;
    }
    let n = cause_notes(None);
    assert_eq!(n.len(), 1, "{n:#?}");
    assert!(n[0].contains("net layer"), "{n:#?}");
    let n = cause_notes(Some("all"));
    assert_eq!(n.len(), 2, "{n:#?}");
    assert!(n[0].contains("syscall layer") && n[1].contains("net layer"));
    assert!(cause_notes(Some("none")).is_empty());
}

#[test]
fn bad_causes_are_usage_errors() {
    let (code, _, err) = run_tool(&["rocksdb", "--pid", "1", "--causes", "disk"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`disk` is not a cause layer"), "{err}");
}

/// The syscall layer's futex figures for a process whose only futex calls
/// are `waits` waits and `wakes` wakes, traced with `backend`.
fn futex_figures(
    bin: &std::path::Path,
    backend: ckb_libbpf::probe::syscall::Backend,
    waits: u32,
    wakes: u32,
) -> ckb_libbpf::analyze::inputs::SyscallTotals {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    use ckb_libbpf::analyze::inputs::SyscallTotals;
    use ckb_libbpf::probe::syscall as sc;

    let mut child = Command::new(bin)
        .args([waits.to_string(), wakes.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: u32 = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();

    let (backend, _) = sc::choose(Some(backend)).unwrap();
    let mut obj = std::mem::MaybeUninit::uninit();
    let skel = sc::load(&mut obj, &sc::Config { tgid: pid }, backend).unwrap();
    let links = sc::attach(&skel, backend).unwrap();
    let maps = sc::Maps::new(&skel).unwrap();
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    let w = sc::read_futex_waits(&maps).unwrap();
    let s = sc::read_sample(&maps, 0).unwrap();
    drop(links);
    drop(stdin);
    child.wait().unwrap();
    SyscallTotals::from_rows(s.rows.iter().map(|r| (r.nr, &r.stats.op)), w)
}

/// The futex wait counter, exactly, with every backend: FUTEX_WAIT and
/// FUTEX_WAIT_BITSET count as waits, FUTEX_WAKE does not.
#[test]
fn futex_waits_are_counted_apart_from_wakes() {
    use ckb_libbpf::probe::syscall::Backend;
    use std::process::Command;

    if !bpf_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ckb-libbpf-futex-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("futex_calls");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/futex_calls.c");
    let st = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&bin)
        .arg(src)
        .status()
        .expect("cc");
    assert!(st.success(), "building tests/c/futex_calls.c");
    for b in Backend::ALL {
        let t = futex_figures(&bin, b, 7, 5);
        assert_eq!((t.futex_calls, t.futex_waits), (12, 7), "{b:?}");
        assert_eq!(t.fsync.count, 0, "{b:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
