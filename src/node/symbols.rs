//! The tiered symbol report behind `ckb-libbpf symbols` and `check --binary`:
//! Tier 1, the RocksDB C API the rocksdb layer attaches to (stable across
//! versions: it crosses the FFI boundary); Tier 2, version-dependent but
//! valuable functions (RocksDB C++ internals for background work, CKB's
//! tentacle protocol handlers); Tier 3, every other function.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::elf::{Elf, ElfKind, FuncSym};
use super::insn::{classify, ProbeCost};
use crate::model::rocksdb::FUNCS;

/// RocksDB C++ functions that mark background work and stalls, by the
/// qualified name their demangled form starts with.
pub const ROCKSDB_INTERNALS: &[&str] = &[
    "rocksdb::CompactionJob::Run()",
    "rocksdb::FlushJob::Run(",
    "rocksdb::DBImpl::DelayWrite(",
    "rocksdb::DBImpl::BackgroundCompaction(",
    "rocksdb::DBImpl::BackgroundFlush(",
    "rocksdb::WriteController::GetStopToken()",
    "rocksdb::WriteController::GetDelayToken(",
    "rocksdb::WriteController::GetCompactionPressureToken()",
];

/// Methods of tentacle's ServiceProtocol trait that CKB's protocols implement.
pub const TENTACLE_METHODS: &[&str] = &["received", "connected", "disconnected", "notify", "init"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// RocksDB is inside the executable (as in CKB).
    Static,
    /// RocksDB comes from a shared library (resolved path, or the bare
    /// DT_NEEDED name when the library was not found on this machine).
    Dynamic(PathBuf),
    /// The file is itself a RocksDB shared library.
    Library,
    /// No RocksDB at all.
    None,
}

#[derive(Clone, Debug)]
pub struct Tier1 {
    pub name: &'static str,
    /// The ELF symbol probed (`name` but for C++ stand-ins: mangled).
    pub symbol: &'static str,
    pub op: &'static str,
    /// Where it lives, when present.
    pub file: Option<PathBuf>,
    pub offset: u64,
    pub cost: ProbeCost,
}

#[derive(Clone, Debug)]
pub struct Tier2 {
    /// "rocksdb-internal" or "tentacle-protocol".
    pub group: &'static str,
    pub name: String,
    pub symbol: String,
    pub cost: ProbeCost,
}

#[derive(Clone, Debug)]
pub struct SymbolReport {
    pub path: PathBuf,
    pub kind: ElfKind,
    pub stripped: bool,
    pub build_id: Option<String>,
    pub debuglink: Option<String>,
    pub link_mode: LinkMode,
    pub ckb_version: Option<String>,
    pub functions: usize,
    pub tier1: Vec<Tier1>,
    pub tier2: Vec<Tier2>,
    /// Tier 3 count, and the names that matched --filter (demangled).
    pub tier3: usize,
    pub tier3_matches: Vec<String>,
    /// Functions of the tentacle crate (P2P framework), all kinds.
    pub tentacle_functions: usize,
}

impl SymbolReport {
    pub fn tier1_present(&self) -> usize {
        self.tier1.iter().filter(|t| t.file.is_some()).count()
    }
    /// Present Tier 1 functions whose probe must single-step.
    pub fn single_stepped(&self) -> Vec<&'static str> {
        self.tier1
            .iter()
            .filter(|t| t.file.is_some() && t.cost.is_single_step())
            .map(|t| t.name)
            .collect()
    }
    pub fn tentacle_count(&self) -> usize {
        self.tier2
            .iter()
            .filter(|t| t.group == "tentacle-protocol")
            .count()
    }
}

/// Demangles Rust (legacy and v0) and C++ (Itanium) names; anything else is
/// returned as is. Rust hashes are dropped.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(s) = sym.demangle() {
                return s;
            }
        }
    }
    name.to_string()
}

