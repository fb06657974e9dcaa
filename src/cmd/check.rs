//! `ckb-libbpf check`: will it work here, and how well? Every line that is
//! not fine says what to do.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use libbpf_rs::MapType;

use super::Out;
use crate::engine::{self, Layers, Options, Snapshot, Stop, View};
use crate::error::Exit;
use crate::node::procfs;
use crate::node::symbols::{analyze, LinkMode};
use crate::probe::features::{self, Attach, Tracefs};

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Also report the RocksDB symbols of this CKB binary (or librocksdb.so).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Also attach to this process for 3 s and count live events per probe type.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// One JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

pub use crate::schema::check::{Line, Status};

fn line(name: &str, status: Status, detail: impl Into<String>, remedy: Option<&str>) -> Line {
    Line {
        name: name.into(),
        status,
        detail: detail.into(),
        remedy: remedy.map(String::from),
    }
}

const CONFIG_KEYS: &[(&str, bool)] = &[
    ("BPF", true),
    ("BPF_SYSCALL", true),
    ("BPF_JIT", false),
    ("BPF_EVENTS", true),
    ("UPROBES", true),
    ("UPROBE_EVENTS", false),
    ("KPROBES", false),
    ("DEBUG_INFO_BTF", true),
];

/// Environment lines and the probe results.
pub fn environment() -> (Vec<Line>, Vec<features::Probed>) {
    let mut out = Vec::new();
    let (release, machine) = crate::node::procfs::uname();
    out.push(line(
        "kernel",
        Status::Ok,
        format!("{release} ({machine})"),
        None,
    ));

    match crate::node::procfs::kernel_config(&release) {
        Some((src, cfg)) => {
            let mut missing_required = Vec::new();
            let desc: Vec<String> = CONFIG_KEYS
                .iter()
                .map(|(k, required)| {
                    let v = cfg.get(*k).map(String::as_str).unwrap_or("n");
                    if *required && v == "n" {
                        missing_required.push(*k);
                    }
                    format!("{k}={v}")
                })
                .collect();
            let status = if missing_required.is_empty() { Status::Ok } else { Status::Fail };
            out.push(line(
                "kernel config",
                status,
                format!("{} (from {src})", desc.join(" ")),
                (!missing_required.is_empty())
                    .then_some("use a kernel built with CONFIG_BPF_SYSCALL, CONFIG_BPF_EVENTS, CONFIG_UPROBES and CONFIG_DEBUG_INFO_BTF"),
            ));
        }
        None => out.push(line(
            "kernel config",
            Status::Warn,
            "neither /proc/config.gz nor /boot/config-<release> is readable; relying on the probes below",
            Some("optional: `modprobe configs` exposes /proc/config.gz"),
        )),
    }

    let btf = crate::probe::btf_problem(std::path::Path::new(crate::probe::VMLINUX_BTF));
    let btf_detail = match &btf {
        None => format!("{} present (CO-RE works)", crate::probe::VMLINUX_BTF),
        Some(why) => why.clone(),
    };
    out.push(line(
        "BTF",
        if btf.is_none() {
            Status::Ok
        } else {
            Status::Fail
        },
        &btf_detail,
        btf.is_some()
            .then_some("CO-RE needs kernel BTF: use a kernel with CONFIG_DEBUG_INFO_BTF=y"),
    ));

    let missing = crate::probe::missing_caps(crate::node::procfs::effective_caps());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    out.push(line(
        "privileges",
        if missing.is_empty() {
            Status::Ok
        } else {
            Status::Fail
        },
        match (root, missing.is_empty()) {
            (true, true) => "root with CAP_SYS_ADMIN".to_string(),
            (false, true) => "CAP_BPF and CAP_PERFMON present".to_string(),
            (_, false) => format!("missing {}", missing.join(", ")),
        },
        (!missing.is_empty())
            .then_some("run as root (sudo), or: setcap cap_bpf,cap_perfmon+ep $(which ckb-libbpf)"),
    ));

    let sys = features::map_works(MapType::Array);
    out.push(line(
        "bpf() syscall",
        if sys.is_ok() {
            Status::Ok
        } else {
            Status::Fail
        },
        sys.clone()
            .map(|()| "map created".to_string())
            .unwrap_or_else(|e| e),
        sys.is_err()
            .then_some("check privileges, kernel.unprivileged_bpf_disabled and lockdown mode"),
    ));
    let rb = features::map_works(MapType::RingBuf);
    out.push(line(
        "ring buffer",
        // Every capture needs one (slow events, jobs, connection events):
        // without it they exit 3 before loading anything.
        if rb.is_ok() { Status::Ok } else { Status::Fail },
        rb.clone()
            .map(|()| "BPF_MAP_TYPE_RINGBUF works".to_string())
            .unwrap_or_else(|e| e),
        rb.is_err()
            .then_some("every capture needs BPF ring buffers: Linux 5.8 or later"),
    ));

    match features::ensure_tracefs() {
        Tracefs::Mounted(d) => {
            out.push(line("tracefs", Status::Ok, format!("mounted at {d}"), None))
        }
        Tracefs::MountedNow(d) => out.push(line(
            "tracefs",
            Status::Ok,
            format!("was not mounted; mounted it at {d}"),
            None,
        )),
        Tracefs::Unavailable(e) => out.push(line(
            "tracefs",
            Status::Warn,
            e,
            Some("only the classic tracepoint backends need it (tp_btf and raw_tp do not): as root, mount -t tracefs tracefs /sys/kernel/tracing"),
        )),
    }

    let probed = if sys.is_ok() {
        features::probe_all()
    } else {
        Vec::new()
    };
    let multi = probed
        .iter()
        .any(|p| p.attach == Attach::UprobeMulti && p.ok);
    for p in &probed {
        let (status, remedy) = match (p.ok, p.attach) {
            (true, _) => (Status::Ok, None),
            // Measured on 6.18: a perf-event uprobe needs CAP_SYS_ADMIN where
            // a uprobe_multi link needs only CAP_BPF + CAP_PERFMON.
            (false, Attach::Uprobe) if multi => (Status::Warn, Some("optional: the rocksdb layer attaches uprobe_multi links; single uprobes (the fallback) need root or CAP_SYS_ADMIN")),
            (false, Attach::Uprobe) => (Status::Fail, Some("the rocksdb layer needs uprobes: CONFIG_UPROBES=y, CONFIG_UPROBE_EVENTS=y (and root or CAP_SYS_ADMIN for single uprobes)")),
            (false, Attach::Kprobe) => (Status::Warn, Some("optional: net uses tracepoints instead (CONFIG_KPROBES=y enables kprobes)")),
            (false, Attach::Fentry) => (Status::Warn, Some("optional: needs BPF trampolines (x86_64/arm64, CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS)")),
            (false, Attach::UprobeMulti) => (Status::Warn, Some("optional (Linux 6.6+): without it detaching takes ~0.1 s per probe")),
            (false, _) => (Status::Warn, Some("optional: another backend is used")),
        };
        out.push(line(
            &format!("probe {}", p.attach.name()),
            status,
            p.detail.clone(),
            remedy,
        ));
    }
    (out, probed)
}

