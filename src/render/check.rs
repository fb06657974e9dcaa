//! The `check` report: its lines as text, or as one JSON object.

use std::fmt::Write as _;

use crate::schema::check::{Backends, Check, Line, Status};

/// The report as the terminal shows it.
pub fn text(lines: &[Line], ok: bool) -> String {
    let mut o = String::from("ckb-libbpf environment check\n");
    for l in lines {
        let mark = match l.status {
            Status::Ok => " ok ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let _ = writeln!(o, "[{mark}] {:<18} {}", l.name, l.detail);
        if let Some(r) = &l.remedy {
            let _ = writeln!(o, "       {:<18} -> {r}", "");
        }
    }
    o.push_str(if ok {
        "result: ckb-libbpf can run here\n"
    } else {
        "result: ckb-libbpf cannot run here: fix the FAIL lines\n"
    });
    o
}

/// The report as one JSON object: the lines, whether each attach type
/// works (`probes`: name, worked), and the backend each layer would use
/// (`backends`: layer, attach type if any).
pub fn json(
    lines: &[Line],
    probes: &[(&str, bool)],
    backends: &[(&str, Option<&str>)],
    ok: bool,
) -> String {
    let backend = |layer: &str| {
        backends
            .iter()
            .find(|(l, _)| *l == layer)
            .and_then(|(_, b)| b.map(String::from))
    };
    crate::schema::to_line(&Check {
        ok,
        checks: lines.to_vec(),
        probes: probes.iter().map(|(n, ok)| (n.to_string(), *ok)).collect(),
        backends: Backends {
            rocksdb: backend("rocksdb"),
            net: backend("net"),
            syscall: backend("syscall"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::decode_strict;

    fn lines() -> Vec<Line> {
        vec![
            Line {
                name: "kernel".into(),
                status: Status::Ok,
                detail: "6.18".into(),
                remedy: None,
            },
            Line {
                name: "kprobe".into(),
                status: Status::Warn,
                detail: "not available".into(),
                remedy: Some("use tracepoints".into()),
            },
        ]
    }

    #[test]
    fn text_and_json_say_the_same() {
        let t = text(&lines(), true);
        assert!(t.contains("[ ok ] kernel             6.18\n"), "{t}");
        assert!(
            t.contains("[warn] kprobe             not available\n"),
            "{t}"
        );
        assert!(t.contains("-> use tracepoints\n"), "{t}");
        assert!(t.ends_with("result: ckb-libbpf can run here\n"));

        let j = json(
            &lines(),
            &[("uprobe", true), ("kprobe", false)],
            &[("rocksdb", Some("uprobe")), ("net", None)],
            true,
        );
        assert!(j.contains(r#""status":"warn""#), "{j}");
        let c: Check = decode_strict(&j).unwrap();
        assert_eq!(c.checks, lines());
        assert!(!c.probes["kprobe"]);
        assert_eq!(c.backends.rocksdb.as_deref(), Some("uprobe"));
        assert_eq!((c.backends.net, c.backends.syscall), (None, None));
    }
}
