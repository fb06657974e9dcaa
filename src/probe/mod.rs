//! Loading and attaching BPF programs: one module per layer wraps its
//! generated skeleton (rodata knobs, attach plan, map readers); this file
//! holds what every layer shares.

pub mod background;
pub mod calibrate;
pub mod features;
pub mod net;
pub mod rocksdb;
pub mod syscall;
pub mod uprobe;

use anyhow::Result;

use crate::error::{Exit, Failure};
use crate::model::DROP_REASONS;

/// Linux capability numbers we need besides root.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Capabilities missing for loading BPF and creating probes, by name.
pub fn missing_caps(caps: u64) -> Vec<&'static str> {
    let has = |c: u32| caps & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// Fails early, with the remedy, when we cannot load BPF programs.
pub fn require_privileges() -> Result<()> {
    let missing = missing_caps(crate::node::procfs::effective_caps());
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Exit::Environment,
        format!("insufficient privileges to load BPF programs (missing {})", missing.join(", ")),
    )
    .hint("run as root (sudo ckb-libbpf ...) or grant CAP_BPF and CAP_PERFMON: setcap cap_bpf,cap_perfmon+ep $(which ckb-libbpf)")
    .into())
}

/// Kernel BTF, which CO-RE relocations need: where it lives, and whether it
/// starts with the BTF magic (a missing or unreadable file fails the load
/// with a bare EIO/ESRCH otherwise).
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `CKB_LIBBPF_FAULT=btf,ringbuf,cookie` makes the preflight checks fail as on a
/// kernel without the feature: the only way to test those messages on a
/// machine that has everything. Testing aid; documented in the README.
pub(crate) fn fault(name: &str) -> bool {
    std::env::var("CKB_LIBBPF_FAULT").is_ok_and(|v| v.split(',').any(|f| f.trim() == name))
}

/// Why kernel BTF cannot be used, or None if it can.
pub fn btf_problem(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    if fault("btf") {
        return Some(format!("{} missing (CKB_LIBBPF_FAULT=btf)", path.display()));
    }
    let mut magic = [0u8; 2];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{} missing", path.display()))
        }
        Err(e) => Some(format!("{} unreadable: {e}", path.display())),
        // 0xeB9F, in either byte order.
        Ok(()) if magic == [0x9f, 0xeb] || magic == [0xeb, 0x9f] => None,
        Ok(()) => Some(format!("{} is not BTF", path.display())),
    }
}

/// Fails early when the kernel lacks what every layer's programs need: BTF
/// for CO-RE, and the BPF ring buffer (Linux 5.8) for events.
pub fn require_kernel_features() -> Result<()> {
    if let Some(why) = btf_problem(std::path::Path::new(VMLINUX_BTF)) {
        return Err(Failure::new(Exit::Environment, format!("kernel BTF unavailable: {why}"))
            .hint("use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.4 are)")
            .into());
    }
    let ringbuf = if fault("ringbuf") {
        Err("CKB_LIBBPF_FAULT=ringbuf".to_string())
    } else {
        features::map_works(libbpf_rs::MapType::RingBuf)
    };
    if let Err(why) = ringbuf {
        return Err(Failure::new(
            Exit::Environment,
            format!("this kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF): {why}"),
        )
        .hint("ckb-libbpf needs Linux 5.8 or later; `ckb-libbpf check` lists what this kernel supports")
        .into());
    }
    Ok(())
}

/// Fails early when uprobes get no BPF cookie (before Linux 5.15): the
/// RocksDB and background programs decode each function from it.
pub fn require_cookies() -> Result<()> {
    let p = features::cookies();
    if p.ok {
        return Ok(());
    }
    Err(Failure::new(
        Exit::Environment,
        format!("this kernel gives uprobes no BPF cookie ({}); the RocksDB layer needs it", p.detail),
    )
    .hint("the rocksdb layer needs Linux 5.15 or later; `net` and `syscall` work on 5.8+; `ckb-libbpf check` lists what this kernel supports")
    .into())
}

/// The program flavour of each layer, chosen from probe results by the
/// same code the captures use (`uprobe::Backend::pick`, `syscall::pick`,
/// `net::Choice`), so `check` and a capture never disagree.
pub fn backend(layer: &str, probed: &[features::Probed]) -> Option<&'static str> {
    let ok = |a: features::Attach| probed.iter().any(|p| p.attach == a && p.ok);
    match layer {
        "rocksdb" => uprobe::Backend::pick(
            ok(features::Attach::UprobeMulti),
            ok(features::Attach::Uprobe),
        )
        .map(uprobe::Backend::name),
        "syscall" => syscall::pick(probed).map(syscall::Backend::name),
        // Per feature the net layer may mix variants (probe::net::Choice);
        // this is the one that traces sends and receives.
        "net" => {
            use net::{availability, Choice, Feature, Variant};
            Choice::new(availability(probed), None)
                .get(Feature::Send)
                .map(Variant::name)
        }
        _ => None,
    }
}