fn layer_lines(probed: &[features::Probed]) -> Vec<Line> {
    let cookies = features::cookies();
    let mut lines = vec![line(
        "bpf cookies",
        if cookies.ok { Status::Ok } else { Status::Fail },
        cookies.detail.clone(),
        (!cookies.ok).then_some("the rocksdb layer needs Linux 5.15+ (bpf_get_attach_cookie for uprobes); net and syscall run without it"),
    )];
    lines.extend(["rocksdb", "net", "syscall"].iter().map(|layer| {
        match crate::probe::backend(layer, probed) {
            Some(_) if *layer == "rocksdb" && !cookies.ok => line(
                "layer rocksdb",
                Status::Fail,
                "uprobes attach, but without BPF cookies the programs cannot tell functions apart",
                Some("Linux 5.15 or later"),
            ),
            Some(b) if *layer == "net" => line(
                "layer net",
                Status::Ok,
                format!(
                    "backend: {b}; per feature: {}",
                    crate::probe::net::Choice::new(crate::probe::net::availability(probed), None)
                        .describe()
                ),
                None,
            ),
            Some(b) => line(
                &format!("layer {layer}"),
                Status::Ok,
                format!("backend: {b}"),
                None,
            ),
            None => line(
                &format!("layer {layer}"),
                if *layer == "rocksdb" {
                    Status::Fail
                } else {
                    Status::Warn
                },
                "no working backend",
                Some("see the failed probe lines above"),
            ),
        }
    }));
    lines.push(net_fallback_line(probed));
    if cookies.ok {
        lines.push(map_memory_line());
    }
    lines
}

