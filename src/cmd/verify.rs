//! `verify`: checks a signed report and prints who signed what (wiring and
//! text only: evidence::vc::verify decides).

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::error::{Exit, Failure};
use crate::evidence::jws::Reason;
use crate::evidence::{claim, did_key, vc};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The signed report (a compact JWS, as `report` writes); `-` reads
    /// standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also require this signer (a did:key).
    #[arg(long, value_name = "DID")]
    pub expect_issuer: Option<String>,
    /// The verdict as one JSON object (with the whole credential when valid).
    #[arg(long)]
    pub json: bool,
}

fn read(path: &Path) -> Result<String> {
    let mut s = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        Failure::new(Exit::Usage, format!("cannot read {}: {e}", path.display()))
            .hint("name the file `ckb-libbpf report -o FILE` wrote")
            .into()
    })
}

fn remedy(r: Reason) -> &'static str {
    match r {
        Reason::Malformed => "this is not a report as `ckb-libbpf report` signs them (a compact JWS of a VC), or it was cut or edited",
        Reason::BadSignature => "the report was changed after it was signed, or not signed by the key its kid names: do not trust its content",
        Reason::Algorithm => "only EdDSA (Ed25519) signatures are accepted; `none` never is",
        Reason::IssuerMismatch => "the credential names another issuer than the key that signed it: a forgery",
        Reason::UnexpectedIssuer => "the report is intact but signed by someone else than --expect-issuer",
    }
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Some(f) => format!("{f:.1}"),
        None => "-".into(),
    }
}

/// A few lines a person reads; every figure is also in `--json`.
fn summary(vc: &Value) -> String {
    let s = &vc["credentialSubject"];
    let mut out = String::new();
    let p = &s["period"];
    if p.is_object() {
        let _ = writeln!(
            out,
            "period:     {} .. {} ({} s)",
            p["from"].as_str().unwrap_or("?"),
            p["to"].as_str().unwrap_or("?"),
            num(&p["secs"])
        );
    }
    let n = &s["node"];
    if n.is_object() {
        let b = &n["binary"];
        let mut parts = Vec::new();
        if let Some(path) = b["path"].as_str() {
            parts.push(format!(
                "{path} sha256:{}",
                b["sha256"].as_str().unwrap_or("?")
            ));
        }
        if let Some(id) = b["build_id"].as_str() {
            parts.push(format!("build-id {id}"));
        }
        if let Some(v) = b["ckb_version"].as_str() {
            parts.push(v.to_string());
        }
        if let Some(k) = n["kernel"].as_str() {
            parts.push(format!("kernel {k}"));
        }
        if let Some(t) = n["tool"].as_str() {
            parts.push(t.to_string());
        }
        let _ = writeln!(out, "node:       {}", parts.join(", "));
    }
    if let Some(claims) = s["claims"].as_array() {
        // Each claim checked again against the figures it was signed with:
        // a signature proves who said it, not that it follows from the data.
        let mut data = s.clone();
        if let Some(o) = data.as_object_mut() {
            o.remove("claims");
        }
        for c in claims {
            let text = c["claim"].as_str().unwrap_or("?");
            let check = claim::parse(text)
                .map_err(anyhow::Error::msg)
                .and_then(|cl| claim::check(&cl, &data));
            let _ = writeln!(
                out,
                "claim:      {text} (measured {}){}",
                num(&c["measured"]),
                match check {
                    Ok(_) => String::new(),
                    Err(e) => format!(" -- NOT supported by the report's own data: {e}"),
                }
            );
        }
    }
    if let Some(ops) = s["rocksdb"].as_object() {
        let list: Vec<String> = ops
            .iter()
            .map(|(k, v)| format!("{k} {} (p99 {} us)", num(&v["count"]), num(&v["p99_us"])))
            .collect();
        let _ = writeln!(out, "rocksdb:    {}", list.join(", "));
    }
    if let Some(jobs) = s["background"]["jobs"].as_object() {
        let list: Vec<String> = jobs
            .iter()
            .map(|(k, v)| format!("{k} {}", num(&v["finished"])))
            .collect();
        let _ = writeln!(
            out,
            "background: {}; write stall {} ms",
            if list.is_empty() {
                "no jobs".to_string()
            } else {
                list.join(", ")
            },
            num(&s["background"]["stalled_ms"])
        );
    }
    if let Some(a) = s["anomalies"].as_array() {
        let _ = writeln!(out, "anomalies:  {}", a.len());
    }
    let t = &s["net"]["totals"];
    if t.is_object() {
        let _ = writeln!(
            out,
            "net:        tx {} B, rx {} B, {} connects, {} accepts, {} closes, {} peers",
            num(&t["tx_bytes"]),
            num(&t["rx_bytes"]),
            num(&t["connects"]),
            num(&t["accepts"]),
            num(&t["closes"]),
            num(&s["net"]["peer_count"])
        );
    }
    if s["syscall"].is_object() {
        let _ = writeln!(
            out,
            "syscall:    {} calls, {} distinct",
            num(&s["syscall"]["total_calls"]),
            num(&s["syscall"]["distinct_syscalls"])
        );
    }
    let f = &s["fidelity"];
    if f.is_object() {
        let _ = writeln!(
            out,
            "fidelity:   {} lost events, {} gaps ({} s)",
            num(&f["lost_events"]),
            num(&f["gap_count"]),
            num(&f["gap_secs"])
        );
    }
    out
}

