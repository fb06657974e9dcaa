//! `ckb-libbpf export`: Prometheus metrics of a capture.
//!
//! - `view`: the metrics view, plain data the capture fills once per
//!   interval (cumulative whole-capture figures), and the converters from
//!   the per-layer model types;
//! - `encode`: the metric contract (names, labels, buckets) and the
//!   Prometheus text 0.0.4 / OpenMetrics encoders;
//! - `serve`: the HTTP server that hands the last rendered snapshot to
//!   scrapers.
//!
//! Wiring (`cmd/export.rs`, an `engine::View`): run the engine with
//! `Options { totals: true, top: 0, .. }`; once,
//! `let ex = Exporter::start(parse_listen(&args.listen)?, Options { peers, cf_pairs })?`
//! and a `view::Builder`; in `View::snapshot`,
//! `if let Some(v) = builder.view(s) { ex.publish(&v) }`; in `View::target`,
//! `builder.target(e)`; after attach, `builder.attached(layer, n)`. Like
//! model and render, nothing here touches libbpf.

pub mod encode;
pub mod serve;
pub mod view;

pub use encode::{render, Format, Options, State, DEFAULT_CF_PAIRS};
pub use serve::{parse_listen, Exporter, DEFAULT_LISTEN};
pub use view::{Builder, MetricsView};
