//! Loopback TCP workload with exactly known byte counts, for the net layer's
//! tests. It listens on 127.0.0.1 and ::1 (ephemeral ports), prints
//! `READY <pid> <port4> <port6>`, then takes commands on stdin:
//!
//!   connect ADDR:PORT SEND REPLY   open a connection, send a 16-byte header
//!                                  (SEND, REPLY as u64 LE) and SEND bytes,
//!                                  read REPLY bytes, close; print one JSON
//!                                  line {local, remote, sent, received}
//!   bench ADDR:PORT N              N sends of 64 bytes on one connection;
//!                                  print {calls, ns_per_call} (the server
//!                                  drains them)
//!   quit                           exit
//!
//! Its server side reads the header and SEND bytes, writes REPLY bytes, waits
//! for the client's close and closes. So for every connection both ends'
//! byte counts are known exactly: the client sent 16 + SEND and received
//! REPLY; the server the reverse.
//!
//! Only loopback addresses are ever used.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        std::thread::spawn(move || {
            let mut head = [0u8; 16];
            if s.read_exact(&mut head).is_err() {
                return;
            }
            let want = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
            let reply = u64::from_le_bytes(head[8..].try_into().unwrap_or([0; 8]));
            let _ = std::io::copy(&mut (&mut s).take(want), &mut std::io::sink());
            let _ = write_zeros(&mut s, reply);
            // Wait for the client to close first, then close.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
    }
}

fn write_zeros(s: &mut TcpStream, n: u64) -> std::io::Result<()> {
    let buf = [0x5au8; 8192];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..k])?;
        left -= k as u64;
    }
    Ok(())
}

fn connect(addr: SocketAddr, send: u64, reply: u64) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    let local = s.local_addr()?;
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&send.to_le_bytes());
    head[8..].copy_from_slice(&reply.to_le_bytes());
    s.write_all(&head)?;
    write_zeros(&mut s, send)?;
    let got = std::io::copy(&mut (&mut s).take(reply), &mut std::io::sink())?;
    drop(s);
    Ok(format!(
        "{{\"local\":\"{local}\",\"remote\":\"{addr}\",\"sent\":{},\"received\":{got}}}",
        16 + send
    ))
}

fn bench(addr: SocketAddr, n: u64) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&(n * 64).to_le_bytes());
    s.write_all(&head)?;
    let buf = [0x5au8; 64];
    let t = std::time::Instant::now();
    for _ in 0..n {
        s.write_all(&buf)?;
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    Ok(format!("{{\"calls\":{n},\"ns_per_call\":{ns:.1}}}"))
}

fn main() {
    let l4 = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
    let l6 = TcpListener::bind("[::1]:0").expect("binding ::1");
    let (p4, p6) = (
        l4.local_addr().map(|a| a.port()).unwrap_or(0),
        l6.local_addr().map(|a| a.port()).unwrap_or(0),
    );
    std::thread::spawn(move || serve(l4));
    std::thread::spawn(move || serve(l6));
    println!("READY {} {p4} {p6}", std::process::id());
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["connect", addr, send, reply] => {
                let out = match (addr.parse::<SocketAddr>(), send.parse(), reply.parse()) {
                    (Ok(a), Ok(s), Ok(r)) if a.ip().is_loopback() => {
                        connect(a, s, r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                    }
                    _ => "{\"error\":\"usage: connect LOOPBACK_ADDR:PORT SEND REPLY\"}".into(),
                };
                println!("{out}");
                let _ = std::io::stdout().flush();
            }
            ["bench", addr, n] => {
                let out = match (addr.parse::<SocketAddr>(), n.parse()) {
                    (Ok(a), Ok(n)) if a.ip().is_loopback() && n > 0 => {
                        bench(a, n).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                    }
                    _ => "{\"error\":\"usage: bench LOOPBACK_ADDR:PORT N\"}".into(),
                };
                println!("{out}");
                let _ = std::io::stdout().flush();
            }
            ["quit"] => break,
            _ => {
                println!("{{\"error\":\"unknown command\"}}");
                let _ = std::io::stdout().flush();
            }
        }
    }
}
