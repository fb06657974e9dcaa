//! did:key for Ed25519 (W3C CCG did:key method): the DID is the public key
//! itself, so resolving it needs no network and no registry.
//!
//! `did:key:` + multibase base58btc (`z`) of multicodec `ed25519-pub`
//! (varint 0xed, 0x01) followed by the 32 key bytes. The verification method
//! of such a DID is `<did>#<the same multibase string>`.

use std::fmt;

use ed25519_dalek::VerifyingKey;

const PREFIX: &str = "did:key:";
/// The unsigned-varint encoding of multicodec 0xed (ed25519-pub).
const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// Why a string is not a usable Ed25519 did:key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DidError(pub String);

impl fmt::Display for DidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DidError {}

/// The multibase form of a public key (`z6Mk...`): the DID's method-specific
/// id and its key fragment.
pub fn multibase(key: &VerifyingKey) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(&ED25519_PUB);
    bytes.extend_from_slice(key.as_bytes());
    format!("z{}", bs58::encode(bytes).into_string())
}

/// `did:key:z6Mk...` of a public key.
pub fn did(key: &VerifyingKey) -> String {
    format!("{PREFIX}{}", multibase(key))
}

/// The verification method id (JWS `kid`): `<did>#<multibase>`.
pub fn kid(key: &VerifyingKey) -> String {
    format!("{}#{}", did(key), multibase(key))
}

/// Resolves an Ed25519 did:key to its public key. Anything else (another
/// method, another key type, bad base58, a key that is not a curve point)
/// is an error naming what is wrong.
pub fn resolve(did: &str) -> Result<VerifyingKey, DidError> {
    let id = did
        .strip_prefix(PREFIX)
        .ok_or_else(|| DidError(format!("`{did}` is not a did:key")))?;
    let b58 = id.strip_prefix('z').ok_or_else(|| {
        DidError(format!(
            "`{did}`: only base58btc multibase ('z') is defined for did:key"
        ))
    })?;
    let bytes = bs58::decode(b58)
        .into_vec()
        .map_err(|e| DidError(format!("`{did}`: bad base58btc: {e}")))?;
    let key = bytes
        .strip_prefix(&ED25519_PUB)
        .ok_or_else(|| DidError(format!("`{did}`: not an Ed25519 key (multicodec 0xed)")))?;
    let key: [u8; 32] = key.try_into().map_err(|_| {
        DidError(format!(
            "`{did}`: an Ed25519 key is 32 bytes, this one is {}",
            key.len()
        ))
    })?;
    VerifyingKey::from_bytes(&key)
        .map_err(|_| DidError(format!("`{did}`: the key is not a valid Ed25519 point")))
}

/// Resolves a verification method id (`<did>#<fragment>`): the DID's key,
/// provided the fragment is the one did:key defines for it. Returns the DID
/// and the key.
pub fn resolve_kid(kid: &str) -> Result<(String, VerifyingKey), DidError> {
    let (did, fragment) = kid
        .split_once('#')
        .ok_or_else(|| DidError(format!("kid `{kid}` has no #fragment")))?;
    let key = resolve(did)?;
    if fragment != multibase(&key) {
        return Err(DidError(format!(
            "kid `{kid}`: the fragment of a did:key verification method is the key's multibase value"
        )));
    }
    Ok((did.to_string(), key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// The did:key specification's Ed25519 test vector: the key pair from a
    /// seed of 32 zero bytes.
    #[test]
    fn spec_vector_from_the_zero_seed() {
        let sk = SigningKey::from_bytes(&[0u8; 32]);
        let want = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        assert_eq!(did(&sk.verifying_key()), want);
        assert_eq!(resolve(want).unwrap(), sk.verifying_key());
        assert_eq!(
            kid(&sk.verifying_key()),
            format!("{want}#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
        );
    }

    #[test]
    fn round_trips_and_starts_with_z6mk() {
        for seed in [[1u8; 32], [0xab; 32], [0xff; 32]] {
            let vk = SigningKey::from_bytes(&seed).verifying_key();
            let d = did(&vk);
            assert!(d.starts_with("did:key:z6Mk"), "{d}");
            assert_eq!(resolve(&d).unwrap(), vk);
            let (d2, vk2) = resolve_kid(&kid(&vk)).unwrap();
            assert_eq!((d2, vk2), (d, vk));
        }
    }

    #[test]
    fn refuses_what_is_not_an_ed25519_did_key() {
        let good = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        for bad in [
            "did:web:example.com",
            "did:key:f6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "did:key:z0OIl",
            // secp256k1 (multicodec 0xe7) from the did:key spec
            "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo",
        ] {
            assert!(resolve(bad).is_err(), "{bad}");
        }
        assert!(resolve_kid(good).is_err(), "no fragment");
        assert!(resolve_kid(&format!("{good}#key-1")).is_err());
        assert!(resolve_kid(&format!(
            "{good}#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
        ))
        .is_ok());
    }
}
