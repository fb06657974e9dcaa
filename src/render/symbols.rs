//! The tiered symbol report, as text or one JSON object.

use std::fmt::Write as _;

use crate::node::elf::ElfKind;
use crate::node::symbols::{LinkMode, SymbolReport};
use crate::schema::symbols as s;

fn kind(k: ElfKind) -> &'static str {
    match k {
        ElfKind::Executable => "executable (non-PIE)",
        ElfKind::PieExecutable => "executable (PIE)",
        ElfKind::SharedObject => "shared object",
        ElfKind::Other => "other ELF",
    }
}

fn link(m: &LinkMode) -> String {
    match m {
        LinkMode::Static => "static (RocksDB linked into the executable)".into(),
        LinkMode::Dynamic(p) => format!("dynamic ({})", p.display()),
        LinkMode::Library => "this file is the RocksDB library".into(),
        LinkMode::None => "none (no RocksDB C API found)".into(),
    }
}

/// `tier`: show only this tier (1, 2 or 3); `None` shows all.
pub fn text(r: &SymbolReport, tier: Option<u8>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}", r.path.display());
    let _ = writeln!(o, "  type        {}", kind(r.kind));
    let _ = writeln!(o, "  RocksDB     {}", link(&r.link_mode));
    let _ = writeln!(
        o,
        "  symbols     {}",
        if r.stripped {
            "stripped (.symtab removed: only .dynsym is usable)".to_string()
        } else {
            format!("{} functions in .symtab/.dynsym", r.functions)
        }
    );
    let _ = writeln!(o, "  build-id    {}", r.build_id.as_deref().unwrap_or("-"));
    let _ = writeln!(o, "  debuglink   {}", r.debuglink.as_deref().unwrap_or("-"));
    if let Some(v) = &r.ckb_version {
        let _ = writeln!(o, "  CKB         {v}");
    }
    if tier.is_none_or(|t| t == 1) {
        let _ = writeln!(
            o,
            "\nTier 1: RocksDB C API ({} of {} present)",
            r.tier1_present(),
            r.tier1.len()
        );
        for t in &r.tier1 {
            match &t.file {
                Some(f) => {
                    let _ = writeln!(
                        o,
                        "  + {:<46} {:<11} {:<11} {:<18} {}{}",
                        t.name,
                        t.op,
                        t.cost.label(),
                        t.cost.insn(),
                        format_args!("0x{:x}", t.offset),
                        if f != &r.path {
                            format!("  in {}", f.display())
                        } else {
                            String::new()
                        }
                    );
                }
                None => {
                    let _ = writeln!(o, "  - {:<46} {:<11} absent", t.name, t.op);
                }
            }
        }
        let steps = r.single_stepped();
        if !steps.is_empty() {
            let _ = writeln!(
                o,
                "  single-stepped probes cost ~10 µs a hit instead of ~1.5 µs; `rocksdb` leaves them out unless named in --ops: {}",
                steps.join(", ")
            );
        }
        if r.stripped && r.tier1_present() == 0 {
            let _ = writeln!(o, "  hint: the binary is stripped; use a CKB build with its symbol table, or trace its librocksdb.so");
        }
    }
    if tier.is_none_or(|t| t == 2) {
        let internals = r.tier2.len() - r.tentacle_count();
        let _ = writeln!(
            o,
            "\nTier 2: version-dependent ({internals} RocksDB internals, {} CKB tentacle protocol handlers; {} tentacle functions in all)",
            r.tentacle_count(),
            r.tentacle_functions
        );
        for t in &r.tier2 {
            let _ = writeln!(o, "  {:<18} {:<11} {}", t.group, t.cost.label(), t.name);
        }
    }
    if tier.is_none_or(|t| t == 3) {
        let _ = writeln!(
            o,
            "\nTier 3: {} other functions (crate-internal; not relied upon)",
            r.tier3
        );
        for n in &r.tier3_matches {
            let _ = writeln!(o, "  {n}");
        }
    }
    o
}

/// The report as its typed object; `tier` as for `text`.
pub fn object(r: &SymbolReport, tier: Option<u8>) -> s::Symbols {
    let show = |t: u8| tier.is_none_or(|x| x == t);
    let (mode, lib) = match &r.link_mode {
        LinkMode::Static => ("static", None),
        LinkMode::Dynamic(p) => ("dynamic", Some(p.display().to_string())),
        LinkMode::Library => ("library", None),
        LinkMode::None => ("none", None),
    };
    s::Symbols {
        path: r.path.display().to_string(),
        kind: kind(r.kind).into(),
        pie: r.kind == ElfKind::PieExecutable || r.kind == ElfKind::SharedObject,
        stripped: r.stripped,
        build_id: r.build_id.clone(),
        debuglink: r.debuglink.clone(),
        link_mode: mode.into(),
        rocksdb_library: lib,
        ckb_version: r.ckb_version.clone(),
        functions: r.functions as u64,
        tier1_present: r.tier1_present() as u64,
        tier2_tentacle: r.tentacle_count() as u64,
        tentacle_functions: r.tentacle_functions as u64,
        tier3_count: r.tier3 as u64,
        tier1: show(1).then(|| {
            r.tier1
                .iter()
                .map(|t| s::Tier1 {
                    name: t.name.into(),
                    symbol: Some(t.symbol.into()),
                    op: t.op.into(),
                    present: t.file.is_some(),
                    file: t.file.as_ref().map(|f| f.display().to_string()),
                    offset: t.file.as_ref().map(|_| t.offset),
                    probe_cost: t.file.as_ref().map(|_| t.cost.label().to_string()),
                    first_insn: t.file.as_ref().map(|_| t.cost.insn().to_string()),
                })
                .collect()
        }),
        tier2: show(2).then(|| {
            r.tier2
                .iter()
                .map(|t| s::Tier2 {
                    group: t.group.into(),
                    name: t.name.clone(),
                    symbol: t.symbol.clone(),
                    probe_cost: t.cost.label().into(),
                })
                .collect()
        }),
        tier3: (show(3) && !r.tier3_matches.is_empty()).then(|| r.tier3_matches.clone()),
    }
}

pub fn json(r: &SymbolReport, tier: Option<u8>) -> String {
    crate::schema::to_line(&object(r, tier))
}
