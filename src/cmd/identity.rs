//! `identity generate|show`: the operator's did:key (wiring only; the key
//! file rules live in evidence::keyfile).

use std::path::PathBuf;

use anyhow::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::error::Exit;
use crate::evidence::{did_key, keyfile};

#[derive(Args, Debug)]
pub struct IdentityArgs {
    #[command(subcommand)]
    pub cmd: IdentityCmd,
}

#[derive(Subcommand, Debug)]
pub enum IdentityCmd {
    /// Create an Ed25519 key pair; print its did:key. The private key file
    /// is created mode 0600 and never overwritten without --force.
    Generate {
        /// The private key file [default: /etc/ckb-libbpf/identity.key for
        /// root, else $XDG_CONFIG_HOME or ~/.config /ckb-libbpf/identity.key].
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        /// Replace an existing key (its DID is lost for good).
        #[arg(long)]
        force: bool,
    },
    /// Print the did:key of the key file again.
    Show {
        /// The private key file (default as for `generate`).
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        /// DID, kid, multibase key and public JWK as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `--key`, or the default location.
pub fn key_path(key: Option<PathBuf>) -> Result<PathBuf> {
    match key {
        Some(k) => Ok(k),
        None => keyfile::default_path(),
    }
}

pub fn run(args: IdentityArgs) -> Result<Exit> {
    match args.cmd {
        IdentityCmd::Generate { key, force } => {
            let path = key_path(key)?;
            let sk = keyfile::generate()?;
            keyfile::write(&path, &sk, force)?;
            crate::error::note(format!(
                "private key written to {} (mode 0600)",
                path.display()
            ));
            println!("{}", did_key::did(&sk.verifying_key()));
        }
        IdentityCmd::Show { key, json } => {
            let path = key_path(key)?;
            let vk = keyfile::read(&path)?.verifying_key();
            if json {
                let v = json!({
                    "did": did_key::did(&vk),
                    "kid": did_key::kid(&vk),
                    "public_key_multibase": did_key::multibase(&vk),
                    "public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(vk.as_bytes())},
                    "key_file": path,
                });
                println!("{v}");
            } else {
                println!("{}", did_key::did(&vk));
            }
        }
    }
    Ok(Exit::Ok)
}
