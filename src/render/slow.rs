//! The slow-operation log's hot path. With `--slow --threshold 0` every
//! RocksDB call becomes one line, 100 K lines a second and more, so each
//! line is written straight into a reusable byte buffer: no `String`, no
//! `serde_json::Value`, no allocation per event (the same bytes as the
//! typed `schema::Slow` line: tested). `json::slow_event` and
//! `table::slow_line` are the same writers returning a `String`, so both
//! paths print byte-identical lines.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::rocksdb::{no_family, Op};
use crate::model::SlowEvent;

/// One slow event, borrowed: what `SlowEvent` holds, without owning the
/// time and thread strings.
#[derive(Clone, Copy, Debug)]
pub struct SlowRef<'a> {
    /// Wall-clock time, RFC 3339 with milliseconds (`Stamp`).
    pub time: &'a str,
    pub pid: u32,
    pub tid: u32,
    pub thread: &'a str,
    pub op: &'static str,
    pub function: &'static str,
    pub latency_us: f64,
    pub bytes: u64,
    pub miss: bool,
    /// The database handle (`rocksdb_t *` or a transaction's).
    pub db: u64,
    /// The database's directory, when confirmed.
    pub db_name: Option<&'a str>,
    pub cf: Family<'a>,
}

/// The column family of a slow event, named as `by_cf` rows name it.
#[derive(Clone, Copy, Debug)]
pub enum Family<'a> {
    /// Confirmed (or already a `by_cf` label).
    Named(&'a str),
    /// Not confirmed: "cf@0x...".
    Handle(u64),
    /// The call named none: `model::rocksdb::no_family` ("default", "*").
    NoneNamed(&'static str),
}

impl<'a> Family<'a> {
    /// `name` if confirmed, else the handle, else (handle 0) what a call
    /// of class `op` without a family is called.
    pub fn of(name: Option<&'a str>, cf: u64, op: Op) -> Family<'a> {
        match (name, cf) {
            (Some(n), _) => Family::Named(n),
            (None, 0) => Family::NoneNamed(no_family(op)),
            (None, h) => Family::Handle(h),
        }
    }

    /// "*": the call spans families (a batch, a transaction).
    fn spans(&self) -> bool {
        matches!(self, Family::NoneNamed("*") | Family::Named("*"))
    }
}

/// Pads like a `str` (`{:<25}`), without allocating.
impl std::fmt::Display for Family<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Family::Named(n) | Family::NoneNamed(n) => f.pad(n),
            Family::Handle(h) => {
                let mut s = Small::new();
                write!(s, "cf@{h:#x}")?;
                f.pad(s.as_str())
            }
        }
    }
}

/// The database column: its directory (long ones cut to their last
/// components, `…/data/db`), or "db@0x..." when unconfirmed.
struct DbLabel<'a> {
    name: Option<&'a str>,
    handle: u64,
}

/// Longest directory the text lines show whole: a CKB data directory
/// (`/var/lib/ckb/data/db`, `.../data/indexer/store`) fits.
const DB_COLUMN: usize = 40;

impl std::fmt::Display for DbLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            Some(n) => match short_path(n, DB_COLUMN) {
                (true, tail) => write!(f, "…{tail}"),
                (false, whole) => f.write_str(whole),
            },
            None => write!(f, "db@{:#x}", self.handle),
        }
    }
}

/// `p` if it has at most `max` characters, else (true, its longest tail of
/// whole components that fits `max` with a leading "…", or its last
/// component if even that does not): the end of a path is what tells
/// databases apart.
fn short_path(p: &str, max: usize) -> (bool, &str) {
    if p.chars().count() <= max {
        return (false, p);
    }
    let fits = |t: &str| t.chars().count() < max;
    // Slashes after the first character: "…" always stands for something.
    let tail = p
        .match_indices('/')
        .filter(|&(i, _)| i > 0)
        .map(|(i, _)| &p[i..])
        .find(|t| fits(t))
        .or_else(|| p.rfind('/').filter(|&i| i > 0).map(|i| &p[i..]));
    match tail {
        Some(t) => (true, t),
        None => (false, p),
    }
}

impl<'a> From<&'a SlowEvent> for SlowRef<'a> {
    fn from(e: &'a SlowEvent) -> SlowRef<'a> {
        SlowRef {
            time: &e.time,
            pid: e.pid,
            tid: e.tid,
            thread: &e.thread,
            op: e.op,
            function: e.function,
            latency_us: e.latency_us,
            bytes: e.bytes,
            miss: e.miss,
            db: e.db,
            db_name: e.db_name.as_deref(),
            cf: Family::Named(&e.cf),
        }
    }
}

/// A kernel `comm` (NUL-padded, at most 16 bytes) as text; borrowed unless
/// it is not UTF-8 (then replacement characters, as `from_utf8_lossy`).
pub fn comm(raw: &[u8]) -> Cow<'_, str> {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end])
}

