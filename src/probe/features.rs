//! What this kernel can do, found by doing it: each attach type is probed by
//! loading a tiny program (src/bpf/probe.bpf.c), attaching it, triggering it
//! and reading its hit counter. Layers pick their backend from the result.

use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapType, UprobeMultiOpts, UprobeOpts};

use crate::node::elf::Elf;

mod skel {
    #![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}
use skel::ProbeSkelBuilder;

/// Attach types the layers use, in `hits[]` order of probe.bpf.c.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attach {
    Uprobe,
    UprobeMulti,
    Kprobe,
    Fentry,
    Tracepoint,
    RawTp,
    TpBtf,
}

impl Attach {
    pub const ALL: [Attach; 7] = [
        Attach::Uprobe,
        Attach::UprobeMulti,
        Attach::Kprobe,
        Attach::Fentry,
        Attach::Tracepoint,
        Attach::RawTp,
        Attach::TpBtf,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Attach::Uprobe => "uprobe",
            Attach::UprobeMulti => "uprobe_multi",
            Attach::Kprobe => "kprobe",
            Attach::Fentry => "fentry",
            Attach::Tracepoint => "tracepoint",
            Attach::RawTp => "raw_tp",
            Attach::TpBtf => "tp_btf",
        }
    }
}

/// The result of probing one attach type.
#[derive(Clone, Debug)]
pub struct Probed {
    pub attach: Attach,
    pub ok: bool,
    /// "fired N times", or which step failed and why.
    pub detail: String,
}

/// The function the uprobe probes fire on: in our own executable, so the
/// probe needs no other process and exercises our own offset resolution.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ckb_libbpf_probe_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(31).wrapping_add(7)
}

fn own_offset() -> Result<u64, String> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| e.to_string())?;
    let elf = Elf::open(&exe).map_err(|e| format!("{e:#}"))?;
    let f = elf
        .functions(&["ckb_libbpf_probe_target"])
        .map_err(|e| format!("{e:#}"))?;
    f.get("ckb_libbpf_probe_target")
        .map(|s| s.offset)
        .ok_or_else(|| "ckb_libbpf_probe_target not in our own symbol table".into())
}

fn trigger() {
    for i in 0..4 {
        std::hint::black_box(ckb_libbpf_probe_target(i));
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() };
        let _ = std::fs::read("/proc/self/stat");
    }
}

/// Loads and attaches the probe program for `attach` (filtered to `tgid`),
/// runs `act`, and returns how often the program fired meanwhile.
pub fn count_hits(attach: Attach, tgid: u32, act: impl FnOnce()) -> Result<u64, String> {
    {
        let mut obj = MaybeUninit::uninit();
        let mut open = ProbeSkelBuilder::default()
            .open(&mut obj)
            .map_err(|e| format!("open: {e}"))?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.targ_tgid = tgid;
        }
        let progs = [
            &mut open.progs.probe_uprobe,
            &mut open.progs.probe_uprobe_multi,
            &mut open.progs.probe_kprobe,
            &mut open.progs.probe_fentry,
            &mut open.progs.probe_tracepoint,
            &mut open.progs.probe_raw_tp,
            &mut open.progs.probe_tp_btf,
        ];
        for (i, p) in progs.into_iter().enumerate() {
            p.set_autoload(Attach::ALL[i] == attach);
        }
        open.progs.probe_cookie.set_autoload(false);
        open.progs.probe_cookie_multi.set_autoload(false);
        let skel = open
            .load()
            .map_err(|e| format!("the kernel rejected the program: {e}"))?;
        let p = &skel.progs;
        let self_exe = Path::new("/proc/self/exe");
        let link: Link = match attach {
            Attach::Uprobe => p.probe_uprobe.attach_uprobe_with_opts(
                -1,
                self_exe,
                own_offset()? as usize,
                UprobeOpts::default(),
            ),
            Attach::UprobeMulti => p.probe_uprobe_multi.attach_uprobe_multi_with_opts(
                -1,
                self_exe,
                "",
                UprobeMultiOpts {
                    offsets: vec![own_offset()? as usize],
                    ..Default::default()
                },
            ),
            Attach::Kprobe => p.probe_kprobe.attach(),
            Attach::Fentry => p.probe_fentry.attach(),
            Attach::Tracepoint => p.probe_tracepoint.attach(),
            Attach::RawTp => p.probe_raw_tp.attach(),
            Attach::TpBtf => p.probe_tp_btf.attach(),
        }
        .map_err(|e| format!("attach failed: {e}"))?;
        act();
        let hits = skel
            .maps
            .bss_data
            .as_deref()
            .map(|b| {
                // SAFETY: reading a u64 of the mmap'ed .bss the program writes.
                unsafe { std::ptr::read_volatile(&b.hits[attach as usize]) }
            })
            .unwrap_or(0);
        drop(link);
        Ok(hits)
    }
}

/// The cookie `cookies()` attaches with: any value that cannot be zero by
/// accident.
const COOKIE: u64 = 0xC0FF_EE15_0005_0015;

/// Whether uprobes get their BPF cookie (Linux 5.15+): a uprobe attached
/// with one must read it back. The rocksdb and background layers need it.
/// Tried through a uprobe_multi link first, as those layers attach where
/// they can (it needs only CAP_BPF + CAP_PERFMON), then through a single
/// perf-event uprobe (which needs CAP_SYS_ADMIN, or root).
pub fn cookies() -> Probed {
    let probed = |ok, detail: String| Probed {
        attach: Attach::Uprobe,
        ok,
        detail,
    };
    if super::fault("cookie") {
        return probed(false, "CKB_LIBBPF_FAULT=cookie".into());
    }
    let seen = cookie_seen(true).or_else(|multi| {
        cookie_seen(false).map_err(|single| format!("{single} (uprobe_multi: {multi})"))
    });
    match seen {
        Ok(COOKIE) => probed(true, "uprobes receive their BPF cookie".into()),
        Ok(0) => probed(false, "the uprobe did not fire or saw no cookie".into()),
        Ok(v) => probed(
            false,
            format!("the uprobe saw cookie {v:#x}, not {COOKIE:#x}"),
        ),
        Err(e) => probed(false, e),
    }
}

