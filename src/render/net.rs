//! Views of the net layer: the per-peer table, the connection-event log and
//! their JSON Lines. Field names of the JSON are an API (README "JSON
//! output"); change them deliberately.

use std::fmt::Write as _;

use super::{bytes, gap_line, thousands};
use crate::model::net::{EventKind, EventLine, NetReport};
use crate::schema::{self, net as s, to_line, Line};

fn rate(v: f64) -> String {
    format!("{}/s", bytes(v))
}

fn secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{:.0}h{:02.0}m", (s / 3600.0).floor(), (s % 3600.0) / 60.0)
    }
}

/// The per-peer table of one report.
pub fn table(r: &NetReport) -> String {
    let mut out = String::new();
    let pid = r
        .pid
        .map(|p| format!("pid {p}"))
        .unwrap_or_else(|| "all processes".into());
    if r.is_final {
        let _ = writeln!(
            out,
            "=== net summary: {pid}, {:.1} s captured ===",
            r.elapsed_secs
        );
        let b: Vec<String> = r.backends.iter().map(|(f, v)| format!("{f}={v}")).collect();
        let _ = writeln!(out, "backends: {}", b.join(" "));
    } else {
        let time = r.timestamp.get(11..19).unwrap_or(&r.timestamp);
        let _ = writeln!(
            out,
            "{time}  net {pid}  interval {:.1}s  elapsed {:.0}s",
            r.interval_secs, r.elapsed_secs
        );
    }
    let t = &r.totals;
    let _ = writeln!(
        out,
        "sent {} ({})  recv {} ({})  live {}  connects {}  accepts {}  closes {}  failed {}  retrans {}",
        bytes(t.tx_bytes as f64),
        rate(r.tx_per_sec),
        bytes(t.rx_bytes as f64),
        rate(r.rx_per_sec),
        r.live_conns,
        thousands(t.connects),
        thousands(t.accepts),
        thousands(t.closes),
        thousands(t.connect_failures),
        thousands(t.retrans),
    );
    let width = r
        .peers
        .iter()
        .map(|p| p.peer.to_string().len())
        .max()
        .unwrap_or(4)
        .max(21);
    let _ = writeln!(
        out,
        "{:<width$} {:<8} {:>4} {:>6} {:>8} {:>10} {:>10} {:>11} {:>11} {:>7} {:>8}",
        "PEER",
        "DIR",
        "LIVE",
        "CLOSED",
        "AGE",
        "SENT",
        "RECV",
        "SENT/s",
        "RECV/s",
        "RETRANS",
        "RTT(us)"
    );
    for p in &r.peers {
        let _ = writeln!(
            out,
            "{:<width$} {:<8} {:>4} {:>6} {:>8} {:>10} {:>10} {:>11} {:>11} {:>7} {:>8}",
            p.peer.to_string(),
            p.dir,
            p.live,
            p.closed,
            p.age_secs.map(secs).unwrap_or_else(|| "-".into()),
            bytes(p.tx_bytes as f64),
            bytes(p.rx_bytes as f64),
            rate(p.tx_per_sec),
            rate(p.rx_per_sec),
            p.retrans,
            p.srtt_us
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
        );
    }
    for a in &r.alerts {
        let _ = writeln!(out, "{a}");
    }
    // Interval tables are preceded by the restart line (`target_line`).
    if r.is_final {
        for g in &r.gaps {
            let _ = writeln!(out, "{}", gap_line(g));
        }
    }
    if r.lost_events > 0 || r.evicted > 0 {
        let _ = writeln!(
            out,
            "lost events: {} (ring buffer or channel full), connections evicted from the full table: {} (their bytes still count in the totals)",
            r.lost_events, r.evicted
        );
    }
    out
}

pub fn event_header() -> String {
    format!(
        "{:<12} {:<14} {:<7} {:<23} {:<23} {}",
        "TIME", "EVENT", "PID", "PEER", "LOCAL", "DETAIL"
    )
}

