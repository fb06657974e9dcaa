//! Compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037), as
//! VC-JOSE-COSE secures a credential: header `alg: EdDSA`, `typ: vc+jwt`,
//! `cty: vc`, `kid: <did>#<fragment>`; the payload is the credential's JSON
//! bytes exactly as signed. Nothing is canonicalised: the signature covers
//! `BASE64URL(header) "." BASE64URL(payload)` as transmitted.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::Deserialize;
use serde_json::json;

use super::did_key;

/// Media type of a credential secured as a JWS (VC-JOSE-COSE).
pub const TYP: &str = "vc+jwt";
/// The content type: the payload is a credential.
pub const CTY: &str = "vc";

/// Why a token is not valid. The classes are an API (`verify --json`,
/// README): change them deliberately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Not a compact JWS of a credential: parts, base64url, JSON, fields.
    Malformed,
    /// The signature does not verify with the key of `kid`.
    BadSignature,
    /// `alg` is not EdDSA/Ed25519 (`none` included).
    Algorithm,
    /// The credential's `issuer` is not the DID that signed it.
    IssuerMismatch,
    /// Valid, but signed by another DID than `--expect-issuer`.
    UnexpectedIssuer,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::Algorithm => "algorithm",
            Reason::IssuerMismatch => "issuer_mismatch",
            Reason::UnexpectedIssuer => "unexpected_issuer",
        }
    }
}

/// A token that failed verification: the class and what exactly was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: Reason,
    pub detail: String,
}

impl Invalid {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.name(), self.detail)
    }
}

impl std::error::Error for Invalid {}

/// The protected header fields this verifier reads. A typed struct, so a
/// header naming a member twice is rejected (RFC 7515 §4) instead of one
/// of the two values silently winning.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A signature that verified: who signed, and the payload's bytes.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The DID of `kid`, whose key verified the signature.
    pub did: String,
    pub kid: String,
    pub alg: String,
    pub payload: Vec<u8>,
}