/// The cookie a uprobe on ourselves (a uprobe_multi link with `multi`)
/// read when it fired.
fn cookie_seen(multi: bool) -> Result<u64, String> {
    let mut obj = MaybeUninit::uninit();
    let mut open = ProbeSkelBuilder::default()
        .open(&mut obj)
        .map_err(|e| format!("open: {e}"))?;
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.targ_tgid = std::process::id();
    }
    let p = &mut open.progs;
    for prog in [
        &mut p.probe_uprobe,
        &mut p.probe_uprobe_multi,
        &mut p.probe_kprobe,
        &mut p.probe_fentry,
        &mut p.probe_tracepoint,
        &mut p.probe_raw_tp,
        &mut p.probe_tp_btf,
    ] {
        prog.set_autoload(false);
    }
    p.probe_cookie.set_autoload(!multi);
    p.probe_cookie_multi.set_autoload(multi);
    let skel = open
        .load()
        .map_err(|e| format!("the kernel rejected bpf_get_attach_cookie (Linux 5.15+): {e}"))?;
    let exe = Path::new("/proc/self/exe");
    let offset = own_offset()? as usize;
    let link = if multi {
        skel.progs.probe_cookie_multi.attach_uprobe_multi_with_opts(
            -1,
            exe,
            "",
            UprobeMultiOpts {
                offsets: vec![offset],
                cookies: vec![COOKIE],
                ..Default::default()
            },
        )
    } else {
        skel.progs.probe_cookie.attach_uprobe_with_opts(
            -1,
            exe,
            offset,
            UprobeOpts {
                cookie: COOKIE,
                ..Default::default()
            },
        )
    }
    .map_err(|e| format!("attach failed: {e}"))?;
    trigger();
    let seen = skel
        .maps
        .bss_data
        .as_deref()
        // SAFETY: reading a u64 of the mmap'ed .bss the program writes.
        .map(|b| unsafe { std::ptr::read_volatile(&b.cookie_seen) })
        .unwrap_or(0);
    drop(link);
    Ok(seen)
}

/// Probes one attach type on ourselves.
pub fn probe(attach: Attach) -> Probed {
    match count_hits(attach, std::process::id(), trigger) {
        Ok(n) if n > 0 => Probed {
            attach,
            ok: true,
            detail: format!("loaded, attached, fired {n} times"),
        },
        Ok(_) => Probed {
            attach,
            ok: false,
            detail: "loaded and attached but never fired".into(),
        },
        Err(e) => Probed {
            attach,
            ok: false,
            detail: e,
        },
    }
}

pub fn probe_all() -> Vec<Probed> {
    Attach::ALL.iter().map(|&a| probe(a)).collect()
}

/// Whether the bpf() syscall works at all, and ring buffers (5.8+) exist:
/// create a map of each kind and throw it away.
pub fn map_works(ty: MapType) -> Result<(), String> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    let (k, v, n) = match ty {
        MapType::RingBuf => (0, 0, 4096),
        _ => (4, 8, 1),
    };
    MapHandle::create(ty, Some("ckb_libbpf_chk"), k, v, n, &opts)
        .map(|m| {
            if ty == MapType::Array {
                let _ = m.update(&0u32.to_ne_bytes(), &1u64.to_ne_bytes(), MapFlags::ANY);
            }
        })
        .map_err(|e| e.to_string())
}

/// Where tracefs is, mounting it if the kernel has it but nobody mounted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracefs {
    Mounted(&'static str),
    MountedNow(&'static str),
    Unavailable(String),
}

pub fn ensure_tracefs() -> Tracefs {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("events").is_dir() {
            return Tracefs::Mounted(dir);
        }
        // Mounted, but mode 0700 and we are not root: mounting it again
        // (CAP_SYS_ADMIN allows that) would only stack another mount.
        if crate::node::procfs::mounted_at(dir, "tracefs") {
            return Tracefs::Unavailable(format!(
                "{dir} is mounted but this user may not read it (the tracepoint backend needs root or CAP_DAC_READ_SEARCH)"
            ));
        }
    }
    let target = "/sys/kernel/tracing";
    if !Path::new(target).is_dir() {
        return Tracefs::Unavailable(format!(
            "{target} does not exist (kernel without CONFIG_TRACING?)"
        ));
    }
    let src = c"tracefs";
    let dst = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Tracefs::MountedNow(target)
    } else {
        Tracefs::Unavailable(format!(
            "mount -t tracefs failed: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// A tracepoint a tp_btf program can attach to: the kernel's BTF has its
/// `btf_trace_<name>` type. Without BTF (`btf` None) tracefs decides.
pub fn tp_btf_exists(btf: Option<&libbpf_rs::btf::Btf<'_>>, group: &str, name: &str) -> bool {
    match btf {
        Some(b) => b
            .type_by_name::<libbpf_rs::btf::BtfType<'_>>(&format!("btf_trace_{name}"))
            .is_some(),
        None => tracepoint_exists(group, name),
    }
}

/// A tracepoint exists (needs tracefs).
pub fn tracepoint_exists(group: &str, name: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|d| Path::new(d).join("events").join(group).join(name).is_dir())
}