/// Most kernel memory the per-CPU copies of one layer's aggregation map may
/// take: above it (big hosts) one copy shared by all CPUs is used, with
/// atomic adds (RocksDB `stats`, syscall `stats`).
pub const PER_CPU_STATS_BUDGET: u64 = 32 << 20;

/// Whether a layer's aggregation map of `per_cpu` bytes per CPU goes in
/// one copy shared by all CPUs (atomic adds): by the budget, or as
/// `CKB_LIBBPF_STATS=shared|per-cpu` says (tests, or an operator who
/// prefers one).
fn shared_stats(per_cpu: u64) -> Result<bool> {
    match std::env::var("CKB_LIBBPF_STATS").as_deref() {
        Ok("shared") => return Ok(true),
        Ok("per-cpu") => return Ok(false),
        Ok(other) => {
            return Err(Failure::new(
                Exit::Usage,
                format!("CKB_LIBBPF_STATS={other}: not `shared` or `per-cpu`"),
            )
            .hint("unset it to choose by the host's CPU count")
            .into())
        }
        Err(_) => {}
    }
    let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
    Ok(per_cpu * cpus > PER_CPU_STATS_BUDGET)
}

/// The memory of a per-CPU aggregation map of `per_cpu` bytes per CPU on
/// a host with `cpus` CPUs: one copy for all above the budget.
pub fn stats_on(per_cpu: u64, cpus: u64) -> u64 {
    if per_cpu * cpus > PER_CPU_STATS_BUDGET {
        per_cpu
    } else {
        per_cpu * cpus
    }
}

/// Sizes a layer's two aggregation maps before load (`per_cpu`, and
/// `shared`, its one-copy replacement on big hosts) for `entries` rows of
/// `value_size` bytes: the one used gets the rows, the other one entry.
/// Returns whether the shared copy is used (the layer's `shared_stats`).
pub fn size_stats<'o>(
    per_cpu: &mut libbpf_rs::OpenMapMut<'o>,
    shared: &mut libbpf_rs::OpenMapMut<'o>,
    entries: u32,
    value_size: usize,
    layer: &str,
) -> Result<bool> {
    let one = shared_stats(entries as u64 * value_size as u64)?;
    let (pc, sh) = if one { (1, entries) } else { (entries, 1) };
    for (m, n) in [(per_cpu, pc), (shared, sh)] {
        m.set_max_entries(n)
            .map_err(|e| bpf_failure(format!("sizing the {layer} stats map"), e))?;
    }
    Ok(one)
}

/// A layer's aggregation map as the poller reads it: the per-CPU one, or
/// the shared copy `size_stats` chose instead.
pub struct StatsMap {
    pub map: libbpf_rs::MapHandle,
    shared: bool,
}

impl StatsMap {
    pub fn new(
        per_cpu: &libbpf_rs::MapMut<'_>,
        one: &libbpf_rs::MapMut<'_>,
        shared: bool,
    ) -> Result<StatsMap> {
        Ok(StatsMap {
            map: map_handle(if shared { one } else { per_cpu })?,
            shared,
        })
    }

    /// The copies of `key`'s value: one per CPU, or the shared one.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        use libbpf_rs::{MapCore, MapFlags};
        Ok(if self.shared {
            self.map.lookup(key, MapFlags::ANY)?.map(|v| vec![v])
        } else {
            self.map.lookup_percpu(key, MapFlags::ANY)?
        })
    }

    /// Zeroes `key`'s value (`size` bytes) in every copy.
    pub fn zero(&self, key: &[u8], size: usize) -> Result<()> {
        use anyhow::Context;
        use libbpf_rs::{MapCore, MapFlags};
        let zero = vec![0u8; size];
        if self.shared {
            self.map.update(key, &zero, MapFlags::ANY)?;
        } else {
            let cpus = libbpf_rs::num_possible_cpus().context("counting CPUs")?;
            self.map
                .update_percpu(key, &vec![zero; cpus], MapFlags::ANY)?;
        }
        Ok(())
    }
}

/// Kernel memory of one CPU's copy of per-CPU map `m` (fdinfo memlock).
pub fn per_cpu_bytes(m: &libbpf_rs::MapMut<'_>) -> u64 {
    use libbpf_rs::MapCore;
    let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1).max(1) as u64;
    m.query_fdinfo()
        .ok()
        .and_then(|i| i.memlock)
        .map_or(0, |b| b / cpus)
}

/// Kernel memory a loaded BPF object's maps hold, as the kernel accounts it
/// (fdinfo `memlock`): what does not grow with the CPU count, and what
/// per-CPU maps take for each CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapMemory {
    pub shared: u64,
    pub per_cpu: u64,
}

