//! The node's own view for the overview header, from its JSON-RPC when it
//! answers: `get_overview` (CKB 0.205+: peers, tx pool, CPU, memory,
//! version) plus `get_tip_block_number`; on older nodes
//! `get_blockchain_info`, `get_peers` and `tx_pool_info`. Plain HTTP over
//! a std `TcpStream` with short timeouts, on its own thread: the capture
//! never waits for it and never needs it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// Connect, read and write timeouts: a node that takes longer is shown as
/// unavailable rather than holding the header back.
const TIMEOUT: Duration = Duration::from_millis(800);
/// Larger answers are not ours to read (get_peers of a big node is far
/// smaller).
const MAX_BODY: usize = 4 << 20;

/// What the header shows about the node.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum NodeStatus {
    /// Not asked yet.
    #[default]
    Unknown,
    /// The RPC did not answer: why.
    Unavailable(String),
    Up(NodeInfo),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    /// Which methods answered.
    pub source: &'static str,
    pub version: Option<String>,
    pub chain: Option<String>,
    pub tip: Option<u64>,
    pub peers: Option<u64>,
    pub outbound: Option<u64>,
    pub inbound: Option<u64>,
    pub pending: Option<u64>,
    pub proposed: Option<u64>,
    pub orphan: Option<u64>,
    /// The node's CPU use in % of one core.
    pub cpu_pct: Option<f64>,
    /// Resident memory in bytes.
    pub memory: Option<u64>,
    /// Initial block download still running.
    pub ibd: Option<bool>,
}

/// A CKB number: the RPC writes `Uint64` as "0x..." strings and plain
/// Rust integers and floats (`SysInfo`) as JSON numbers.
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok().map(|n| n as f64),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

fn int(v: &Value) -> Option<u64> {
    num(v).filter(|n| *n >= 0.0).map(|n| n as u64)
}

/// The header's figures from a `get_overview` result.
pub fn from_overview(o: &Value, tip: Option<u64>) -> NodeInfo {
    let net = &o["network"];
    NodeInfo {
        source: "get_overview",
        version: o["version"].as_str().map(str::to_string),
        chain: None,
        tip,
        peers: int(&net["connected_peers"])
            .or_else(|| net["peers"].as_array().map(|p| p.len() as u64)),
        outbound: int(&net["outbound_peers"]),
        inbound: int(&net["inbound_peers"]),
        pending: int(&o["pool"]["pending"]),
        proposed: int(&o["pool"]["proposed"]),
        orphan: int(&o["pool"]["orphan"]),
        cpu_pct: num(&o["sys"]["cpu_usage"]),
        memory: int(&o["sys"]["memory"]),
        ibd: None,
    }
}

/// The header's figures from the methods older nodes have.
pub fn from_legacy(chain: Option<&Value>, peers: Option<&Value>, pool: Option<&Value>) -> NodeInfo {
    let peers = peers.and_then(Value::as_array);
    let outbound = peers.map(|p| {
        p.iter()
            .filter(|x| x["is_outbound"].as_bool() == Some(true))
            .count() as u64
    });
    NodeInfo {
        source: "get_blockchain_info/get_peers/tx_pool_info",
        version: None,
        chain: chain.and_then(|c| c["chain"].as_str()).map(str::to_string),
        tip: pool.and_then(|p| int(&p["tip_number"])),
        peers: peers.map(|p| p.len() as u64),
        outbound,
        inbound: peers.zip(outbound).map(|(p, o)| p.len() as u64 - o),
        pending: pool.and_then(|p| int(&p["pending"])),
        proposed: pool.and_then(|p| int(&p["proposed"])),
        orphan: pool.and_then(|p| int(&p["orphan"])),
        cpu_pct: None,
        memory: None,
        ibd: chain.and_then(|c| c["is_initial_block_download"].as_bool()),
    }
}

/// A JSON-RPC client for one `http://host:port/path` URL.
pub struct Client {
    host: String,
    addr: String,
    path: String,
    id: u64,
}

/// A JSON-RPC error object (the method exists or not, the node said no).
#[derive(Debug)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RPC error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

/// JSON-RPC "method not found": an older node without `get_overview`.
const METHOD_NOT_FOUND: i64 = -32601;

