#!/usr/bin/python3
"""Verifies a vc+jwt made by `ckb-libbpf report` with PyJWT + cryptography:
the key comes from the did:key in the header's kid, nothing from our code.
Prints {"issuer", "kid", "credential"} and exits 0, or the error and 1."""
import json
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from didkey import public_from_did

token = open(sys.argv[1]).read().strip()
try:
    header = jwt.get_unverified_header(token)
    did, _, fragment = header["kid"].partition("#")
    if fragment != did[len("did:key:"):]:
        raise ValueError("kid fragment is not the did:key's key")
    key = Ed25519PublicKey.from_public_bytes(public_from_did(did))
    vc = jwt.decode(token, key, algorithms=["EdDSA"])
    if vc["issuer"] != did:
        raise ValueError(f"issuer {vc['issuer']} is not the signer {did}")
except Exception as e:  # every failure is a verdict, not a crash
    print(f"INVALID: {type(e).__name__}: {e}")
    sys.exit(1)
print(json.dumps({"issuer": did, "kid": header["kid"], "header": header, "credential": vc}))
