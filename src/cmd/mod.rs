//! Subcommands: wiring only. Each parses its arguments, names a target,
//! and runs the capture engine (`crate::engine`) with a view that prints
//! what the engine hands it; `check` and `symbols` read the machine and a
//! binary. What they share lives here: argument parsers and standard output.

pub mod background;
pub mod check;
pub mod export;
pub mod identity;
pub mod net;
pub mod overview;
pub mod report;
pub mod rocksdb;
pub mod symbols;
pub mod syscall;
pub mod verify;

use std::io::Write;
use std::time::Duration;

use crate::engine::Stop;
use crate::model::TargetEvent;

/// Parses a report interval: a positive, finite number of seconds.
pub fn positive_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// Parses a capture duration: "30s", "5m", "1h30m", or a bare number of
/// seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("`{s}`: the duration must be positive"));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (try 30s, 5m, 1h)"))
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

/// Standard output that reports a closed pipe instead of panicking.
/// `print` writes and flushes at once (reports, notices); `queue` only
/// buffers, for bursts of event lines that a later `flush` (or `print`)
/// writes with one syscall instead of one per line.
pub struct Out {
    inner: std::io::Stdout,
    queued: Vec<u8>,
}

impl Out {
    pub fn new() -> Out {
        Out {
            inner: std::io::stdout(),
            queued: Vec::new(),
        }
    }

    /// Adds `text` (and a newline if missing) to the buffer.
    pub fn queue(&mut self, text: &str) {
        self.queued.extend_from_slice(text.as_bytes());
        if !text.ends_with('\n') {
            self.queued.push(b'\n');
        }
    }

    /// Writes what is queued; Err(Stop) if the reader went away.
    pub fn flush(&mut self) -> std::result::Result<(), Stop> {
        let mut lock = self.inner.lock();
        let r = lock.write_all(&self.queued).and_then(|()| lock.flush());
        self.queued.clear();
        r.map_err(|_| Stop::OutputClosed)
    }

    /// Writes `text` (a line is added if missing) after anything queued;
    /// Err(Stop) if the reader went away.
    pub fn print(&mut self, text: &str) -> std::result::Result<(), Stop> {
        self.queue(text);
        self.flush()
    }
}

/// The target exited or came back: a `"type": "target"` JSON line, or a
/// `---` line between the tables.
pub fn print_target(out: &mut Out, e: &TargetEvent, json: bool) -> std::result::Result<(), Stop> {
    out.print(&if json {
        crate::render::json::target_event(e)
    } else {
        crate::render::target_line(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
