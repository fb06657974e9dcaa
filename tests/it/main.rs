//! The integration tests, one binary: the tool as a child process against
//! real workloads in the real kernel. One crate links the shared helpers
//! once instead of once per test file.

mod common;

mod agent;
mod assets;
mod background;
mod budget;
mod causes;
mod check_symbols;
mod evidence;
mod export;
mod net;
mod overview;
mod privilege;
mod readme;
mod rocksdb;
mod rocksdb_cf;
mod slow_events;
mod soak;
mod syscall;
