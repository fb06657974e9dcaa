//! The credential: a W3C Verifiable Credential 2.0 whose subject is what a
//! capture measured, and the checks `verify` makes on one. The subject's
//! layout is an API (README "Signed reports"): claims are paths into it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::capture::{Capture, Gap};
use super::claim::{self, Checked, Claim};
use super::jws::{Invalid, Reason, Signed};
use crate::error::{Exit, Failure};

pub const CONTEXT_V2: &str = "https://www.w3.org/ns/credentials/v2";
/// Our credential type, next to `VerifiableCredential`. The v2 context's
/// `@vocab` gives undefined terms an IRI, so no context of our own is needed.
pub const TYPE: &str = "CkbNodeDiagnosticReport";
/// Syscalls a report lists: the top by total time.
pub const SYSCALL_TOP: usize = 10;

/// Layers a report can disclose.
pub const LAYERS: &[&str] = &["rocksdb", "background", "anomalies", "net", "syscall"];

/// Parses `--include` (comma-separated LAYERS or `all`).
pub fn parse_include(s: &str) -> std::result::Result<BTreeSet<String>, String> {
    let mut set = BTreeSet::new();
    for l in s.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        if l == "all" {
            set.extend(LAYERS.iter().map(|l| l.to_string()));
        } else if LAYERS.contains(&l) {
            set.insert(l.to_string());
        } else {
            return Err(format!(
                "unknown layer `{l}` (one of {}, all)",
                LAYERS.join(", ")
            ));
        }
    }
    if set.is_empty() {
        return Err("--include names no layer".into());
    }
    Ok(set)
}

/// What the report says about the traced node's binary.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Binary {
    pub path: String,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ckb_version: Option<String>,
}

/// Reads `path` (the node's executable, or /proc/PID/exe, which stays
/// readable after an upgrade replaced the file): SHA-256 of its bytes, its
/// GNU build-id and the CKB version string when the ELF has them.
pub fn binary(path: &Path, display: &Path) -> Result<Binary> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("opening {}", display.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", display.display()))?;
    let (build_id, ckb_version) = match crate::node::elf::Elf::open(path) {
        Ok(elf) => (
            elf.build_id(),
            elf.find_string(b"ckb 0.", 40)
                .or_else(|| elf.find_string(b"ckb 1.", 40)),
        ),
        Err(_) => (None, None),
    };
    Ok(Binary {
        path: display.display().to_string(),
        sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        build_id,
        ckb_version,
    })
}

/// The node part of the subject. `kernel` and `tool` are of the machine
/// and program that made the report.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub binary: Option<Binary>,
    pub kernel: Option<String>,
}

