"""Keyed hashing: the one way identifiers become pseudonymous ids (pure: hashlib and hmac)."""

from __future__ import annotations

import hashlib
import hmac

ID_HEX_CHARS = 32  # 128 bits: collision-free in practice, and not the whole digest


def keyed_hash(key: bytes, *parts: str) -> str:
    # Length-prefixed parts: ("a", "b") and ("a\0b",) must never hash alike.
    text = "".join(f"{len(part)}:{part}" for part in parts)
    # surrogatepass: a client id with an unpaired surrogate still hashes (the event is
    # then rejected by validation) instead of crashing the request.
    message = text.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:ID_HEX_CHARS]
