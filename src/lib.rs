//! ckb-libbpf as a library: the binary (`src/main.rs`) is only its CLI.
//! Exposed so the fuzz harness and tests can reach the ELF and model code.

pub mod analyze;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod collect;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod export;
pub mod model;
pub mod node;
pub mod probe;
pub mod render;
pub mod schema;
pub mod tui;
