//! ckb-libbpf as a library: the binary (`src/main.rs`) is only its CLI.
//! Exposed so the fuzz harness and tests can reach the ELF and model code.

pub mod analyze;
pub mod cli;
pub mod cmd;
pub mod collect;
pub mod error;
pub mod model;
pub mod probe;
pub mod render;
pub mod node;