impl Client {
    pub fn new(url: &str) -> Result<Client> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            anyhow!("`{url}`: only plain http:// RPC URLs are supported (CKB's RPC is plain HTTP)")
        })?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if hostport.is_empty() {
            bail!("`{url}`: no host");
        }
        let addr = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !hostport.ends_with(']')
        {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        Ok(Client {
            host: hostport.to_string(),
            addr,
            path: path.to_string(),
            id: 0,
        })
    }

    /// One call; the `result`, or why not.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.id += 1;
        let body = json!({"id": self.id, "jsonrpc": "2.0", "method": method, "params": params})
            .to_string();
        let addr = self
            .addr
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.addr))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", self.addr))?;
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
            .with_context(|| format!("connecting to {addr}"))?;
        s.set_read_timeout(Some(TIMEOUT))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.path,
            self.host,
            body.len(),
            body
        );
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.take(MAX_BODY as u64 + 65536)
            .read_to_end(&mut raw)
            .with_context(|| format!("reading the answer to {method}"))?;
        let body = http_body(&raw).with_context(|| format!("the answer to {method}"))?;
        let v: Value = serde_json::from_slice(&body)
            .with_context(|| format!("the answer to {method} is not JSON"))?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError {
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or("").to_string(),
            }
            .into());
        }
        v.get("result")
            .cloned()
            .ok_or_else(|| anyhow!("the answer to {method} has no result"))
    }

    /// The node's status by the newest methods it has.
    pub fn status(&mut self) -> NodeStatus {
        match self.call("get_overview", json!([])) {
            Ok(o) => {
                let tip = self
                    .call("get_tip_block_number", json!([]))
                    .ok()
                    .and_then(|t| int(&t));
                NodeStatus::Up(from_overview(&o, tip))
            }
            Err(e)
                if e.downcast_ref::<RpcError>()
                    .is_some_and(|r| r.code == METHOD_NOT_FOUND) =>
            {
                let chain = self.call("get_blockchain_info", json!([])).ok();
                let peers = self.call("get_peers", json!([])).ok();
                let pool = self.call("tx_pool_info", json!([])).ok();
                if chain.is_none() && peers.is_none() && pool.is_none() {
                    return NodeStatus::Unavailable("no known status method answered".into());
                }
                NodeStatus::Up(from_legacy(chain.as_ref(), peers.as_ref(), pool.as_ref()))
            }
            // The innermost cause ("Connection refused") says it all in
            // one header line.
            Err(e) => NodeStatus::Unavailable(e.root_cause().to_string()),
        }
    }
}

