//! `overview`'s terminal screen: a view of the capture engine that draws
//! what the engine's snapshots hold, with a short history. `app` is the
//! state (messages and keys change it), `draw` paints it onto a ratatui
//! frame (golden-tested with `TestBackend`), `term` owns the terminal
//! while the screen is up, `rpc` asks the node for its own summary.
//! Nothing here collects data: `cmd::overview` runs `engine::run` on a
//! worker thread and forwards what its `View` gets over a channel.

pub mod app;
pub mod draw;
pub mod rpc;
pub mod term;

#[cfg(test)]
mod tests;

pub use app::{App, Msg, Tab};
