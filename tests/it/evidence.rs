//! `identity`, `report`, `verify` end to end through the binary, checked
//! against an independent JOSE implementation (Debian's python3-jwt with
//! python3-cryptography, tests/py/) both ways, and over a real capture of
//! the bundled workload, whose counts the signed report must carry exactly.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

const PYTHON: &str = "/usr/bin/python3";

fn tmpdir(name: &str) -> Scratch {
    scratch_dir(&format!("evidence-{name}"))
}

fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py")
}

/// The independent implementation must be there: a missing one fails the
/// test (interop is the point), it is never skipped.
fn python() -> Command {
    let probe = Command::new(PYTHON)
        .args(["-c", "import jwt, cryptography"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "the interop tests need {PYTHON} with PyJWT and cryptography: \
             `apt-get install python3-jwt python3-cryptography` (make deps does); got {other:?}"
        ),
    }
    let mut c = Command::new(PYTHON);
    c.current_dir(py_dir());
    c
}

/// PyJWT verifies `token_file` with the key decoded from the did:key.
fn py_verify(token_file: &Path) -> (bool, String) {
    let o = python()
        .arg("verify_vc.py")
        .arg(token_file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("Traceback"), "python crashed: {err}");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// PyJWT signs a credential; returns (its DID, the token).
fn py_sign(args: &[&str]) -> (String, String) {
    let o = python().arg("sign_vc.py").args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        v["did"].as_str().unwrap().into(),
        v["token"].as_str().unwrap().into(),
    )
}

fn key_in(dir: &Path) -> (String, String) {
    let key = dir.join("id.key");
    let k = key.to_str().unwrap().to_string();
    let (code, out, err) = run_tool(&["identity", "generate", "--key", &k]);
    assert_eq!(code, 0, "{err}");
    (k, out.trim().to_string())
}

/// A small capture with every layer, as `--json` captures print them.
fn synthetic_capture(dir: &Path) -> PathBuf {
    let rocksdb = json!({"type":"report","layer":"rocksdb","timestamp":"2026-11-23T12:00:31.000Z","pid":4242,
        "interval_secs":30.0,"elapsed_secs":30.0,"final":true,
        "operations":{"GET":{"count":5890,"qps":196.3,"avg_us":1.5,"p50_us":1.4,"p99_us":3.4,"max_us":306.0,"bytes":588900,"bytes_per_sec":19630.0,"hit_ratio":0.839,"misses":948}},
        "lost_events":0,"uncounted_calls":0,"slow_events":0,"gaps":[],"left_out":[],
        "background":{"jobs":{},"stalled_ms":0.0,"absent":[]},"anomalies":[]});
    let net = json!({"type":"report","layer":"net","timestamp":"2026-11-23T12:00:31.000Z","pid":4242,
        "interval_secs":30.0,"elapsed_secs":30.0,"final":true,"backends":{},
        "totals":{"tx_bytes":10,"rx_bytes":20,"tx_bytes_per_sec":0.3,"rx_bytes_per_sec":0.6,"connects":1,"accepts":0,"closes":0,"connect_failures":0,"retransmits":0,"live_conns":1},
        "peers":[{"peer":"127.0.0.1:8115","dir":"out","live":1,"closed":0,"age_secs":3.0,"tx_bytes":10,"rx_bytes":20,"tx_bytes_per_sec":0.3,"rx_bytes_per_sec":0.6,"retransmits":0,"srtt_us":30}],
        "alerts":[],"lost_events":0,"evicted_conns":0,"gaps":[]});
    let p = dir.join("capture.jsonl");
    std::fs::write(&p, format!("{rocksdb}\n{net}\n")).unwrap();
    p
}

fn verify_json(file: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["verify", file, "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run_tool(&args);
    let v = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out:?}: {e}; {err}"));
    (code, v, err)
}