/// GCC/LLVM outlined or specialised copies (`foo.cold`, `foo.part.0`,
/// `foo.isra.0`, `foo.constprop.0`): a uprobe there misses the real entry.
/// (`.llvm.N` marks a whole function renamed by LTO and is a fine target;
/// Rust legacy names contain `..` for `::` and are not clones either.)
pub fn is_compiler_clone(symbol: &str) -> bool {
    [".cold", ".part.", ".isra.", ".constprop."]
        .iter()
        .any(|s| symbol.contains(s))
}

fn tier2_group(demangled: &str) -> Option<&'static str> {
    // Compiler clones (`[clone .cold]`, `.isra`) and closures are not probe
    // targets: only the function itself is.
    if demangled.contains("[clone") || demangled.contains("{lambda") {
        return None;
    }
    if ROCKSDB_INTERNALS.iter().any(|p| demangled.starts_with(p)) {
        return Some("rocksdb-internal");
    }
    // CKB's own protocol handlers (`<ckb_sync::... as ...>`), not tentacle's
    // blanket impls for boxed trait objects.
    if !demangled.starts_with("<ckb_") {
        return None;
    }
    if let Some(at) = demangled.find(" as tentacle::traits::ServiceProtocol>::") {
        let method = &demangled[at + " as tentacle::traits::ServiceProtocol>::".len()..];
        if TENTACLE_METHODS.contains(&method) {
            return Some("tentacle-protocol");
        }
    }
    None
}

/// Builds the report for `path`; `filter` keeps only names containing it.
pub fn analyze(path: &Path, filter: Option<&str>) -> Result<SymbolReport> {
    analyze_elf(&Elf::open(path)?, filter)
}