pub fn run(args: VerifyArgs) -> Result<Exit> {
    if let Some(d) = &args.expect_issuer {
        did_key::resolve(d).map_err(|e| {
            Failure::new(Exit::Usage, format!("--expect-issuer: {e}"))
                .hint("give the did:key:z6Mk... that `ckb-libbpf identity show` prints")
        })?;
    }
    let token = read(&args.file)?;
    match vc::verify(&token, args.expect_issuer.as_deref()) {
        Ok(v) => {
            if args.json {
                let out = json!({
                    "valid": true,
                    "issuer": v.issuer,
                    "kid": v.kid,
                    "alg": v.alg,
                    "validFrom": v.credential["validFrom"],
                    "period": v.credential["credentialSubject"]["period"],
                    "claims": v.credential["credentialSubject"]["claims"],
                    "credential": v.credential,
                });
                println!("{out}");
            } else {
                print!(
                    "valid: signed by {} ({}), valid from {}\n{}",
                    v.issuer,
                    v.alg,
                    v.credential["validFrom"].as_str().unwrap_or("?"),
                    summary(&v.credential)
                );
            }
            Ok(Exit::Ok)
        }
        Err(inv) => {
            if args.json {
                println!(
                    "{}",
                    json!({"valid": false, "reason": inv.reason.name(), "detail": inv.detail})
                );
                eprintln!("ckb-libbpf: not valid: {inv}");
                return Ok(Exit::Runtime);
            }
            Err(Failure::new(Exit::Runtime, format!("not valid: {inv}"))
                .hint(remedy(inv.reason))
                .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_flags_a_claim_its_own_data_does_not_support() {
        let vc = json!({"credentialSubject": {
            "rocksdb": {"GET": {"count": 3, "p99_us": 5.0}},
            "claims": [
                {"claim": "rocksdb.GET.p99_us<10", "measured": 5.0},
                {"claim": "rocksdb.GET.p99_us<1", "measured": 0.5},
            ],
        }});
        let s = summary(&vc);
        let lines: Vec<&str> = s.lines().filter(|l| l.starts_with("claim:")).collect();
        assert_eq!(lines.len(), 2, "{s}");
        assert!(!lines[0].contains("NOT"), "{s}");
        assert!(lines[1].contains("NOT supported"), "{s}");
        assert!(lines[1].contains("measured rocksdb.GET.p99_us = 5"), "{s}");
    }
}