/// The kernel memory the default capture's RocksDB and background maps take
/// on this host (loaded, never attached; sized for 30 functions and this
/// pid_max), and on a 96-CPU host, where the aggregation maps turn shared.
fn map_memory_line() -> Line {
    use crate::probe::{background as bg, rocksdb as rdb, uprobe::Backend, MapMemory};
    use libbpf_rs::skel::Skel;
    use std::mem::MaybeUninit;
    let measured = (|| -> Result<(MapMemory, u64)> {
        let mut o1 = MaybeUninit::uninit();
        let cfg = rdb::Config {
            tgid: 1,
            slots: 30,
            ..rdb::Config::default()
        };
        let r = rdb::load(&mut o1, &cfg, Backend::Single)?;
        let mut m = MapMemory::of(r.object());
        let stats = rdb::per_cpu_stats_bytes(&r);
        let mut o2 = MaybeUninit::uninit();
        let cfg = bg::Config {
            tgid: 1,
            events: false,
        };
        let b = bg::load(&mut o2, &cfg, Backend::Single)?;
        m.add(MapMemory::of(b.object()));
        Ok((m, stats))
    })();
    match measured {
        Ok((m, stats)) => line(
            "map memory",
            Status::Ok,
            format!(
                "rocksdb + background layers: {}",
                crate::engine::map_memory_text(m, &[stats])
            ),
            None,
        ),
        Err(e) => line(
            "map memory",
            Status::Warn,
            format!("could not load the RocksDB layer's maps: {e:#}"),
            Some("see the bpf() and probe lines above"),
        ),
    }
}

/// Whether the net layer's kprobe and fentry programs pass the verifier,
/// and whether they could attach: the fallbacks for kernels without the
/// sock tracepoints.
fn net_fallback_line(probed: &[features::Probed]) -> Line {
    use crate::probe::net::{load_variant_only, Variant};
    let attaches = |a: Attach| probed.iter().any(|p| p.attach == a && p.ok);
    let parts: Vec<String> = [
        (Variant::Kprobe, Attach::Kprobe),
        (Variant::Fentry, Attach::Fentry),
    ]
    .into_iter()
    .map(|(v, a)| {
        let load = match load_variant_only(v) {
            Ok(n) => format!("{n} programs load"),
            Err(e) => format!("rejected at load ({e:#})"),
        };
        let attach = if attaches(a) {
            "attach works"
        } else {
            "cannot attach here (skipped)"
        };
        format!("{}: {load}, {attach}", v.name())
    })
    .collect();
    line("net fallbacks", Status::Ok, parts.join("; "), None)
}

fn binary_lines(path: &std::path::Path) -> Vec<Line> {
    let r = match analyze(path, None) {
        Ok(r) => r,
        Err(e) => {
            return vec![line(
                "binary",
                Status::Fail,
                format!("{e:#}"),
                crate::error::remedy(&e).or(Some("pass the CKB executable or a librocksdb.so")),
            )]
        }
    };
    let mut out = Vec::new();
    let link = match &r.link_mode {
        LinkMode::Static => "RocksDB linked statically".to_string(),
        LinkMode::Dynamic(p) => format!("RocksDB from {}", p.display()),
        LinkMode::Library => "a RocksDB library".to_string(),
        LinkMode::None if r.stripped => "RocksDB symbols not visible (stripped)".to_string(),
        LinkMode::None => "no RocksDB".to_string(),
    };
    out.push(line(
        "binary",
        if r.tier1_present() > 0 {
            Status::Ok
        } else {
            Status::Fail
        },
        format!(
            "{}: {link}; {} of {} RocksDB C API functions{}{}",
            path.display(),
            r.tier1_present(),
            r.tier1.len(),
            if r.stripped { "; stripped" } else { "" },
            r.ckb_version
                .as_deref()
                .map(|v| format!("; {v}"))
                .unwrap_or_default()
        ),
        (r.tier1_present() == 0).then_some(if r.stripped {
            "the binary is stripped: use a CKB build with its symbol table"
        } else {
            "not a CKB node nor a librocksdb.so? `ckb-libbpf symbols PATH` shows what it has"
        }),
    ));
    let steps = r.single_stepped();
    if !steps.is_empty() {
        out.push(line(
            "probe cost",
            Status::Warn,
            format!(
                "single-stepped (~10 µs a hit), left out by default: {}",
                steps.join(", ")
            ),
            Some("opt in with `rocksdb --ops NAME` where the call rate is low"),
        ));
    }
    out.push(line(
        "tier 2",
        Status::Ok,
        format!(
            "{} RocksDB internals, {} tentacle protocol handlers",
            r.tier2.len() - r.tentacle_count(),
            r.tentacle_count()
        ),
        None,
    ));
    out
}

