"""Password hashes for the dashboard: scrypt from the standard library, compared in constant time.

A hash reads ``scrypt$<n>$<r>$<p>$<salt, base64>$<digest, base64>``; only the hash is stored in
the configuration, never the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

_PREFIX = "scrypt"
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


@dataclass(frozen=True)
class _Parsed:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash ``password`` with scrypt and a random 16-byte salt.

    Raises:
        ValueError: the password is empty.
    """
    if not password:
        raise ValueError("the password is empty")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"{_PREFIX}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def parse_hash(encoded: str) -> _Parsed:
    """Split a stored hash into its parameters.

    Raises:
        ValueError: it is not a hash this module wrote, saying what was expected.
    """
    parts = encoded.split("$")
    try:
        if len(parts) != 6 or parts[0] != _PREFIX:
            raise ValueError
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
        if n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or not digest:
            raise ValueError
    except ValueError:
        raise ValueError(
            "not a wattledger password hash (expected scrypt$N$r$p$salt$digest; "
            "create one with `wattledger dashboard hash-password`)"
        ) from None
    return _Parsed(n, r, p, salt, digest)


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the stored hash ``encoded`` (constant-time compare)."""
    h = parse_hash(encoded)
    digest = hashlib.scrypt(
        password.encode(), salt=h.salt, n=h.n, r=h.r, p=h.p, dklen=len(h.digest), maxmem=2**27
    )
    return hmac.compare_digest(digest, h.digest)
