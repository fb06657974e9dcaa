//! `ckb-libbpf check`: will it work here, and how well? Every line that is
//! not fine says what to do.

use std::collections::HashMap;
use std::io::Read;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use libbpf_rs::MapType;
use serde_json::json;

use super::Out;
use crate::error::Exit;
use crate::probe::features::{self, Attach, Tracefs};
use crate::probe::rocksdb::{self as rdb, Backend, OpsFilter, Plan, FUNCS};
use crate::node::symbols::{analyze, LinkMode};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub remedy: Option<String>,
}

fn line(name: &str, status: Status, detail: impl Into<String>, remedy: Option<&str>) -> Line {
    Line {
        name: name.into(),
        status,
        detail: detail.into(),
        remedy: remedy.map(String::from),
    }
}

fn uname() -> (String, String) {
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.release), s(&u.machine))
}

/// The kernel build configuration, from /proc/config.gz or /boot.
pub fn kernel_config(release: &str) -> Option<(String, HashMap<String, String>)> {
    let text = std::fs::File::open("/proc/config.gz")
        .ok()
        .and_then(|f| {
            let mut s = String::new();
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut s)
                .ok()?;
            Some(("/proc/config.gz".to_string(), s))
        })
        .or_else(|| {
            let p = format!("/boot/config-{release}");
            std::fs::read_to_string(&p).ok().map(|s| (p, s))
        })?;
    Some((text.0, parse_config(&text.1)))
}

pub fn parse_config(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for l in text.lines() {
        if let Some((k, v)) = l.strip_prefix("CONFIG_").and_then(|l| l.split_once('=')) {
            m.insert(k.to_string(), v.to_string());
        } else if let Some(k) = l
            .strip_prefix("# CONFIG_")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            m.insert(k.to_string(), "n".to_string());
        }
    }
    m
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
    let (release, machine) = uname();
    out.push(line(
        "kernel",
        Status::Ok,
        format!("{release} ({machine})"),
        None,
    ));

    match kernel_config(&release) {
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

    let missing = crate::probe::missing_caps(crate::probe::effective_caps());
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
        if rb.is_ok() { Status::Ok } else { Status::Warn },
        rb.clone()
            .map(|()| "BPF_MAP_TYPE_RINGBUF works".to_string())
            .unwrap_or_else(|e| e),
        rb.is_err()
            .then_some("--slow needs ring buffers (Linux 5.8+); tables and histograms still work"),
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
            Some("mount -t tracefs tracefs /sys/kernel/tracing (tracepoint backends need it)"),
        )),
    }

    let probed = if sys.is_ok() {
        features::probe_all()
    } else {
        Vec::new()
    };
    for p in &probed {
        let (status, remedy) = match (p.ok, p.attach) {
            (true, _) => (Status::Ok, None),
            (false, Attach::Uprobe) => (Status::Fail, Some("the rocksdb layer needs uprobes: CONFIG_UPROBES=y, CONFIG_UPROBE_EVENTS=y")),
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
    let mut lines: Vec<Line> = ["rocksdb", "net", "syscall"]
        .iter()
        .map(|layer| match features::backend(layer, probed) {
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
        })
        .collect();
    lines.push(net_fallback_line(probed));
    lines
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
    let live = (|| -> Result<Vec<(String, u64)>> {
        let t = super::rocksdb::process_target(proc.clone())?;
        let found = rdb::resolve(t.files)?;
        let plan = Plan::new(&found, &OpsFilter::default());
        let backend = if probed
            .iter()
            .any(|p| p.attach == Attach::UprobeMulti && p.ok)
        {
            Backend::Multi
        } else {
            Backend::Single
        };
        let cfg = rdb::Config {
            tgid: pid,
            slow_ns: None,
            ..Default::default()
        };
        let mut obj = MaybeUninit::uninit();
        let skel = rdb::load(&mut obj, &cfg, backend)?;
        let links = rdb::attach(&skel, &plan, backend)?;
        let maps = rdb::Maps::new(&skel, &plan)?;
        std::thread::sleep(Duration::from_secs(secs));
        let s = rdb::read_sample(&maps, 0)?;
        crate::probe::detach(links);
        let mut per: HashMap<usize, u64> = HashMap::new();
        for k in &s.rows {
            *per.entry(k.func).or_default() += k.stats.count;
        }
        let mut v: Vec<(String, u64)> = per
            .into_iter()
            .map(|(f, n)| (FUNCS[f].name.to_string(), n))
            .collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        Ok(v)
    })();
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
    if let Some(b) = features::backend("syscall", probed) {
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
    out.push(line(
        "detach",
        Status::Ok,
        "every live-test probe detached",
        None,
    ));
    out
}

fn render_text(lines: &[Line], ok: bool) -> String {
    let mut o = String::from("ckb-libbpf environment check\n");
    for l in lines {
        let mark = match l.status {
            Status::Ok => " ok ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        o.push_str(&format!("[{mark}] {:<18} {}\n", l.name, l.detail));
        if let Some(r) = &l.remedy {
            o.push_str(&format!("       {:<18} -> {r}\n", ""));
        }
    }
    o.push_str(if ok {
        "result: ckb-libbpf can run here\n"
    } else {
        "result: ckb-libbpf cannot run here: fix the FAIL lines\n"
    });
    o
}

fn render_json(lines: &[Line], probed: &[features::Probed], ok: bool) -> String {
    let status = |s: Status| match s {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "fail",
    };
    json!({
        "ok": ok,
        "checks": lines.iter().map(|l| json!({"name": l.name, "status": status(l.status), "detail": l.detail, "remedy": l.remedy})).collect::<Vec<_>>(),
        "probes": probed.iter().map(|p| (p.attach.name().to_string(), json!(p.ok))).collect::<serde_json::Map<_, _>>(),
        "backends": {
            "rocksdb": features::backend("rocksdb", probed),
            "net": features::backend("net", probed),
            "syscall": features::backend("syscall", probed),
        },
    })
    .to_string()
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
        render_json(&lines, &probed, ok)
    } else {
        render_text(&lines, ok)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parsing() {
        let c =
            parse_config("CONFIG_BPF=y\n# CONFIG_KPROBES is not set\nCONFIG_HZ=250\n# comment\n");
        assert_eq!(c["BPF"], "y");
        assert_eq!(c["KPROBES"], "n");
        assert_eq!(c["HZ"], "250");
    }
}