/// RFC 3339 UTC time with milliseconds (`2026-11-23T12:00:01.234Z`, as
/// `humantime::format_rfc3339_millis`), the date and time of day computed
/// once per second: consecutive events mostly share it.
#[derive(Default)]
pub struct Stamp {
    secs: Option<u64>,
    text: [u8; 24],
}

impl Stamp {
    pub fn format(&mut self, t: SystemTime) -> &str {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        if self.secs != Some(secs) {
            self.secs = Some(secs);
            let (y, m, day) = civil_from_days((secs / 86_400) as i64);
            let sod = secs % 86_400;
            let t = &mut self.text;
            digits(&mut t[0..4], y.clamp(0, 9999) as u64);
            t[4] = b'-';
            digits(&mut t[5..7], m as u64);
            t[7] = b'-';
            digits(&mut t[8..10], day as u64);
            t[10] = b'T';
            digits(&mut t[11..13], sod / 3600);
            t[13] = b':';
            digits(&mut t[14..16], sod / 60 % 60);
            t[16] = b':';
            digits(&mut t[17..19], sod % 60);
            t[19] = b'.';
            t[23] = b'Z';
        }
        digits(&mut self.text[20..23], u64::from(d.subsec_millis()));
        // Only ASCII digits and separators were written.
        std::str::from_utf8(&self.text).unwrap_or("")
    }
}

