//! Views of a `Report`: table, log2 histograms, slow-operation log and JSON
//! Lines. They format and return strings; they read no maps and own no
//! terminal, so every layer prints through the same code.

pub mod background;
pub mod check;
pub mod json;
pub mod net;
pub mod slow;
pub mod symbols;
pub mod syscall;
pub mod table;

pub use table::{gap_line, histograms, slow_header, slow_line, table, target_line};

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds with precision that fits the magnitude; "-" when unknown.
pub fn micros(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 10_000.0 => thousands(v.round() as u64),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// Bytes (or bytes per second) in binary units.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration in ns as a short human string: 850ns, 12.3µs, 4.1ms, 2.0s.
pub fn duration_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0}ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.1}ms", ns / 1e6)
    } else {
        format!("{:.1}s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(micros(Some(4.66)), "4.7");
        assert_eq!(micros(Some(2841.0)), "2841");
        assert_eq!(micros(Some(28410.2)), "28,410");
        assert_eq!(micros(None), "-");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(duration_ns(1536.0), "1.5µs");
    }
}