/// Signs `payload` as a compact JWS with the header VC-JOSE-COSE asks for.
pub fn sign(key: &SigningKey, payload: &[u8]) -> String {
    let header = json!({
        "alg": "EdDSA",
        "typ": TYP,
        "cty": CTY,
        "kid": did_key::kid(&key.verifying_key()),
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, Invalid> {
    // The engine rejects padding and non-zero trailing bits, so every
    // character of a token matters: no two spellings decode alike.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| Invalid::new(Reason::Malformed, format!("{what} is not base64url: {e}")))
}

/// Checks a compact JWS: its shape, its algorithm, its `kid` (an Ed25519
/// did:key) and its signature. The payload is returned unparsed: the
/// caller decides what it must contain.
pub fn verify(token: &str) -> Result<Signed, Invalid> {
    let token = token.trim_end_matches(['\n', '\r']);
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(Invalid::new(
            Reason::Malformed,
            format!(
                "a compact JWS has 3 dot-separated parts, this has {}",
                parts.len()
            ),
        ));
    };
    let header: Header = serde_json::from_slice(&b64(h, "the header")?).map_err(|e| {
        Invalid::new(
            Reason::Malformed,
            format!("the header is not a JOSE header: {e}"),
        )
    })?;
    // RFC 8037 names the algorithm EdDSA; some implementations wrote the
    // curve instead. Anything else, `none` first of all, is refused before
    // any key is looked at.
    if header.alg != "EdDSA" && header.alg != "Ed25519" {
        return Err(Invalid::new(
            Reason::Algorithm,
            format!(
                "alg `{}` is not accepted (EdDSA or Ed25519 only)",
                header.alg
            ),
        ));
    }
    if header.crit.is_some() {
        return Err(Invalid::new(
            Reason::Malformed,
            "the header has `crit` extensions this verifier does not implement",
        ));
    }
    if let Some(typ) = &header.typ {
        let t = typ.to_ascii_lowercase();
        if t != TYP && t != format!("application/{TYP}") {
            return Err(Invalid::new(
                Reason::Malformed,
                format!("typ `{typ}` is not {TYP}"),
            ));
        }
    }
    let kid = header
        .kid
        .ok_or_else(|| Invalid::new(Reason::Malformed, "the header has no kid"))?;
    let (did, key) =
        did_key::resolve_kid(&kid).map_err(|e| Invalid::new(Reason::Malformed, e.0))?;
    let sig = b64(s, "the signature")?;
    let sig = Signature::from_slice(&sig).map_err(|_| {
        Invalid::new(
            Reason::Malformed,
            format!(
                "an Ed25519 signature is 64 bytes, this one is {}",
                sig.len()
            ),
        )
    })?;
    let input_len = h.len() + 1 + p.len();
    key.verify_strict(&token.as_bytes()[..input_len], &sig)
        .map_err(|_| {
            Invalid::new(
                Reason::BadSignature,
                format!("the signature does not verify with the key of {did}"),
            )
        })?;
    let payload = b64(p, "the payload")?;
    Ok(Signed {
        did,
        kid,
        alg: header.alg,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn forge(header: serde_json::Value, payload: &[u8], k: &SigningKey) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = k.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    #[test]
    fn signs_and_verifies_with_the_documented_header() {
        let k = key(7);
        let t = sign(&k, br#"{"a":1}"#);
        let h: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(h["alg"], "EdDSA");
        assert_eq!(h["typ"], "vc+jwt");
        assert_eq!(h["cty"], "vc");
        assert_eq!(h["kid"], did_key::kid(&k.verifying_key()));
        let s = verify(&t).unwrap();
        assert_eq!(s.did, did_key::did(&k.verifying_key()));
        assert_eq!(s.payload, br#"{"a":1}"#);
        // A trailing newline (a file written by `report`) is not a change.
        assert!(verify(&format!("{t}\n")).is_ok());
    }

    /// Every character of the token, replaced by any other base64url
    /// character, makes it invalid: no edit of header, payload or
    /// signature survives, including ones that only touch padding bits.
    #[test]
    fn any_single_character_changed_fails() {
        let k = key(9);
        let t = sign(&k, br#"{"issuer":"x","n":12345}"#);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..t.len() {
            if t.as_bytes()[i] == b'.' {
                continue;
            }
            for &c in alphabet.iter().step_by(7).chain([b'A', b'_'].iter()) {
                if c == t.as_bytes()[i] {
                    continue;
                }
                let mut b = t.clone().into_bytes();
                b[i] = c;
                let bad = String::from_utf8(b).unwrap();
                assert!(verify(&bad).is_err(), "position {i} -> {}", c as char);
            }
        }
    }

    /// Every decoded byte of each part, flipped and re-encoded.
    #[test]
    fn any_single_decoded_byte_changed_fails() {
        let k = key(3);
        let t = sign(&k, br#"{"issuer":"x"}"#);
        let parts: Vec<Vec<u8>> = t
            .split('.')
            .map(|p| URL_SAFE_NO_PAD.decode(p).unwrap())
            .collect();
        for which in 0..3 {
            for i in 0..parts[which].len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut ps = parts.clone();
                    ps[which][i] ^= flip;
                    let bad: Vec<String> = ps.iter().map(|p| URL_SAFE_NO_PAD.encode(p)).collect();
                    assert!(verify(&bad.join(".")).is_err(), "part {which} byte {i}");
                }
            }
        }
    }

    #[test]
    fn refuses_alg_none_and_other_algorithms() {
        let k = key(1);
        let kid = did_key::kid(&k.verifying_key());
        let body = URL_SAFE_NO_PAD.encode(br#"{"a":1}"#);
        for alg in ["none", "None", "HS256", "ES256", "RS256", ""] {
            let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid}).to_string());
            for sig in ["", "AAAA"] {
                let e = verify(&format!("{h}.{body}.{sig}")).unwrap_err();
                assert_eq!(e.reason, Reason::Algorithm, "{alg}: {e}");
            }
        }
        // The curve name some libraries wrote as alg is accepted.
        let t = forge(json!({"alg": "Ed25519", "kid": kid}), b"{}", &k);
        assert!(verify(&t).is_ok());
    }

    #[test]
    fn a_kid_of_another_did_fails() {
        let (k, other) = (key(1), key(2));
        let t = sign(&k, b"{}");
        // The same token with the header naming someone else's key.
        let h = json!({"alg": "EdDSA", "typ": "vc+jwt", "cty": "vc",
                       "kid": did_key::kid(&other.verifying_key())});
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(h.to_string());
        let e = verify(&parts.join(".")).unwrap_err();
        assert_eq!(e.reason, Reason::BadSignature, "{e}");
        // A kid whose fragment is not the did:key's own.
        let d = did_key::did(&k.verifying_key());
        let t = forge(
            json!({"alg": "EdDSA", "kid": format!("{d}#key-1")}),
            b"{}",
            &k,
        );
        assert_eq!(verify(&t).unwrap_err().reason, Reason::Malformed);
    }

    #[test]
    fn malformed_shapes() {
        let k = key(1);
        let kid = did_key::kid(&k.verifying_key());
        let cases = [
            "".to_string(),
            "a.b".to_string(),
            "a.b.c.d".to_string(),
            "!!.b.c".to_string(),
            forge(json!({"alg": "EdDSA"}), b"{}", &k),
            forge(json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"}), b"{}", &k),
            forge(
                json!({"alg": "EdDSA", "kid": kid, "crit": ["exp"]}),
                b"{}",
                &k,
            ),
        ];
        for c in &cases {
            assert_eq!(verify(c).unwrap_err().reason, Reason::Malformed, "{c}");
        }
        // A header naming alg twice.
        let h = format!(r#"{{"alg":"none","alg":"EdDSA","kid":"{kid}"}}"#);
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h),
            URL_SAFE_NO_PAD.encode("{}")
        );
        let t = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(k.sign(input.as_bytes()).to_bytes())
        );
        assert_eq!(verify(&t).unwrap_err().reason, Reason::Malformed);
    }
}