/// Attaches the real rocksdb layer and the syscall probe to `pid` for
/// `secs`, counts what fires, detaches.
fn live_lines(pid: u32, probed: &[features::Probed], secs: u64) -> Vec<Line> {
    let mut out = Vec::new();
    let proc = match crate::node::find_by_pid(pid) {
        Ok(p) => p,
        Err(e) => {
            return vec![line(
                "live test",
                Status::Fail,
                format!("{e:#}"),
                crate::error::remedy(&e),
            )]
        }
    };
    let before = procfs::own_bpf_fds();
    let live = live_rocksdb(crate::node::Target::of(proc.clone()), secs);
    match live {
        Ok(v) => {
            let total: u64 = v.iter().map(|x| x.1).sum();
            let top: Vec<String> = v
                .iter()
                .take(6)
                .map(|(n, c)| format!("{} {c}", n.trim_start_matches("rocksdb_")))
                .collect();
            out.push(line(
                "live uprobe",
                if total > 0 { Status::Ok } else { Status::Warn },
                format!(
                    "{total} RocksDB calls in {secs} s from pid {pid}: {}",
                    if top.is_empty() {
                        "none".into()
                    } else {
                        top.join(", ")
                    }
                ),
                (total == 0)
                    .then_some("attached fine but the process made no RocksDB calls (idle node?)"),
            ));
        }
        Err(e) => out.push(line(
            "live uprobe",
            Status::Fail,
            format!("{e:#}"),
            crate::error::remedy(&e),
        )),
    }
    if let Some(b) = crate::probe::backend("syscall", probed) {
        let attach = Attach::ALL
            .into_iter()
            .find(|a| a.name() == b)
            .unwrap_or(Attach::RawTp);
        match features::count_hits(attach, pid, || std::thread::sleep(Duration::from_secs(1))) {
            Ok(n) => out.push(line(
                "live syscall",
                Status::Ok,
                format!("{n} syscalls in 1 s via {b}"),
                None,
            )),
            Err(e) => out.push(line("live syscall", Status::Warn, e, None)),
        }
    }
    // Every program, link and perf event the live test opened must be
    // closed again: our own file descriptors say so.
    let after = procfs::own_bpf_fds();
    out.push(if after <= before {
        line(
            "detach",
            Status::Ok,
            format!("every live-test probe detached ({after} BPF descriptors open, as before)"),
            None,
        )
    } else {
        line(
            "detach",
            Status::Fail,
            format!(
                "{} BPF descriptors still open after the live test (before: {before})",
                after
            ),
            Some("report this as a bug: the tool would leave probes behind"),
        )
    });
    out
}

/// The rocksdb layer, through the capture engine, on `target` for `secs`:
/// calls per function.
fn live_rocksdb(target: crate::node::Target, secs: u64) -> Result<Vec<(String, u64)>> {
    struct Last(Option<crate::model::Report>);
    impl View for Last {
        fn snapshot(&mut self, s: &Snapshot) -> std::result::Result<(), Stop> {
            if s.is_final {
                self.0 = s.rocksdb.clone();
            }
            Ok(())
        }
        fn target(&mut self, _: &crate::model::TargetEvent) -> std::result::Result<(), Stop> {
            Ok(())
        }
    }
    let opts = Options {
        layers: Layers {
            rocksdb: true,
            ..Layers::default()
        },
        by_function: true,
        duration: Some(Duration::from_secs(secs)),
        no_follow: true,
        calibrate: false,
        ..Options::default()
    };
    let mut last = Last(None);
    engine::run(target, &opts, &mut last)?;
    let mut v: Vec<(String, u64)> = last
        .0
        .map(|r| r.functions.into_iter().map(|f| (f.name, f.count)).collect())
        .unwrap_or_default();
    v.retain(|x| x.1 > 0);
    v.sort_by_key(|x| std::cmp::Reverse(x.1));
    Ok(v)
}

pub fn run(args: CheckArgs) -> Result<Exit> {
    let (mut lines, probed) = environment();
    lines.extend(layer_lines(&probed));
    let env_ok = !lines.iter().any(|l| l.status == Status::Fail);
    if let Some(b) = &args.binary {
        lines.extend(binary_lines(b));
    }
    if let Some(pid) = args.pid {
        if env_ok {
            lines.extend(live_lines(pid, &probed, 3));
        } else {
            lines.push(line(
                "live test",
                Status::Fail,
                "skipped: the environment checks failed",
                None,
            ));
        }
    }
    let ok = !lines.iter().any(|l| l.status == Status::Fail);
    let text = if args.json {
        let probes: Vec<(&str, bool)> = probed.iter().map(|p| (p.attach.name(), p.ok)).collect();
        let backends =
            ["rocksdb", "net", "syscall"].map(|l| (l, crate::probe::backend(l, &probed)));
        crate::render::check::json(&lines, &probes, &backends, ok)
    } else {
        crate::render::check::text(&lines, ok)
    };
    let _ = Out::new().print(&text);
    Ok(if ok {
        Exit::Ok
    } else if env_ok {
        Exit::Usage // the environment is fine; the binary or PID is not
    } else {
        Exit::Environment
    })
}
