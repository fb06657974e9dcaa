//! Plain data: what a capture measured, independent of BPF and of any view.
//! Nothing here touches libbpf or the terminal.

pub mod hist;
pub mod report;
pub mod syscall;

pub use hist::Histogram;
pub use report::{LeftOut, OpStats, Report, Row, SlowEvent};