impl MapMemory {
    /// Sums the maps of `obj`; per-CPU maps are divided by the CPUs they
    /// were sized for.
    pub fn of(obj: &libbpf_rs::Object) -> MapMemory {
        use libbpf_rs::MapCore;
        let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1).max(1) as u64;
        let mut m = MapMemory::default();
        for map in obj.maps() {
            let Some(bytes) = map.query_fdinfo().ok().and_then(|i| i.memlock) else {
                continue;
            };
            if map.map_type().is_percpu() {
                m.per_cpu += bytes / cpus;
            } else {
                m.shared += bytes;
            }
        }
        m
    }

    pub fn add(&mut self, o: MapMemory) {
        self.shared += o.shared;
        self.per_cpu += o.per_cpu;
    }

    /// The total on a host with `cpus` possible CPUs.
    pub fn on(&self, cpus: u64) -> u64 {
        self.shared + self.per_cpu * cpus
    }
}

/// An owned handle on a skeleton's map, `Send`, for worker threads.
pub fn map_handle(m: &libbpf_rs::MapMut<'_>) -> Result<libbpf_rs::MapHandle> {
    use anyhow::Context;
    libbpf_rs::MapHandle::try_from(m).context("duplicating a BPF map handle")
}

/// Closes interval `epoch` of a layer's `ctl` map (src/bpf/epoch.bpf.h):
/// from now on the programs keep their maxima in the other slot, so the
/// maxima of `epoch` stop moving and can be read.
pub fn bump_epoch(ctl: &libbpf_rs::MapHandle, epoch: u64) -> Result<()> {
    use anyhow::Context;
    use libbpf_rs::{MapCore, MapFlags};
    ctl.update(
        &0u32.to_ne_bytes(),
        &(epoch + 1).to_ne_bytes(),
        MapFlags::ANY,
    )
    .context("bumping the interval epoch")
}

/// One CPU's exact maximum for interval `epoch`, from the two slots
/// `record_max` (epoch.bpf.h) keeps; None if that CPU saw no call in it.
pub fn interval_max(max_ns: &[u64; 2], max_epoch: &[u64; 2], epoch: u64) -> Option<u64> {
    let slot = (epoch & 1) as usize;
    (max_epoch[slot] == epoch).then_some(max_ns[slot])
}

/// A layer's `drops` map (per-CPU array indexed by `enum drop_reason`),
/// summed over CPUs.
pub fn read_drops(drops: &libbpf_rs::MapHandle) -> Result<[u64; DROP_REASONS]> {
    use libbpf_rs::{MapCore, MapFlags};
    let mut out = [0u64; DROP_REASONS];
    for (i, d) in out.iter_mut().enumerate() {
        if let Some(per_cpu) = drops.lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)? {
            *d = per_cpu
                .iter()
                .filter_map(|b| b.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum();
        }
    }
    Ok(out)
}

/// Detaches `links`. Each uprobe unregistration waits for an RCU grace
/// period (~0.1 s here), so 40 links dropped one by one hold an exiting tool
/// for seconds; dropping them from a few threads lets the waits overlap.
pub fn detach(links: Vec<libbpf_rs::Link>) {
    const THREADS: usize = 8;
    let per = links.len().div_ceil(THREADS).max(1);
    let mut links = links;
    std::thread::scope(|s| {
        while !links.is_empty() {
            let chunk: Vec<libbpf_rs::Link> = links.drain(..per.min(links.len())).collect();
            s.spawn(move || drop(chunk));
        }
    });
}

/// Turns a libbpf load/attach error into a failure with a remedy.
pub fn bpf_failure(what: String, err: libbpf_rs::Error) -> anyhow::Error {
    use libbpf_rs::ErrorKind;
    let (code, hint) = match err.kind() {
        ErrorKind::PermissionDenied => (
            Exit::Environment,
            "run as root, or grant CAP_BPF and CAP_PERFMON; check kernel.unprivileged_bpf_disabled and lockdown",
        ),
        ErrorKind::Unsupported => (
            Exit::Environment,
            "this kernel lacks a BPF feature the tool needs; `ckb-libbpf check` says which",
        ),
        ErrorKind::NotFound => (Exit::Runtime, "the target file or process disappeared while attaching"),
        _ => (Exit::Runtime, "run `ckb-libbpf check` to see what this kernel supports"),
    };
    anyhow::Error::new(Failure::new(code, format!("{what}: {err}")).hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btf_is_recognised_by_its_magic() {
        let dir = std::env::temp_dir().join(format!("ckb-libbpf-btf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, [0x9f, 0xeb, 1, 0]).unwrap();
        let bad = dir.join("bad");
        std::fs::write(&bad, b"ELF").unwrap();
        assert_eq!(btf_problem(&good), None);
        assert!(btf_problem(&bad).unwrap().contains("is not BTF"));
        assert!(btf_problem(&dir.join("none")).unwrap().contains("missing"));
        assert!(btf_problem(std::path::Path::new("/dev/null"))
            .unwrap()
            .contains("unreadable"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn capability_arithmetic() {
        assert!(missing_caps(1 << CAP_SYS_ADMIN).is_empty());
        assert!(missing_caps((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert_eq!(missing_caps(1 << CAP_BPF), vec!["CAP_PERFMON"]);
        assert_eq!(missing_caps(0), vec!["CAP_BPF", "CAP_PERFMON"]);
    }
}