impl Node {
    pub fn here(binary: Option<Binary>) -> Node {
        Node {
            binary,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }
}

/// What goes into a report.
#[derive(Clone, Debug)]
pub struct Options {
    pub include: BTreeSet<String>,
    pub include_peers: bool,
    pub claims: Vec<Claim>,
}

fn parse_time(s: &str, what: &str) -> Result<SystemTime> {
    humantime::parse_rfc3339(s)
        .map_err(|e| Failure::new(Exit::Usage, format!("{what}: timestamp `{s}`: {e}")).into())
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn absent(layer: &str) -> anyhow::Error {
    Failure::new(Exit::Usage, format!("--include {layer}: the capture has no {layer} data"))
        .hint(match layer {
            "net" | "syscall" => format!(
                "capture it too (`ckb-libbpf {layer} --json`, concatenated to the capture), or leave it out of --include"
            ),
            _ => "capture with `ckb-libbpf rocksdb --json`, or leave it out of --include".into(),
        })
        .into()
}

/// The credential subject of a capture: period, node, the included layers
/// and fidelity, then the claims (checked against everything before them).
pub fn subject(c: &Capture, node: &Node, o: &Options) -> Result<Value> {
    let inc = |l: &str| o.include.contains(l);
    // Which layers are present decides the period and the node's pid.
    let mut spans: Vec<(&str, &str, f64, Option<u32>)> = Vec::new();
    if let Some(r) = &c.rocksdb {
        if inc("rocksdb") || inc("background") || inc("anomalies") {
            spans.push(("rocksdb", &r.timestamp, r.elapsed_secs, r.pid));
        }
    }
    if let (Some(n), true) = (&c.net, inc("net")) {
        spans.push(("net", &n.timestamp, n.elapsed_secs, n.pid));
    }
    if let (Some(s), true) = (&c.syscall, inc("syscall")) {
        spans.push(("syscall", &s.timestamp, s.elapsed_secs, s.pid));
    }
    for l in &o.include {
        let have = match l.as_str() {
            "rocksdb" => c.rocksdb.is_some(),
            "background" => c.rocksdb.as_ref().is_some_and(|r| r.background.is_some()),
            "anomalies" => c.rocksdb.as_ref().is_some_and(|r| r.anomalies.is_some()),
            "net" => c.net.is_some(),
            "syscall" => c.syscall.is_some(),
            _ => false,
        };
        if !have {
            return Err(absent(l));
        }
    }
    let mut from: Option<SystemTime> = None;
    let mut to: Option<SystemTime> = None;
    let mut pids = BTreeSet::new();
    for (layer, ts, secs, pid) in &spans {
        let end = parse_time(ts, layer)?;
        let start = end
            .checked_sub(Duration::from_secs_f64(secs.max(0.0)))
            .unwrap_or(end);
        from = Some(from.map_or(start, |f| f.min(start)));
        to = Some(to.map_or(end, |t| t.max(end)));
        pids.extend(*pid);
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Failure::new(Exit::Usage, "nothing to report: no included layer").into());
    };
    let mut s = Map::new();
    s.insert(
        "period".into(),
        json!({
            "from": rfc3339(from),
            "to": rfc3339(to),
            "secs": to.duration_since(from).unwrap_or_default().as_secs_f64(),
        }),
    );
    let mut n = Map::new();
    // Several layers of one live capture trace one process; a concatenated
    // file may name several (after a restart the last pid is the current).
    n.insert("pids".into(), json!(pids));
    if let Some(b) = &node.binary {
        n.insert("binary".into(), json!(b));
    }
    if let Some(k) = &node.kernel {
        n.insert("kernel".into(), json!(k));
    }
    n.insert(
        "tool".into(),
        json!(format!("ckb-libbpf {}", env!("CARGO_PKG_VERSION"))),
    );
    s.insert("node".into(), Value::Object(n));

    let mut fidelity = Map::new();
    let mut lost = Map::new();
    let mut gaps: Vec<Gap> = Vec::new();
    if let Some(r) = &c.rocksdb {
        if inc("rocksdb") {
            s.insert("rocksdb".into(), json!(r.operations));
            lost.insert("rocksdb".into(), json!(r.lost_events));
            fidelity.insert("rocksdb_uncounted_calls".into(), json!(r.uncounted_calls));
            // Counts under --overhead-budget cover only the attached share.
            let (sampled, pct) = r
                .overhead
                .as_ref()
                .map_or((false, 100.0), |o| (o.sampled, o.attached_pct));
            fidelity.insert("rocksdb_sampled".into(), json!(sampled));
            fidelity.insert("rocksdb_attached_pct".into(), json!(pct));
        }
        if inc("background") {
            s.insert("background".into(), json!(r.background));
        }
        if inc("anomalies") {
            s.insert("anomalies".into(), json!(r.anomalies));
        }
        gaps.extend(r.gaps.iter().cloned());
    }
    if let (Some(net), true) = (&c.net, inc("net")) {
        let mut v = json!({
            "totals": net.totals,
            "peer_count": net.peers.len(),
            "disconnect_alerts": net.alerts.len(),
        });
        if o.include_peers {
            v["peers"] = json!(net.peers);
            v["alerts"] = net
                .alerts
                .iter()
                .map(|a| json!({"peer": a.peer, "disconnects": a.disconnects, "window_secs": a.window_secs}))
                .collect();
        }
        s.insert("net".into(), v);
        lost.insert("net".into(), json!(net.lost_events));
        fidelity.insert("net_evicted_conns".into(), json!(net.evicted_conns));
        gaps.extend(net.gaps.iter().cloned());
    }
    if let (Some(sc), true) = (&c.syscall, inc("syscall")) {
        let mut top: Vec<(&String, &super::capture::Syscall1)> = sc.syscalls.iter().collect();
        top.sort_by(|a, b| b.1.total_us.total_cmp(&a.1.total_us).then(a.0.cmp(b.0)));
        top.truncate(SYSCALL_TOP);
        let top: Map<String, Value> = top
            .into_iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        s.insert(
            "syscall".into(),
            json!({
                "total_calls": sc.total_calls,
                "distinct_syscalls": sc.distinct_syscalls,
                "syscalls": top,
                "futex_wait_ratio": sc.derived.futex_wait_ratio,
                "fsync": sc.derived.fsync,
            }),
        );
        lost.insert("syscall".into(), json!(sc.uncounted_calls));
        fidelity.insert("syscall_untimed_calls".into(), json!(sc.untimed_calls));
        gaps.extend(sc.gaps.iter().cloned());
    }
    // Each layer lists the same restarts; one entry per restart.
    gaps.sort_by_key(|g| (g.old_pid, g.new_pid));
    gaps.dedup_by(|a, b| a.old_pid == b.old_pid && a.new_pid == b.new_pid);
    let total_lost: u64 = lost.values().filter_map(Value::as_u64).sum();
    fidelity.insert("lost_events".into(), json!(total_lost));
    fidelity.insert("lost_events_by_layer".into(), Value::Object(lost));
    fidelity.insert("gap_count".into(), json!(gaps.len()));
    fidelity.insert(
        "gap_secs".into(),
        json!(gaps.iter().fold(0.0, |t, g| t + g.secs)),
    );
    fidelity.insert("gaps".into(), json!(gaps));
    s.insert("fidelity".into(), Value::Object(fidelity));

    let mut subject = Value::Object(s);
    let checked: Vec<Checked> = o
        .claims
        .iter()
        .map(|c| claim::check(c, &subject))
        .collect::<Result<_>>()?;
    if !checked.is_empty() {
        subject["claims"] = json!(checked);
    }
    Ok(subject)
}

/// The credential around a subject.
pub fn credential(issuer: &str, valid_from: SystemTime, subject: Value) -> Value {
    json!({
        "@context": [CONTEXT_V2],
        "type": ["VerifiableCredential", TYPE],
        "issuer": issuer,
        "validFrom": humantime::format_rfc3339_seconds(valid_from).to_string(),
        "credentialSubject": subject,
    })
}

/// A credential that verified.
#[derive(Clone, Debug)]
pub struct Verified {
    pub issuer: String,
    pub kid: String,
    pub alg: String,
    pub credential: Value,
}

fn malformed(detail: impl Into<String>) -> Invalid {
    Invalid::new(Reason::Malformed, detail)
}

/// Checks a signed token as a credential: the signature (jws::verify), the
/// VC's shape, `issuer` equal to the DID that signed, and that DID equal to
/// `expect_issuer` when given.
pub fn verify(token: &str, expect_issuer: Option<&str>) -> std::result::Result<Verified, Invalid> {
    let Signed {
        did,
        kid,
        alg,
        payload,
    } = super::jws::verify(token)?;
    let vc: Value = serde_json::from_slice(&payload)
        .map_err(|e| malformed(format!("the payload is not JSON: {e}")))?;
    let ctx = vc.get("@context").and_then(Value::as_array);
    if ctx.and_then(|c| c.first()).and_then(Value::as_str) != Some(CONTEXT_V2) {
        return Err(malformed(format!(
            "the payload is not a VC 2.0 credential: @context must begin with {CONTEXT_V2}"
        )));
    }
    let types = vc.get("type").and_then(Value::as_array);
    if !types.is_some_and(|t| t.iter().any(|t| t == "VerifiableCredential")) {
        return Err(malformed("`type` does not include VerifiableCredential"));
    }
    if vc.get("credentialSubject").is_none() {
        return Err(malformed("the credential has no credentialSubject"));
    }
    // VC 2.0: the issuer is a URL or an object with an `id`.
    let issuer = match vc.get("issuer") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => match o.get("id") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(malformed("`issuer` object has no id")),
        },
        _ => return Err(malformed("the credential has no issuer")),
    };
    if issuer != did {
        return Err(Invalid::new(
            Reason::IssuerMismatch,
            format!("issuer {issuer} is not the DID that signed ({did})"),
        ));
    }
    if let Some(want) = expect_issuer {
        if want != issuer {
            return Err(Invalid::new(
                Reason::UnexpectedIssuer,
                format!("signed by {issuer}, expected {want}"),
            ));
        }
    }
    Ok(Verified {
        issuer,
        kid,
        alg,
        credential: vc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;
    use crate::evidence::capture::{parse, tests as cap};
    use crate::evidence::{did_key, jws};
    use ed25519_dalek::SigningKey;

    fn opts(include: &str) -> Options {
        Options {
            include: parse_include(include).unwrap(),
            include_peers: false,
            claims: Vec::new(),
        }
    }

    fn full() -> Capture {
        parse("t", [cap::ROCKSDB, cap::NET, cap::SYSCALL]).unwrap()
    }

    #[test]
    fn subject_carries_the_capture_and_nothing_else() {
        let s = subject(&full(), &Node::default(), &opts("all")).unwrap();
        assert_eq!(s["rocksdb"]["GET"]["count"], 5890);
        assert_eq!(s["rocksdb"]["GET"]["p99_us"], 3.4);
        assert_eq!(s["rocksdb"]["PUT"]["bytes"], 852000);
        assert_eq!(s["background"]["jobs"]["flush"]["finished"], 2);
        assert_eq!(s["net"]["totals"]["tx_bytes"], 1000);
        assert_eq!(s["syscall"]["syscalls"]["futex"]["errors"], 5);
        assert_eq!(s["period"]["from"], "2026-11-23T12:00:01.000Z");
        assert_eq!(s["period"]["to"], "2026-11-23T12:00:31.000Z");
        assert_eq!(s["period"]["secs"], 30.0);
        assert_eq!(s["node"]["pids"], json!([4242]));
        assert_eq!(s["fidelity"]["lost_events"], 0);
        assert_eq!(s["fidelity"]["syscall_untimed_calls"], 1);
        // Peer addresses only when asked for.
        let text = s.to_string();
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert_eq!(s["net"]["peer_count"], 1);
        let mut o = opts("net");
        o.include_peers = true;
        let s = subject(&full(), &Node::default(), &o).unwrap();
        assert_eq!(s["net"]["peers"][0]["peer"], "127.0.0.1:8115");
        assert_eq!(s["net"]["alerts"][0]["peer"], "127.0.0.1");
    }

    #[test]
    fn include_limits_the_layers() {
        let s = subject(&full(), &Node::default(), &opts("rocksdb")).unwrap();
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["fidelity", "node", "period", "rocksdb"]);
        let s = subject(&full(), &Node::default(), &opts("syscall")).unwrap();
        assert!(s.get("rocksdb").is_none() && s.get("net").is_none());
        assert_eq!(s["fidelity"]["lost_events_by_layer"], json!({"syscall": 0}));
        // A layer the capture lacks is a usage error.
        let only_rocksdb = parse("t", [cap::ROCKSDB]).unwrap();
        let e = subject(&only_rocksdb, &Node::default(), &opts("net")).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Usage);
        assert!(parse_include("rocksdb,disk").is_err());
    }

    #[test]
    fn claims_are_checked_and_carried() {
        let mut o = opts("all");
        o.claims = vec![claim::parse("rocksdb.GET.p99_us<1000").unwrap()];
        let s = subject(&full(), &Node::default(), &o).unwrap();
        assert_eq!(s["claims"][0]["claim"], "rocksdb.GET.p99_us<1000");
        assert_eq!(s["claims"][0]["measured"], 3.4);
        assert_eq!(s["claims"][0]["op"], "<");
        o.claims = vec![claim::parse("rocksdb.GET.p99_us<1").unwrap()];
        let e = subject(&full(), &Node::default(), &o).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Runtime);
        let mut o = opts("syscall");
        o.claims = vec![claim::parse("rocksdb.GET.p99_us<1000").unwrap()];
        let e = subject(&full(), &Node::default(), &o).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Usage, "left out by --include");
    }

    fn signed(k: &SigningKey, issuer: &str) -> String {
        let s = subject(&full(), &Node::default(), &opts("all")).unwrap();
        let vc = credential(issuer, SystemTime::UNIX_EPOCH, s);
        jws::sign(k, vc.to_string().as_bytes())
    }

    #[test]
    fn verifies_issuer_and_expected_issuer() {
        let k = SigningKey::from_bytes(&[4; 32]);
        let did = did_key::did(&k.verifying_key());
        let t = signed(&k, &did);
        let v = verify(&t, None).unwrap();
        assert_eq!(v.issuer, did);
        assert_eq!(v.credential["validFrom"], "1970-01-01T00:00:00Z");
        assert!(verify(&t, Some(&did)).is_ok());

        let other = did_key::did(&SigningKey::from_bytes(&[5; 32]).verifying_key());
        let e = verify(&t, Some(&other)).unwrap_err();
        assert_eq!(e.reason, Reason::UnexpectedIssuer);

        // Signed with our key but claiming to be someone else.
        let t = signed(&k, &other);
        assert_eq!(verify(&t, None).unwrap_err().reason, Reason::IssuerMismatch);
    }

    #[test]
    fn refuses_payloads_that_are_not_credentials() {
        let k = SigningKey::from_bytes(&[4; 32]);
        let did = did_key::did(&k.verifying_key());
        for p in [
            "not json".to_string(),
            json!({"issuer": did}).to_string(),
            json!({"@context": [CONTEXT_V2], "type": ["X"], "issuer": did, "credentialSubject": {}}).to_string(),
            json!({"@context": [CONTEXT_V2], "type": ["VerifiableCredential"], "credentialSubject": {}}).to_string(),
        ] {
            let t = jws::sign(&k, p.as_bytes());
            assert_eq!(verify(&t, None).unwrap_err().reason, Reason::Malformed, "{p}");
        }
        let p = json!({"@context": [CONTEXT_V2], "type": ["VerifiableCredential"],
                       "issuer": {"id": did}, "credentialSubject": {}});
        assert!(verify(&jws::sign(&k, p.to_string().as_bytes()), None).is_ok());
    }
}