/// The body of an HTTP/1.x response with status 200 (plain, or chunked).
fn http_body(raw: &[u8]) -> Result<Vec<u8>> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if status != "200" {
        bail!("HTTP status {status}");
    }
    let body = &raw[end + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let nl = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunk"))?;
        let size_text = String::from_utf8_lossy(&rest[..nl]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| anyhow!("bad chunk size {size_text:?}"))?;
        rest = &rest[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size || out.len() + size > MAX_BODY {
            bail!("truncated or oversized chunked body");
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A fake CKB JSON-RPC server on 127.0.0.1: answers each method with
    /// the canned result (or "method not found"); serves `requests`
    /// requests, then stops. Returns its URL.
    pub fn fake_node(answers: Vec<(&'static str, Value)>, chunked: bool) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for s in l.incoming().take(64) {
                let Ok(mut s) = s else { return };
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let req: Value = serde_json::from_slice(&body).unwrap();
                let m = req["method"].as_str().unwrap();
                let answer = match answers.iter().find(|(k, _)| *k == m) {
                    Some((_, v)) => json!({"jsonrpc": "2.0", "id": req["id"], "result": v}),
                    None => json!({"jsonrpc": "2.0", "id": req["id"],
                                   "error": {"code": -32601, "message": "Method not found"}}),
                };
                let text = answer.to_string();
                let resp = if chunked {
                    let (a, b) = text.split_at(text.len() / 2);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                        a.len(),
                        b.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    )
                };
                let _ = s.write_all(resp.as_bytes());
            }
        });
        url
    }

    /// A get_overview result as CKB 0.205 writes it: `Uint64` fields as
    /// hex strings, `SysInfo` fields as JSON numbers. With `hex: false`,
    /// every count as a plain number (the other encoding a client meets).
    pub fn overview(hex: bool) -> Value {
        let n = |v: u64| {
            if hex {
                json!(format!("{v:#x}"))
            } else {
                json!(v)
            }
        };
        json!({
            "sys": {"global": {"total_memory": 25_000_000_000u64, "used_memory": 1, "global_cpu_usage": 3.5,
                               "disks": [], "networks": []},
                    "cpu_usage": 12.5, "disk_usage": {"total_written_bytes": 0, "written_bytes": 0,
                                                      "total_read_bytes": 0, "read_bytes": 0},
                    "memory": 1_288_490_189u64, "virtual_memory": 9_000_000_000u64},
            "mining": {"difficulty": "0x100", "hash_rate": "0x10"},
            "pool": {"pending": n(3), "proposed": n(1), "orphan": n(0), "committing": n(0),
                     "total_recent_reject_num": n(0), "total_tx_size": n(0), "total_tx_cycles": n(0),
                     "max_tx_pool_size": n(180_000_000), "last_txs_updated_at": n(0)},
            "cells": {"estimate_live_cells_num": n(100), "total_occupied_capacities": n(1000)},
            "network": {"connected_peers": n(8), "outbound_peers": n(6), "inbound_peers": n(2),
                        "peers": []},
            "version": "0.205.0 (abcdef1 2026-01-01)"
        })
    }

    pub fn want_overview() -> NodeInfo {
        NodeInfo {
            source: "get_overview",
            version: Some("0.205.0 (abcdef1 2026-01-01)".into()),
            tip: Some(0x1e240),
            peers: Some(8),
            outbound: Some(6),
            inbound: Some(2),
            pending: Some(3),
            proposed: Some(1),
            orphan: Some(0),
            cpu_pct: Some(12.5),
            memory: Some(1_288_490_189),
            ..NodeInfo::default()
        }
    }

    #[test]
    fn numbers_in_both_encodings() {
        assert_eq!(num(&json!("0x1f")), Some(31.0));
        assert_eq!(num(&json!("31")), Some(31.0));
        assert_eq!(num(&json!(31)), Some(31.0));
        assert_eq!(num(&json!(12.5)), Some(12.5));
        assert_eq!(num(&json!("0xzz")), None);
        assert_eq!(num(&json!(null)), None);
    }

    #[test]
    fn get_overview_in_both_encodings_over_http() {
        for (hex, chunked) in [(true, false), (false, true)] {
            let url = fake_node(
                vec![
                    ("get_overview", overview(hex)),
                    ("get_tip_block_number", json!("0x1e240")),
                ],
                chunked,
            );
            let got = Client::new(&url).unwrap().status();
            assert_eq!(got, NodeStatus::Up(want_overview()), "hex={hex}");
        }
    }

    #[test]
    fn older_nodes_fall_back_to_three_methods() {
        let url = fake_node(
            vec![
                (
                    "get_blockchain_info",
                    json!({"chain": "ckb_testnet", "is_initial_block_download": true}),
                ),
                (
                    "get_peers",
                    json!([{"is_outbound": true}, {"is_outbound": false}, {"is_outbound": true}]),
                ),
                (
                    "tx_pool_info",
                    json!({"tip_number": "0x400", "pending": "0x2", "proposed": "0x0", "orphan": "0x1"}),
                ),
            ],
            false,
        );
        let NodeStatus::Up(n) = Client::new(&url).unwrap().status() else {
            panic!("legacy node not read")
        };
        assert_eq!(n.source, "get_blockchain_info/get_peers/tx_pool_info");
        assert_eq!(
            (n.tip, n.peers, n.outbound, n.inbound),
            (Some(1024), Some(3), Some(2), Some(1))
        );
        assert_eq!(
            (n.pending, n.proposed, n.orphan),
            (Some(2), Some(0), Some(1))
        );
        assert_eq!(
            (n.chain.as_deref(), n.ibd),
            (Some("ckb_testnet"), Some(true))
        );
    }

    #[test]
    fn nobody_listening_is_unavailable_quickly() {
        // Bind then drop: the port is (almost certainly) closed now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = std::time::Instant::now();
        let s = Client::new(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .status();
        assert!(
            matches!(s, NodeStatus::Unavailable(ref w) if w.contains("refused")),
            "{s:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(Client::new("https://node:8114").is_err());
    }
}