/// One lifecycle event as a log line.
pub fn event_line(e: &EventLine) -> String {
    let time = e.time.get(11..23).unwrap_or(&e.time);
    let detail = match e.kind {
        EventKind::Close => format!(
            "{} lived {} sent {} recv {} retrans {}",
            e.dir.name(),
            e.duration_secs.map(secs).unwrap_or_else(|| "-".into()),
            bytes(e.tx_bytes as f64),
            bytes(e.rx_bytes as f64),
            e.retrans
        ),
        EventKind::ConnectFailed => format!(
            "after {}",
            e.duration_secs.map(secs).unwrap_or_else(|| "-".into())
        ),
        _ => String::new(),
    };
    format!(
        "{:<12} {:<14} {:<7} {:<23} {:<23} {}",
        time,
        e.kind.name().to_uppercase(),
        e.pid,
        e.peer,
        e.local,
        detail
    )
    .trim_end()
    .to_string()
}

/// A connection event as its typed line.
pub fn event(e: &EventLine) -> s::NetEvent {
    s::NetEvent {
        layer: "net".into(),
        time: e.time.clone(),
        event: e.kind.name().into(),
        pid: e.pid,
        peer: e.peer.clone(),
        local: e.local.clone(),
        dir: e.dir.name().into(),
        duration_secs: e.duration_secs,
        tx_bytes: e.tx_bytes,
        rx_bytes: e.rx_bytes,
        retransmits: e.retrans,
    }
}

pub fn event_json(e: &EventLine) -> String {
    to_line(&Line::Event(event(e)))
}

/// A report as its typed line.
pub fn report_line(r: &NetReport) -> s::NetReport {
    let t = &r.totals;
    s::NetReport {
        timestamp: r.timestamp.clone(),
        pid: r.pid,
        interval_secs: r.interval_secs,
        elapsed_secs: r.elapsed_secs,
        is_final: r.is_final,
        backends: r
            .backends
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect(),
        totals: s::NetTotals {
            tx_bytes: t.tx_bytes,
            rx_bytes: t.rx_bytes,
            tx_bytes_per_sec: r.tx_per_sec,
            rx_bytes_per_sec: r.rx_per_sec,
            connects: t.connects,
            accepts: t.accepts,
            closes: t.closes,
            connect_failures: t.connect_failures,
            retransmits: t.retrans,
            live_conns: r.live_conns,
        },
        peers: r
            .peers
            .iter()
            .map(|p| s::Peer {
                peer: p.peer.to_string(),
                dir: p.dir.clone(),
                live: p.live,
                closed: p.closed,
                age_secs: p.age_secs,
                tx_bytes: p.tx_bytes,
                rx_bytes: p.rx_bytes,
                tx_bytes_per_sec: p.tx_per_sec,
                rx_bytes_per_sec: p.rx_per_sec,
                retransmits: p.retrans,
                srtt_us: p.srtt_us,
            })
            .collect(),
        alerts: r
            .alerts
            .iter()
            .map(|a| s::NetAlert {
                peer: a.peer.map(|p| p.to_string()),
                disconnects: a.disconnects,
                window_secs: a.window_secs,
                message: a.to_string(),
            })
            .collect(),
        lost_events: r.lost_events,
        evicted_conns: r.evicted,
        gaps: r.gaps.iter().map(super::json::gap).collect(),
    }
}

