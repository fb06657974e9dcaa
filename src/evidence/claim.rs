//! `--claim PATH OP NUMBER` (e.g. `rocksdb.GET.p99_us<1000`): a threshold
//! on one figure of the credential subject, checked against the data before
//! anything is signed. PATH is a dotted path into `credentialSubject` as
//! `verify --json` shows it, so every figure a report carries can be
//! claimed and nothing else can.

use std::fmt;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Exit, Failure};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A parsed `--claim`.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub path: String,
    pub op: Op,
    pub threshold: f64,
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.path, self.op.symbol(), self.threshold)
    }
}

/// A claim that holds, as the credential carries it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    pub claim: String,
    pub path: String,
    pub op: Op,
    pub threshold: f64,
    pub measured: f64,
}

/// Parses `PATH<N`, `PATH<=N`, `PATH>N`, `PATH>=N` (for clap).
pub fn parse(s: &str) -> std::result::Result<Claim, String> {
    let at = s
        .find(['<', '>'])
        .ok_or_else(|| format!("`{s}`: a claim is PATH<N, PATH<=N, PATH>N or PATH>=N"))?;
    let (path, rest) = s.split_at(at);
    let (op, num) = match (rest.as_bytes()[0], rest.as_bytes().get(1)) {
        (b'<', Some(b'=')) => (Op::Le, &rest[2..]),
        (b'>', Some(b'=')) => (Op::Ge, &rest[2..]),
        (b'<', _) => (Op::Lt, &rest[1..]),
        _ => (Op::Gt, &rest[1..]),
    };
    let path = path.trim();
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(format!("`{s}`: the path must be like rocksdb.GET.p99_us"));
    }
    let threshold: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("`{s}`: `{}` is not a number", num.trim()))?;
    Ok(Claim {
        path: path.to_string(),
        op,
        threshold,
    })
}

/// Numeric paths of `v` (for the hint of an unknown path).
fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                paths(x, &p, out);
            }
        }
        Value::Number(_) | Value::Null => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Checks `claim` against `subject`. A path the subject lacks is a usage
/// error (2); a figure that is missing (no calls) or on the wrong side of
/// the threshold fails the claim (1), saying what was measured.
pub fn check(claim: &Claim, subject: &Value) -> Result<Checked> {
    let found = claim
        .path
        .split('.')
        .try_fold(subject, |v, k| v.as_object().and_then(|m| m.get(k)));
    let Some(v) = found.filter(|v| v.is_number() || v.is_null()) else {
        let first = claim.path.split('.').next().unwrap_or_default();
        let mut near = Vec::new();
        paths(subject.get(first).unwrap_or(&Value::Null), first, &mut near);
        let hint = if near.is_empty() || subject.get(first).is_none() {
            "claims name a figure of the report: rocksdb.<OP>.<field>, background.jobs.<kind>.<field>, net.totals.<field>, syscall.syscalls.<name>.<field>, fidelity.<field>; a layer left out by --include cannot be claimed".to_string()
        } else {
            near.truncate(12);
            format!("figures under `{first}`: {}", near.join(", "))
        };
        return Err(Failure::new(
            Exit::Usage,
            format!("claim `{claim}`: the report has no figure `{}`", claim.path),
        )
        .hint(hint)
        .into());
    };
    let Some(measured) = v.as_f64() else {
        return Err(Failure::new(
            Exit::Runtime,
            format!(
                "claim `{claim}` does not hold: {} was not measured (no calls in the capture)",
                claim.path
            ),
        )
        .into());
    };
    if !claim.op.holds(measured, claim.threshold) {
        return Err(Failure::new(
            Exit::Runtime,
            format!(
                "claim `{claim}` does not hold: measured {} = {measured}",
                claim.path
            ),
        )
        .hint("a report states only claims its data supports; drop or change the --claim")
        .into());
    }
    Ok(Checked {
        claim: claim.to_string(),
        path: claim.path.clone(),
        op: claim.op,
        threshold: claim.threshold,
        measured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;
    use serde_json::json;

    #[test]
    fn parses_the_four_operators() {
        let c = parse("rocksdb.GET.p99_us<1000").unwrap();
        assert_eq!(
            (c.path.as_str(), c.op, c.threshold),
            ("rocksdb.GET.p99_us", Op::Lt, 1000.0)
        );
        assert_eq!(parse("a.b<=1.5").unwrap().op, Op::Le);
        assert_eq!(parse("a.b > 2").unwrap().op, Op::Gt);
        assert_eq!(parse("a.b>=0").unwrap().op, Op::Ge);
        for bad in ["a.b", "<1", "a..b<1", "a.b<x", "a.b<", "a.b<inf", "a.b=1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_against_the_data() {
        let s = json!({"rocksdb": {"GET": {"p99_us": 3.4, "count": 10}, "PUT": {"p99_us": null}}});
        let ok = check(&parse("rocksdb.GET.p99_us<1000").unwrap(), &s).unwrap();
        assert_eq!(ok.measured, 3.4);
        assert!(check(&parse("rocksdb.GET.p99_us<=3.4").unwrap(), &s).is_ok());
        assert!(check(&parse("rocksdb.GET.count>=10").unwrap(), &s).is_ok());

        let e = check(&parse("rocksdb.GET.p99_us<3").unwrap(), &s).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Runtime);
        assert!(
            e.to_string().contains("measured rocksdb.GET.p99_us = 3.4"),
            "{e}"
        );
        let e = check(&parse("rocksdb.GET.count>10").unwrap(), &s).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Runtime);
        let e = check(&parse("rocksdb.PUT.p99_us<1").unwrap(), &s).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Runtime, "no measurement, no claim");

        for unknown in [
            "rocksdb.SCAN.p99_us<1",
            "net.totals.tx_bytes<1",
            "rocksdb.GET<1",
        ] {
            let e = check(&parse(unknown).unwrap(), &s).unwrap_err();
            assert_eq!(exit_code(&e), Exit::Usage, "{unknown}");
        }
        let e = check(&parse("rocksdb.GET.p90_us<1").unwrap(), &s).unwrap_err();
        assert!(crate::error::remedy(&e)
            .unwrap()
            .contains("rocksdb.GET.p99_us"));
    }
}
