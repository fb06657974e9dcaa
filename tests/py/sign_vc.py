#!/usr/bin/python3
"""Signs a VC 2.0 as a vc+jwt with PyJWT + cryptography and a fresh Ed25519
key, as any other issuer would. Usage: sign_vc.py [ALG] [ISSUER]; ALG is the
header's alg (default EdDSA), ISSUER overrides the credential's issuer.
Prints {"did", "token"}."""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from didkey import did_from_public

alg = sys.argv[1] if len(sys.argv) > 1 else "EdDSA"
key = Ed25519PrivateKey.generate()
raw = key.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw
)
did = did_from_public(raw)
issuer = sys.argv[2] if len(sys.argv) > 2 else did
vc = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "type": ["VerifiableCredential", "CkbNodeDiagnosticReport"],
    "issuer": issuer,
    "validFrom": "2026-11-29T00:00:00Z",
    "credentialSubject": {
        "period": {"from": "2026-11-28T00:00:00.000Z", "to": "2026-11-29T00:00:00.000Z", "secs": 86400.0},
        "rocksdb": {"GET": {"count": 123, "p99_us": 456.5}},
        "claims": [{"claim": "rocksdb.GET.p99_us<1000", "path": "rocksdb.GET.p99_us",
                    "op": "<", "threshold": 1000.0, "measured": 456.5}],
    },
}
headers = {"kid": f"{did}#{did[len('did:key:'):]}", "typ": "vc+jwt", "cty": "vc"}
if alg == "EdDSA":
    token = jwt.encode(vc, key, algorithm="EdDSA", headers=headers)
else:
    # PyJWT signs only with its own algorithm names; other alg values are
    # written by hand around an Ed25519 signature (a header that lies).
    import base64

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    h = b64(json.dumps({"alg": alg, **headers}).encode())
    p = b64(json.dumps(vc).encode())
    token = f"{h}.{p}." + ("" if alg == "none" else b64(key.sign(f"{h}.{p}".encode())))
print(json.dumps({"did": did, "token": token}))
