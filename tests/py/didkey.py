"""did:key <-> Ed25519 public key, written independently of the Rust code
(W3C CCG did:key: multibase 'z' base58btc of multicodec 0xed 0x01 + key)."""

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = ALPHABET[r] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


def b58decode(s: str) -> bytes:
    n = 0
    for c in s:
        n = n * 58 + ALPHABET.index(c)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    zeros = len(s) - len(s.lstrip("1"))
    return b"\0" * zeros + body


def did_from_public(raw: bytes) -> str:
    return "did:key:z" + b58encode(b"\xed\x01" + raw)


def public_from_did(did: str) -> bytes:
    if not did.startswith("did:key:z"):
        raise ValueError(f"not a base58btc did:key: {did}")
    data = b58decode(did[len("did:key:z"):])
    if data[:2] != b"\xed\x01" or len(data) != 34:
        raise ValueError(f"not an Ed25519 did:key: {did}")
    return data[2:]
