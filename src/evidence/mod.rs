//! Diagnostic evidence an operator can share and nobody can forge: a
//! did:key identity (Ed25519), reports as W3C Verifiable Credentials 2.0
//! signed as compact JWS (VC-JOSE-COSE), and their verification.
//!
//! API boundaries (README "Signed reports"): the JWS header, the
//! credential's subject layout (claims are paths into it) and the reason
//! classes of `verify`. A signature covers exact bytes: nothing here
//! canonicalises JSON, so what was signed is what is verified.
//!
//! Like model/analyze/render, nothing here touches libbpf or the terminal;
//! `live` only runs this program's own capture subcommands.

pub mod capture;
pub mod claim;
pub mod did_key;
pub mod jws;
pub mod keyfile;
pub mod live;
pub mod vc;