/// One report as one JSON line.
pub fn report_json(r: &NetReport) -> String {
    to_line(&Line::Report(schema::Report::Net(report_line(r))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(line: &str) -> s::NetReport {
        match schema::decode_strict::<Line>(line).unwrap() {
            Line::Report(schema::Report::Net(r)) => r,
            l => panic!("{l:?}"),
        }
    }
    use crate::model::net::{Alert, Dir, Endpoint, PeerRow, Totals};

    fn report() -> NetReport {
        NetReport {
            timestamp: "2026-11-23T12:00:01.000Z".into(),
            pid: Some(7),
            interval_secs: 1.0,
            elapsed_secs: 3.0,
            backends: vec![("send", "tp_btf")],
            peers: vec![PeerRow {
                peer: Endpoint {
                    addr: "::1".parse().unwrap(),
                    port: 8115,
                },
                dir: "out".into(),
                live: 1,
                closed: 2,
                age_secs: Some(2.5),
                tx_bytes: 2048,
                rx_bytes: 10,
                tx_per_sec: 1024.0,
                rx_per_sec: 0.0,
                retrans: 3,
                srtt_us: Some(40),
            }],
            totals: Totals {
                tx_bytes: 2048,
                closes: 2,
                ..Default::default()
            },
            alerts: vec![Alert {
                peer: None,
                disconnects: 12,
                window_secs: 60,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn table_has_a_row_per_peer_and_the_alert() {
        let t = table(&report());
        assert!(t.starts_with("12:00:01  net pid 7"), "{t}");
        let row = t.lines().find(|l| l.starts_with("[::1]:8115")).unwrap();
        assert!(
            row.contains("2.0 KiB") && row.contains("1.0 KiB/s"),
            "{row}"
        );
        assert!(t.contains("ALERT: the node disconnected 12 times"), "{t}");
    }

    #[test]
    fn gaps_show_in_the_summary_table_and_in_every_json_report() {
        let g = crate::model::Gap {
            old_pid: 7,
            new_pid: 8,
            exited_at: "2026-11-23T12:00:01.000Z".into(),
            resumed_at: "2026-11-23T12:00:03.000Z".into(),
            secs: 2.0,
            ..Default::default()
        };
        let mut r = report();
        r.gaps = vec![g];
        assert!(
            !table(&r).contains("gap:"),
            "interval: the restart line says it"
        );
        let v = decoded(&report_json(&r));
        assert_eq!((v.gaps[0].old_pid, v.gaps[0].new_pid), (7, 8));
        r.is_final = true;
        let t = table(&r);
        assert!(
            t.contains("gap: no data for 2.0 s, pid 7 exited 12:00:01, pid 8 traced from 12:00:03"),
            "{t}"
        );
        r.gaps.clear();
        assert_eq!(decoded(&report_json(&r)).gaps, []);
    }

    #[test]
    fn json_is_one_line_with_the_documented_fields() {
        let line = report_json(&report());
        assert!(
            line.starts_with(r#"{"type":"report","layer":"net","#),
            "{line}"
        );
        let v = decoded(&line);
        assert_eq!(v.peers[0].peer, "[::1]:8115");
        assert_eq!(v.peers[0].tx_bytes, 2048);
        assert_eq!(v.totals.closes, 2);
        assert_eq!(v.backends["send"], "tp_btf");
        assert_eq!(v.alerts[0].peer, None);
        let e = EventLine {
            time: "2026-11-23T12:00:01.234Z".into(),
            kind: EventKind::Close,
            pid: 7,
            peer: "127.0.0.1:1".into(),
            local: "127.0.0.1:2".into(),
            dir: Dir::In,
            duration_secs: Some(1.5),
            tx_bytes: 5,
            rx_bytes: 6,
            retrans: 0,
        };
        let l = event_line(&e);
        assert!(l.starts_with("12:00:01.234 CLOSE"), "{l}");
        assert!(l.contains("in lived 1.5s sent 5 B recv 6 B"), "{l}");
        let line = event_json(&e);
        assert!(
            line.starts_with(r#"{"type":"event","layer":"net","#),
            "{line}"
        );
        match schema::decode_strict::<Line>(&line).unwrap() {
            Line::Event(v) => {
                assert_eq!((v.event.as_str(), v.rx_bytes), ("close", 6));
                assert_eq!(v.duration_secs, Some(1.5));
            }
            l => panic!("{l:?}"),
        }
    }
}