/// The report of an opened ELF (the fuzz harness enters here).
pub fn analyze_elf(elf: &Elf, filter: Option<&str>) -> Result<SymbolReport> {
    let path = elf.path.as_path();
    let kind = elf.kind();
    let funcs = elf.all_functions()?;
    let stripped = !elf.has_symtab();

    // Tier 1 in the file itself, else in the RocksDB library it needs.
    let names: Vec<&str> = FUNCS.iter().map(|f| f.symbol).collect();
    let own = elf.functions(&names)?;
    let rocks_lib = elf
        .needed()
        .into_iter()
        .find(|n| n.starts_with("librocksdb"));
    let is_rocks_lib = kind == ElfKind::SharedObject
        && path
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with("librocksdb"));
    let link_mode = if is_rocks_lib {
        LinkMode::Library
    } else if own.keys().any(|k| k.starts_with("rocksdb_")) {
        LinkMode::Static
    } else if let Some(lib) = &rocks_lib {
        LinkMode::Dynamic(super::find_library(lib).unwrap_or_else(|| PathBuf::from(lib)))
    } else {
        LinkMode::None
    };
    let (lib_syms, lib_path) = match &link_mode {
        LinkMode::Dynamic(p) if p.exists() => match Elf::open(p) {
            Ok(lib) => (lib.functions(&names)?, Some(p.clone())),
            Err(_) => (Default::default(), None),
        },
        _ => (Default::default(), None),
    };
    let tier1 = FUNCS
        .iter()
        .map(|d| {
            let (sym, file): (Option<&FuncSym>, Option<PathBuf>) = match own.get(d.symbol) {
                Some(s) => (Some(s), Some(path.to_path_buf())),
                None => match lib_syms.get(d.symbol) {
                    Some(s) => (Some(s), lib_path.clone()),
                    None => (None, None),
                },
            };
            Tier1 {
                name: d.name,
                symbol: d.symbol,
                op: d.op.name(),
                file,
                offset: sym.map(|s| s.offset).unwrap_or(0),
                cost: sym.map(|s| classify(&s.head)).unwrap_or(ProbeCost::Unknown),
            }
        })
        .filter(|t| filter.is_none_or(|w| t.name.contains(w)))
        .collect();

    let mut tier2 = Vec::new();
    let mut tier3 = 0;
    let mut tier3_matches = Vec::new();
    let mut tentacle_functions = 0;
    for f in &funcs {
        if names.contains(&f.name.as_str()) {
            continue;
        }
        let d = demangle(&f.name);
        let d = if is_compiler_clone(&f.name) && !d.contains("[clone") {
            format!("{d} [clone]") // demangled without its clone suffix
        } else {
            d
        };
        tentacle_functions += d.contains("tentacle::") as usize;
        let keep = filter.is_none_or(|w| d.contains(w) || f.name.contains(w));
        match tier2_group(&d) {
            Some(group) => {
                if keep {
                    tier2.push(Tier2 {
                        group,
                        name: d,
                        symbol: f.name.clone(),
                        cost: classify(&f.head),
                    })
                }
            }
            None => {
                tier3 += 1;
                if keep && filter.is_some() {
                    tier3_matches.push(d);
                }
            }
        }
    }
    tier2.sort_by(|a, b| (a.group, &a.name).cmp(&(b.group, &b.name)));
    tier3_matches.sort();

    Ok(SymbolReport {
        path: path.to_path_buf(),
        kind,
        stripped,
        build_id: elf.build_id(),
        debuglink: elf.debuglink(),
        link_mode,
        ckb_version: elf
            .find_string(b"ckb 0.", 40)
            .or_else(|| elf.find_string(b"ckb 1.", 40)),
        functions: funcs.len(),
        tier1,
        tier2,
        tier3,
        tier3_matches,
        tentacle_functions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_rust_and_cpp() {
        assert_eq!(demangle("_ZN3foo3bar17h0123456789abcdefE"), "foo::bar");
        assert_eq!(
            demangle("_ZN7rocksdb13CompactionJob3RunEv"),
            "rocksdb::CompactionJob::Run()"
        );
        assert_eq!(demangle("rocksdb_get"), "rocksdb_get");
        assert_eq!(demangle("_ZN7rocksdb4Slice.cold"), "_ZN7rocksdb4Slice.cold");
    }

    #[test]
    fn tier2_classification() {
        assert_eq!(
            tier2_group("rocksdb::CompactionJob::Run()"),
            Some("rocksdb-internal")
        );
        assert_eq!(
            tier2_group("rocksdb::DBImpl::DelayWrite(rocksdb::ColumnFamilyData*, unsigned long)"),
            Some("rocksdb-internal")
        );
        assert_eq!(
            tier2_group("<ckb_sync::synchronizer::Synchronizer as tentacle::traits::ServiceProtocol>::received"),
            Some("tentacle-protocol")
        );
        assert_eq!(
            tier2_group("<ckb_sync::synchronizer::Synchronizer as tentacle::traits::ServiceProtocol>::received::{{closure}}"),
            None
        );
        assert_eq!(tier2_group("rocksdb::CompactionJob::Prepare()"), None);
        assert_eq!(
            tier2_group("<alloc::boxed::Box<dyn tentacle::traits::ServiceProtocol+core::marker::Send> as tentacle::traits::ServiceProtocol>::received"),
            None
        );
        assert!(is_compiler_clone("rocksdb_get.cold"));
        assert!(is_compiler_clone("_ZN7rocksdb6DBImpl5WriteEv.part.0"));
        assert!(!is_compiler_clone(
            "_ZN91_$LT$alloc..boxed..Box$LT$T$GT$$u20$as$u20$x..Y$GT$4init17h0123456789abcdefE"
        ));
        assert!(!is_compiler_clone(
            "_ZN3foo3bar17h0123456789abcdefE.llvm.1234"
        ));
        assert_eq!(
            tier2_group("rocksdb::CompactionJob::Run() [clone .cold]"),
            None
        );
        assert_eq!(tier2_group("rocksdb::CompactionJob::Run()::{lambda(rocksdb::Status&)#1}::operator()(rocksdb::Status&) const"), None);
    }

    #[test]
    fn own_test_binary_has_no_rocksdb() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let r = analyze(&exe, None).unwrap();
        assert_eq!(r.link_mode, LinkMode::None);
        assert_eq!(r.tier1_present(), 0);
        assert!(r.functions > 1000 && r.tier3 > 1000);
        assert!(!r.stripped);
    }
}
