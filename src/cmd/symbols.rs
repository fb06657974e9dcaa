//! `ckb-libbpf symbols PATH`: what a binary offers to probe, by tier.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Out;
use crate::error::Exit;
use crate::node::symbols::analyze;
use crate::render;

#[derive(Args, Debug, Clone)]
pub struct SymbolsArgs {
    /// A CKB executable, or a librocksdb.so.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Show only this tier: 1 = RocksDB C API, 2 = RocksDB internals and
    /// tentacle protocol handlers, 3 = everything else.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub tier: Option<u8>,
    /// Keep only names containing WORD (Tier 3 names are listed only then).
    #[arg(long, value_name = "WORD")]
    pub filter: Option<String>,
    /// One JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SymbolsArgs) -> Result<Exit> {
    let r = analyze(&args.path, args.filter.as_deref())?;
    let text = if args.json {
        render::symbols::json(&r, args.tier)
    } else {
        render::symbols::text(&r, args.tier)
    };
    let _ = Out::new().print(&text);
    Ok(Exit::Ok)
}