/// Fills `out` with the low decimal digits of `n`, zero-padded.
fn digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`, eras of 400 years).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn push_u64(buf: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// `format!("{:#x}", n)`.
fn push_hex(buf: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(b"0x");
    buf.extend_from_slice(&tmp[i..]);
}

/// A JSON string, escaped exactly as serde_json does it.
fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[(b >> 4) as usize]);
            buf.push(HEX[(b & 0xf) as usize]);
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends one JSON Lines object (README "JSON output"), newline included.
pub fn json_line(buf: &mut Vec<u8>, e: &SlowRef) {
    buf.extend_from_slice(b"{\"type\":\"slow\",\"time\":");
    push_json_str(buf, e.time);
    buf.extend_from_slice(b",\"pid\":");
    push_u64(buf, e.pid.into());
    buf.extend_from_slice(b",\"tid\":");
    push_u64(buf, e.tid.into());
    buf.extend_from_slice(b",\"thread\":");
    push_json_str(buf, e.thread);
    buf.extend_from_slice(b",\"op\":");
    push_json_str(buf, e.op);
    buf.extend_from_slice(b",\"function\":");
    push_json_str(buf, e.function);
    buf.extend_from_slice(b",\"latency_us\":");
    // serde_json's own float format (shortest round trip, `8912.0`);
    // writing into a Vec cannot fail.
    if serde_json::to_writer(&mut *buf, &e.latency_us).is_err() {
        buf.extend_from_slice(b"null");
    }
    buf.extend_from_slice(b",\"bytes\":");
    push_u64(buf, e.bytes);
    buf.extend_from_slice(if e.miss {
        b",\"miss\":true,\"db\":\""
    } else {
        b",\"miss\":false,\"db\":\""
    });
    push_hex(buf, e.db);
    buf.extend_from_slice(b"\",\"db_name\":");
    match e.db_name {
        Some(n) => push_json_str(buf, n),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"cf\":");
    match e.cf {
        Family::Named(n) | Family::NoneNamed(n) => push_json_str(buf, n),
        Family::Handle(h) => {
            buf.extend_from_slice(b"\"cf@");
            push_hex(buf, h);
            buf.push(b'"');
        }
    }
    buf.extend_from_slice(b"}\n");
}

/// A few bytes on the stack, for a column that is padded once complete.
struct Small {
    buf: [u8; 32],
    len: usize,
}

impl Small {
    fn new() -> Small {
        Small {
            buf: [0; 32],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for Small {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `render::micros(Some(v))` without allocating.
fn micros(out: &mut Small, v: f64) {
    let _ = if v >= 10_000.0 {
        let n = v.round() as u64;
        let mut d = [0u8; 20];
        let mut len = 0;
        let mut m = n;
        loop {
            d[len] = b'0' + (m % 10) as u8;
            len += 1;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        let mut r = Ok(());
        for i in (0..len).rev() {
            if i + 1 < len && (i + 1) % 3 == 0 {
                r = r.and(out.write_char(','));
            }
            r = r.and(out.write_char(char::from(d[i])));
        }
        r
    } else if v >= 100.0 {
        write!(out, "{v:.0}")
    } else {
        write!(out, "{v:.1}")
    };
}

/// Appends one line of the slow-operation table (`slow_header`'s columns),
/// newline included.
pub fn table_line(buf: &mut Vec<u8>, e: &SlowRef) {
    use std::io::Write as _;
    let time = e.time.get(11..23).unwrap_or(e.time);
    let mut lat = Small::new();
    micros(&mut lat, e.latency_us);
    // Writing into a Vec cannot fail.
    let _ = writeln!(
        buf,
        "{:<12} {:>7} {:<16} {:<11} {:<38} {:>10} {:>9} {:<4} {:<25} {}",
        time,
        e.tid,
        e.thread,
        e.op,
        e.function,
        lat.as_str(),
        e.bytes,
        if e.miss { "miss" } else { "" },
        e.cf,
        DbLabel {
            name: e.db_name,
            handle: e.db
        }
    );
}

/// Appends one line of the `overview` screen's slow-operation panel,
/// newline included: the time, then what an operator reads first ("GET
/// 2,841 µs on COLUMN_BLOCK_BODY of /var/lib/ckb/data/db"), then who made
/// the call. A sentence rather than columns: the panel is narrow and
/// wraps.
pub fn panel_line(buf: &mut Vec<u8>, e: &SlowRef) {
    use std::io::Write as _;
    let time = e.time.get(11..23).unwrap_or(e.time);
    let mut lat = Small::new();
    micros(&mut lat, e.latency_us);
    let db = DbLabel {
        name: e.db_name,
        handle: e.db,
    };
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "{time} {} {} µs on ", e.op, lat.as_str());
    let _ = if e.cf.spans() {
        write!(buf, "{db}")
    } else {
        write!(buf, "{} of {db}", e.cf)
    };
    let _ = writeln!(
        buf,
        " {} {} ({}) {} B{}",
        e.function,
        e.thread,
        e.tid,
        e.bytes,
        if e.miss { " miss" } else { "" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ev(thread: &str, latency_us: f64) -> SlowEvent {
        SlowEvent {
            time: "2026-11-23T12:00:01.234Z".into(),
            pid: 4242,
            tid: 4250,
            thread: thread.into(),
            op: "WRITE",
            function: "rocksdb_write",
            latency_us,
            bytes: 17,
            miss: true,
            db: 0x55d0c0a1b2c0,
            db_name: Some("/var/lib/ckb/data/db".into()),
            cf: "*".into(),
        }
    }

    /// The line the typed schema gives: `{"type":"slow",...}`, newline.
    fn reference(e: &SlowEvent) -> String {
        let typed = crate::schema::Line::Slow(crate::render::json::slow_line(e));
        crate::schema::to_line(&typed) + "\n"
    }

    #[test]
    fn json_is_the_typed_line_byte_for_byte() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€😀\u{fffd}");
        for thread in ["ChainService", "a\"b\\c", "tab\there", "", all.as_str()] {
            for lat in [
                0.0,
                0.001,
                1.5,
                8912.0,
                123_456.789,
                1e9 + 0.001,
                1e-7,
                1e21,
            ] {
                for (bytes, miss, db, db_name, cf) in [
                    (0, false, 0, None, "default"),
                    (17, true, 0x55d0c0a1b2c0, Some("/d/b"), "COLUMN_BLOCK_BODY"),
                    (u64::MAX, false, u64::MAX, Some(thread), thread),
                ] {
                    let mut e = ev(thread, lat);
                    (e.bytes, e.miss, e.db) = (bytes, miss, db);
                    (e.db_name, e.cf) = (db_name.map(str::to_string), cf.to_string());
                    let mut buf = Vec::new();
                    json_line(&mut buf, &SlowRef::from(&e));
                    let line = String::from_utf8(buf).unwrap();
                    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
                    assert_eq!(line, reference(&e));
                    // And it decodes back to the same values, exactly.
                    let back = crate::schema::decode_strict::<crate::schema::Line>(&line).unwrap();
                    assert_eq!(
                        back,
                        crate::schema::Line::Slow(crate::render::json::slow_line(&e))
                    );
                }
            }
        }
    }

    #[test]
    fn json_keeps_the_documented_field_order() {
        let mut buf = Vec::new();
        let mut e = ev("ChainService", 8912.0);
        e.miss = false;
        e.bytes = 0;
        e.pid = 4242;
        json_line(&mut buf, &SlowRef::from(&e));
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"type\":\"slow\",\"time\":\"2026-11-23T12:00:01.234Z\",\"pid\":4242,\"tid\":4250,\
             \"thread\":\"ChainService\",\"op\":\"WRITE\",\"function\":\"rocksdb_write\",\
             \"latency_us\":8912.0,\"bytes\":0,\"miss\":false,\"db\":\"0x55d0c0a1b2c0\",\
             \"db_name\":\"/var/lib/ckb/data/db\",\"cf\":\"*\"}\n"
        );
    }

    /// A family or database not confirmed yet reads as its handle, as in
    /// `by_cf` rows; one the call did not name as `by_cf` names it.
    #[test]
    fn unconfirmed_handles_read_as_by_cf_labels() {
        let e = ev("t", 1.0);
        let line = |db_name, cf| {
            let mut r = SlowRef::from(&e);
            (r.db_name, r.cf) = (db_name, cf);
            let (mut j, mut t, mut p) = (Vec::new(), Vec::new(), Vec::new());
            json_line(&mut j, &r);
            table_line(&mut t, &r);
            panel_line(&mut p, &r);
            let j = crate::schema::decode_strict::<crate::schema::Line>(
                std::str::from_utf8(&j).unwrap(),
            )
            .unwrap();
            let crate::schema::Line::Slow(j) = j else {
                panic!("{j:?}")
            };
            let t = String::from_utf8(t).unwrap();
            let p = String::from_utf8(p).unwrap();
            (j.db_name, j.cf, t, p)
        };
        let (db, cf, t, p) = line(None, Family::of(None, 0x5a0, Op::Get));
        assert_eq!((db, cf.as_str()), (None, "cf@0x5a0"));
        assert!(
            t.ends_with(&format!(" {:<25} db@0x55d0c0a1b2c0\n", "cf@0x5a0")),
            "{t}"
        );
        assert!(p.contains(" on cf@0x5a0 of db@0x55d0c0a1b2c0 "), "{p}");
        let (_, cf, _, p) = line(Some("/d"), Family::of(None, 0, Op::Write));
        assert_eq!(cf, "*");
        assert!(
            p.contains(" µs on /d rocksdb_write "),
            "spans families: {p}"
        );
        let (_, cf, ..) = line(Some("/d"), Family::of(None, 0, Op::Get));
        assert_eq!(cf, "default", "rocksdb_get reads the default family");
        let (db, cf, t, p) = line(Some("/d"), Family::of(Some("alpha"), 0x5a0, Op::Get));
        assert_eq!((db.as_deref(), cf.as_str()), (Some("/d"), "alpha"));
        assert!(t.ends_with(&format!(" {:<25} /d\n", "alpha")), "{t}");
        assert_eq!(
            p,
            "12:00:01.234 WRITE 1.0 µs on alpha of /d rocksdb_write t (4250) 17 B miss\n"
        );
    }

    #[test]
    fn long_directories_keep_their_last_components() {
        assert_eq!(
            short_path("/var/lib/ckb/data/db", 40),
            (false, "/var/lib/ckb/data/db")
        );
        let long = "/srv/nodes/mainnet-archive-2026/ckb/data/indexer/store";
        let (_, t) = short_path(long, 40);
        assert_eq!(t, "/ckb/data/indexer/store");
        assert_eq!(
            short_path("/a/an-extremely-long-final-component-of-a-path", 20),
            (true, "/an-extremely-long-final-component-of-a-path")
        );
        let no_slash = "x".repeat(50);
        assert_eq!(short_path(&no_slash, 40), (false, no_slash.as_str()));
        let d = DbLabel {
            name: Some(long),
            handle: 1,
        };
        assert_eq!(d.to_string(), "…/ckb/data/indexer/store");
    }

    #[test]
    fn stamp_matches_humantime() {
        let mut st = Stamp::default();
        let mut secs: u64 = 0;
        // Every few days from 1970 past 2400 (leap years, century rules),
        // with a changing millisecond, and a second that repeats.
        while secs < 14_000_000_000 {
            for ms in [0u64, 7, 999] {
                let t = UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms);
                let want = humantime::format_rfc3339_millis(t).to_string();
                assert_eq!(st.format(t), want);
            }
            secs += 86_400 * 3 + 3_671;
        }
        for day in ["2000-02-29T23:59:59.999Z", "2100-03-01T00:00:00.000Z"] {
            let t = humantime::parse_rfc3339(day).unwrap();
            assert_eq!(st.format(t), day);
        }
    }

    #[test]
    fn table_line_is_the_documented_format() {
        for lat in [0.04, 4.66, 99.96, 2841.0, 9999.6, 28_410.2, 1_234_567.0] {
            let e = ev("rocksdb:low0", lat);
            let mut buf = Vec::new();
            table_line(&mut buf, &SlowRef::from(&e));
            let want = format!(
                "{:<12} {:>7} {:<16} {:<11} {:<38} {:>10} {:>9} {:<4} {:<25} {}\n",
                "12:00:01.234",
                e.tid,
                e.thread,
                e.op,
                e.function,
                crate::render::micros(Some(lat)),
                e.bytes,
                "miss",
                "*",
                "/var/lib/ckb/data/db"
            );
            assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
    }

    #[test]
    fn comm_stops_at_nul_and_survives_bad_utf8() {
        assert_eq!(comm(b"ChainService\0\0\0\0"), "ChainService");
        assert_eq!(comm(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(comm(b"a\xffb\0"), "a\u{fffd}b");
    }
}