#[test]
fn identity_key_file_rules() {
    let d = tmpdir("identity");
    let (key, did) = key_in(&d);
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // Never overwritten without --force.
    let (code, _, err) = run_tool(&["identity", "generate", "--key", &key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, out, _) = run_tool(&["identity", "show", "--key", &key]);
    assert_eq!((code, out.trim()), (0, did.as_str()));

    // show --json: the public JWK is the key in the DID.
    let (code, out, _) = run_tool(&["identity", "show", "--key", &key, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["did"], did.as_str());
    assert_eq!(v["kid"], format!("{did}#{}", &did["did:key:".len()..]));
    let x = URL_SAFE_NO_PAD
        .decode(v["public_jwk"]["x"].as_str().unwrap())
        .unwrap();
    let mut mc = vec![0xed, 0x01];
    mc.extend_from_slice(&x);
    assert_eq!(format!("did:key:z{}", bs58::encode(mc).into_string()), did);

    // A key readable by others is refused, with the remedy; so is signing.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run_tool(&["identity", "show", "--key", &key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("too open"), "{err}");
    assert!(err.contains(&format!("hint: chmod 600 {key}")), "{err}");
    let cap = synthetic_capture(&d);
    let (code, out, err) = run_tool(&["report", "--key", &key, "--input", cap.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // --force makes a new identity.
    let (code, out, err) = run_tool(&["identity", "generate", "--key", &key, "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(out.trim(), did);
}

#[test]
fn python_verifies_our_report_and_we_verify_python() {
    let d = tmpdir("interop");
    let (key, did) = key_in(&d);
    let cap = synthetic_capture(&d);
    let rep = d.join("report.jwt");
    let (code, _, err) = run_tool(&[
        "report",
        "--key",
        &key,
        "--input",
        cap.to_str().unwrap(),
        "-o",
        rep.to_str().unwrap(),
        "--claim",
        "rocksdb.GET.p99_us<1000",
    ]);
    assert_eq!(code, 0, "{err}");

    // Theirs accepts ours: PyJWT with the key from the did:key.
    let (ok, out) = py_verify(&rep);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["issuer"], did.as_str());
    assert_eq!(
        v["header"],
        json!({"alg": "EdDSA", "typ": "vc+jwt", "cty": "vc",
                                   "kid": format!("{did}#{}", &did["did:key:".len()..])})
    );
    let vc = &v["credential"];
    assert_eq!(
        vc["@context"],
        json!(["https://www.w3.org/ns/credentials/v2"])
    );
    assert_eq!(vc["type"][0], "VerifiableCredential");
    assert!(vc["validFrom"].is_string());
    assert_eq!(vc["credentialSubject"]["rocksdb"]["GET"]["count"], 5890);
    assert_eq!(vc["credentialSubject"]["claims"][0]["measured"], 3.4);
    // ... and refuses ours edited.
    let token = std::fs::read_to_string(&rep).unwrap();
    let edited = d.join("edited.jwt");
    let mut b = token.trim().as_bytes().to_vec();
    let mid = token.find('.').unwrap() + 40;
    b[mid] = if b[mid] == b'A' { b'B' } else { b'A' };
    std::fs::write(&edited, &b).unwrap();
    assert!(!py_verify(&edited).0);

    // Ours accepts theirs.
    let (pdid, ptoken) = py_sign(&[]);
    let pf = d.join("python.jwt");
    std::fs::write(&pf, &ptoken).unwrap();
    let (code, v, err) = verify_json(pf.to_str().unwrap(), &["--expect-issuer", &pdid]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["issuer"], pdid.as_str());
    assert_eq!(v["claims"][0]["measured"], 456.5);
    let (code, out, err) = run_tool(&["verify", pf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("valid: signed by {pdid}")), "{out}");
    assert!(
        out.contains("claim:      rocksdb.GET.p99_us<1000 (measured 456.5)"),
        "{out}"
    );

    // Theirs with alg none, or a header alg that is not EdDSA, or an issuer
    // that is not the signer: refused with the reason.
    for (args, reason) in [
        (vec!["none"], "algorithm"),
        (vec!["HS256"], "algorithm"),
        (vec!["Ed25519"], ""),
        (vec!["EdDSA", did.as_str()], "issuer_mismatch"),
    ] {
        let (_, t) = py_sign(&args);
        std::fs::write(&pf, &t).unwrap();
        let (code, v, err) = verify_json(pf.to_str().unwrap(), &[]);
        if reason.is_empty() {
            assert_eq!((code, &v["valid"]), (0, &json!(true)), "{args:?}: {err}");
        } else {
            assert_eq!(code, 1, "{args:?}: {err}");
            assert_eq!(v["valid"], false);
            assert_eq!(v["reason"], reason, "{args:?}: {v}");
        }
    }
}

#[test]
fn tampering_and_other_signers_fail_with_the_reason() {
    let d = tmpdir("tamper");
    let (key, did) = key_in(&d);
    let cap = synthetic_capture(&d);
    let rep = d.join("r.jwt");
    let (code, _, err) = run_tool(&[
        "report",
        "--key",
        &key,
        "--input",
        cap.to_str().unwrap(),
        "-o",
        rep.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let token = std::fs::read_to_string(&rep).unwrap().trim().to_string();
    let (code, v, _) = verify_json(rep.to_str().unwrap(), &["--expect-issuer", &did]);
    assert_eq!((code, &v["valid"]), (0, &json!(true)));

    // One changed character at the start, middle and end of each part (the
    // unit tests in evidence::jws change every position).
    let f = d.join("t.jwt");
    let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
    let parts = [
        (0, dots[0]),
        (dots[0] + 1, dots[1]),
        (dots[1] + 1, token.len()),
    ];
    for (part, (a, b)) in parts.iter().enumerate() {
        for i in [*a, (a + b) / 2, b - 1] {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            std::fs::write(&f, &t).unwrap();
            let (code, v, _) = verify_json(f.to_str().unwrap(), &[]);
            assert_eq!(code, 1, "part {part} char {i}");
            assert_eq!(v["valid"], false);
            let r = v["reason"].as_str().unwrap();
            assert!(r == "malformed" || r == "bad_signature", "part {part}: {v}");
        }
    }

    // The header re-pointed at another DID's key.
    let d2 = tmpdir("other");
    let (other_key, other_did) = key_in(&d2);
    let h = json!({"alg": "EdDSA", "typ": "vc+jwt", "cty": "vc",
                   "kid": format!("{other_did}#{}", &other_did["did:key:".len()..])});
    let swapped = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(h.to_string()),
        token.split_once('.').unwrap().1
    );
    std::fs::write(&f, &swapped).unwrap();
    let (code, v, _) = verify_json(f.to_str().unwrap(), &[]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("bad_signature")));

    // Someone else's valid report is refused under --expect-issuer.
    let rep2 = d.join("r2.jwt");
    let (code, _, _) = run_tool(&[
        "report",
        "--key",
        &other_key,
        "--input",
        cap.to_str().unwrap(),
        "-o",
        rep2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, v, _) = verify_json(rep2.to_str().unwrap(), &["--expect-issuer", &did]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("unexpected_issuer")));
    // Text mode: reason on stderr, with a remedy, exit 1.
    let (code, out, err) = run_tool(&["verify", rep2.to_str().unwrap(), "--expect-issuer", &did]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("not valid: unexpected_issuer"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    // alg none on our own payload.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"vc+jwt"}"#),
        token.split('.').nth(1).unwrap()
    );
    std::fs::write(&f, &none).unwrap();
    let (code, v, _) = verify_json(f.to_str().unwrap(), &[]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("algorithm")));

    // Usage errors are 2: a missing file, a bad --expect-issuer.
    let (code, _, err) = run_tool(&["verify", d.join("nope.jwt").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_tool(&[
        "verify",
        rep.to_str().unwrap(),
        "--expect-issuer",
        "did:web:x",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn include_peers_and_claims() {
    let d = tmpdir("include");
    let (key, _) = key_in(&d);
    let cap = d.join("cap");
    let cap = {
        let c = synthetic_capture(&d);
        std::fs::rename(&c, &cap).unwrap();
        cap.to_str().unwrap().to_string()
    };
    let report = |extra: &[&str]| {
        let mut a = vec!["report", "--key", key.as_str(), "--input", cap.as_str()];
        a.extend_from_slice(extra);
        run_tool(&a)
    };
    let payload = |token: &str| -> Value {
        let p = token.trim().split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    let (code, out, err) = report(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\n') || out.ends_with('\n') && out.trim().lines().count() == 1);
    let s = payload(&out)["credentialSubject"].clone();
    assert!(s["net"].is_object() && s["rocksdb"].is_object());
    assert!(
        !s.to_string().contains("127.0.0.1"),
        "peers are left out: {s}"
    );
    let (_, out, _) = report(&["--include-peers"]);
    assert!(payload(&out).to_string().contains("127.0.0.1:8115"));
    let (_, out, _) = report(&["--include", "net"]);
    let s = payload(&out)["credentialSubject"].clone();
    assert!(s.get("rocksdb").is_none() && s["net"].is_object(), "{s}");

    // Claims: true -> carried; false -> 1 with the measured value; unknown
    // path -> 2; a layer the capture lacks -> 2.
    let (code, out, err) = report(&[
        "--claim",
        "rocksdb.GET.count>=5890",
        "--claim",
        "net.totals.tx_bytes<=10",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        payload(&out)["credentialSubject"]["claims"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (code, out, err) = report(&["--claim", "rocksdb.GET.p99_us<3"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "nothing signed");
    assert!(err.contains("measured rocksdb.GET.p99_us = 3.4"), "{err}");
    let (code, _, err) = report(&["--claim", "rocksdb.SCAN.p99_us<3"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = report(&["--include", "syscall"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = report(&["--claim", "rocksdb.GET.p99_us=3"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_tool(&["report", "--key", &key, "--input", "/nonexistent.jsonl"]);
    assert_eq!(code, 2, "{err}");
}

/// Class totals a report carries, against the workload's own counts: GET
/// and PUT per function list, every class together against every call.
fn assert_exact(subject: &Value, counts: &Counts) {
    let calls = &counts.calls;
    let sum = |names: &[&str]| -> u64 {
        names
            .iter()
            .map(|n| calls.get(*n).copied().unwrap_or(0))
            .sum()
    };
    let ops = subject["rocksdb"].as_object().expect("rocksdb layer");
    assert_eq!(ops["GET"]["count"].as_u64(), Some(sum(GETS)), "{subject}");
    assert_eq!(ops["PUT"]["count"].as_u64(), Some(sum(PUTS)));
    assert_eq!(ops["PUT"]["bytes"].as_u64(), Some(counts.put_bytes));
    assert_eq!(ops["GET"]["bytes"].as_u64(), Some(counts.get_bytes));
    assert_eq!(ops["GET"]["misses"].as_u64(), Some(counts.get_misses));
    let all: u64 = calls.values().sum();
    let reported: u64 = ops.values().filter_map(|o| o["count"].as_u64()).sum();
    assert_eq!(reported, all, "every call of the workload, once");
    assert_eq!(subject["fidelity"]["lost_events"], 0);
}

#[test]
fn report_over_a_real_capture_carries_the_exact_counts() {
    require_bpf();
    let d = tmpdir("real");
    let (key, did) = key_in(&d);
    let mut wl = Workload::start(&["--rounds", "3"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--json",
        "--pid",
        &pid,
        "--ops",
        "all",
        "--value-sizes",
        "--interval",
        "0.5",
    ]);
    tool.wait_rocksdb_attached(wl.pid);
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let cap = d.join("capture.jsonl");
    std::fs::write(&cap, out.join("\n")).unwrap();

    let rep = d.join("report.jwt");
    let exe = workload_bin();
    let (code, _, err) = run_tool(&[
        "report",
        "--key",
        &key,
        "--input",
        cap.to_str().unwrap(),
        "--include",
        "rocksdb",
        "--node-binary",
        exe.to_str().unwrap(),
        "-o",
        rep.to_str().unwrap(),
        "--claim",
        "rocksdb.GET.count>=1",
    ]);
    wl.finish();
    assert_eq!(code, 0, "{err}");
    let (code, v, err) = verify_json(rep.to_str().unwrap(), &["--expect-issuer", &did]);
    assert_eq!(code, 0, "{err}");
    let s = &v["credential"]["credentialSubject"];
    assert_exact(s, &counts);
    assert_eq!(s["node"]["pids"], json!([pid.parse::<u64>().unwrap()]));
    // The binary's digest, computed here independently.
    let sha = Command::new("sha256sum").arg(&exe).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout);
    assert_eq!(
        s["node"]["binary"]["sha256"].as_str(),
        sha.split_whitespace().next()
    );
    assert!(s["node"]["binary"]["build_id"].is_string(), "{s}");
    // PyJWT sees the same counts.
    let (ok, py) = py_verify(&rep);
    assert!(ok, "{py}");
    let pv: Value = serde_json::from_str(&py).unwrap();
    assert_eq!(&pv["credential"]["credentialSubject"], s);
}

/// Live mode: `report --pid` runs the rocksdb capture as a child, SIGINT
/// reaches it through the report, which then signs the exact counts; no
/// BPF program of the child outlives it.
#[test]
fn live_report_forwards_sigint_and_signs_the_exact_counts() {
    require_bpf();
    let d = tmpdir("live");
    let (key, did) = key_in(&d);
    let mut wl = Workload::start(&["--rounds", "3"]);
    let pid = wl.pid.to_string();
    let rep = d.join("live.jwt");
    let mut tool = Tool::start(&[
        "report",
        "--key",
        &key,
        "--pid",
        &pid,
        "--ops",
        "all",
        "--value-sizes",
        "--include",
        "rocksdb",
        "-o",
        rep.to_str().unwrap(),
    ]);
    tool.wait_rocksdb_attached(wl.pid);
    // The child capture's BPF programs, to check they are gone afterwards.
    let children = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        tool.child.id(),
        tool.child.id()
    ))
    .unwrap();
    let progs: Vec<u64> = children
        .split_whitespace()
        .flat_map(|c| progs_held_by(c.parse().unwrap()))
        .collect();
    assert!(
        rdb_progs(&progs) >= 2,
        "the child holds the RocksDB programs"
    );
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, _, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    assert!(progs_left(&progs).is_empty(), "programs left behind");
    let (code, v, err) = verify_json(rep.to_str().unwrap(), &["--expect-issuer", &did]);
    assert_eq!(code, 0, "{err}");
    let s = &v["credential"]["credentialSubject"];
    assert_exact(s, &counts);
    assert!(
        s["node"]["binary"]["sha256"].is_string(),
        "live mode reads /proc/PID/exe"
    );
}
