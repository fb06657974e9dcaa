//! Plain data: what a capture measured, independent of BPF and of any view.
//! Nothing here touches libbpf or the terminal.

pub mod background;
pub mod diff;
pub mod hist;
pub mod net;
pub mod overhead;
pub mod report;
pub mod rocksdb;
pub mod syscall;

pub use background::{Background, BgJob, BgKind, BgRow, BgStats};
pub use hist::Histogram;
pub use report::{
    Drops, Gap, Gaps, LeftOut, OpStats, Report, Row, SlowEvent, TargetEvent, DROP_REASONS,
};
