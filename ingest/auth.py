"""API keys: created once, stored as a salted scrypt hash, checked in constant time.

A key looks like ``wlk_<key id>_<secret>``: the 12-hex-digit key id is public (it finds the
row, and ``keys list`` shows it); the secret is 256 random bits. Only
``scrypt$N$r$p$salt$hash`` of the whole key is stored. Verification is slow on purpose, so the
receiver remembers each verified (or refused) key for ``[ingest] auth_cache_ttl_s`` seconds and
then reads the row again: a revocation takes effect within that time. The cache is keyed by
the SHA-256 of the key, so the process never keeps keys it was sent, and the only comparison
of secret material, scrypt digest against stored digest, is :func:`hmac.compare_digest`.
See docs/security.md.

Exception tree::

    AuthError            missing, malformed, unknown, wrong or revoked key (HTTP 401)
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.models import ApiKey, utcnow

logger = logging.getLogger(__name__)

PREFIX = "wlk"
_KEY = re.compile(r"^wlk_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$")
# scrypt cost: ~16 MiB and tens of milliseconds per check; results are cached.
_N, _R, _P = 2**14, 8, 1
_NEGATIVE_CACHE_MAX = 10_000


class AuthError(Exception):
    """The request's key is missing, malformed, unknown, wrong or revoked (HTTP 401)."""


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is shown once and never stored."""

    key: str
    key_id: str
    tenant: str
    label: str | None
    created_at: dt.datetime


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant name.

    Raises:
        ValueError: not 1..100 characters of letters, digits, ``.``, ``_`` or ``-``.
    """
    if not _TENANT.match(tenant):
        raise ValueError(
            f"tenant {tenant!r} is not valid: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def hash_key(key: str, salt: bytes | None = None) -> str:
    """The stored form of ``key``: ``scrypt$N$r$p$<salt>$<hash>`` (base64)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_key(key: str, stored: str) -> bool:
    """True when ``key`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            key.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def parse_key(key: str) -> str:
    """The key id of a well-formed key.

    Raises:
        AuthError: the key is not in the ``wlk_<id>_<secret>`` format.
    """
    m = _KEY.match(key)
    if not m:
        raise AuthError("the API key is malformed")
    return m.group(1)


def create_key(engine: Engine, tenant: str, label: str | None = None) -> NewKey:
    """Create a key for ``tenant`` and store its hash.

    Raises:
        ValueError: the tenant name is invalid.
    """
    validate_tenant(tenant)
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ApiKey).values(
                key_id=key_id,
                key_hash=hash_key(key),
                tenant=tenant,
                label=label,
                created_at=now,
            )
        )
    return NewKey(key, key_id, tenant, label, now)


_PUBLIC = ("key_id", "tenant", "label", "created_at", "revoked_at", "last_used_at")


def list_keys(engine: Engine, tenant: str | None = None) -> list[dict[str, object]]:
    """Every key's public fields (never the hash), oldest first; only ``tenant``'s if given."""
    t = ApiKey.__table__
    stmt = sa.select(*(t.c[c] for c in _PUBLIC)).order_by(t.c.created_at, t.c.key_id)
    if tenant:
        stmt = stmt.where(t.c.tenant == tenant)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def revoke_key(engine: Engine, key_or_id: str) -> dict[str, object] | None:
    """Revoke a key by id (or by the whole key); its public fields, or None when unknown.

    Revoking twice keeps the first revocation time.
    """
    key_id = parse_key(key_or_id) if key_or_id.startswith(f"{PREFIX}_") else key_or_id
    t = ApiKey.__table__
    with engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.key_id == key_id, t.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        row = conn.execute(
            sa.select(*(t.c[c] for c in _PUBLIC)).where(t.c.key_id == key_id)
        ).first()
    return dict(row._mapping) if row else None


_REFUSED = "the API key is unknown, wrong or revoked"


@functools.cache
def _decoy_hash() -> str:
    """A stored-form hash of no key, checked against when a key id is unknown or revoked."""
    return hash_key(secrets.token_urlsafe(32))


def _cache_id(key: str) -> bytes:
    """What the verifier's cache is keyed by: a digest, never the key itself."""
    return hashlib.sha256(key.encode()).digest()


#: Seconds past the TTL that a key verified before is still accepted while it is checked again
#: in the background: a revocation takes effect within the TTL when the warehouse answers
#: promptly, and within TTL + this when it does not.
STALE_GRACE_S = 300.0


@dataclass
class _Entry:
    tenant: str | None  # None: refused
    key_hash: str | None
    checked_at: float


class KeyVerifier:
    """Key → tenant, cached for ``ttl_s`` seconds; thread-safe.

    Args:
        engine: Where ``api_keys`` lives.
        ttl_s: How long a result is trusted before the row is read again.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self, engine: Engine, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[bytes, _Entry] = {}
        self._inflight: dict[bytes, threading.Lock] = {}
        self._lock = threading.Lock()
        self._touching: set[str] = set()
        self._refreshing: set[bytes] = set()
        self._background: set[threading.Thread] = set()

    def cached(self, key: str) -> str | None:
        """The tenant for ``key`` if a fresh positive result is cached (no I/O).

        Raises:
            AuthError: a fresh negative result is cached.
        """
        with self._lock:
            e = self._cache.get(_cache_id(key))
        if e is None or self._clock() - e.checked_at > self._ttl_s:
            return None
        if e.tenant is None:
            raise AuthError(_REFUSED)
        return e.tenant

    def stale(self, key: str) -> str | None:
        """The tenant of a positive result older than the TTL but younger than the TTL plus
        :data:`STALE_GRACE_S`, else None. No I/O.

        The receiver answers with it while :meth:`refresh_later` reads the row again, so a slow
        warehouse (e.g. DuckDB writing a checkpoint) never holds requests with known keys.
        """
        with self._lock:
            e = self._cache.get(_cache_id(key))
        if e is None or e.tenant is None:
            return None
        return e.tenant if self._clock() - e.checked_at <= self._ttl_s + STALE_GRACE_S else None

    def refresh_later(self, key: str) -> None:
        """Verify ``key`` again in the background (one refresh per key at a time)."""
        cache_id = _cache_id(key)
        with self._lock:
            if cache_id in self._refreshing:
                return
            self._refreshing.add(cache_id)

        def run() -> None:
            try:
                self.verify(key)
            except Exception as e:  # noqa: BLE001 - a refused key is cached as refused
                logger.debug("background key check: %s", type(e).__name__)
            finally:
                with self._lock:
                    self._refreshing.discard(cache_id)

        self._start(run, "wattledger-key-refresh")

    def verify(self, key: str) -> str:
        """The tenant of ``key``, reading the database when the cache is stale. Blocking.

        Raises:
            AuthError: the key is malformed, unknown, wrong or revoked.
            sqlalchemy.exc.SQLAlchemyError: the database is unreachable.
        """
        tenant = self.cached(key)
        if tenant is not None:
            return tenant
        key_id = parse_key(key)
        with self._lock:
            if len(self._inflight) > _NEGATIVE_CACHE_MAX:
                self._inflight.clear()
            single = self._inflight.setdefault(_cache_id(key), threading.Lock())
        # One check per key at a time: concurrent requests with a new key wait for the first
        # check instead of each paying for scrypt.
        with single:
            tenant = self.cached(key)
            return tenant if tenant is not None else self._check(key, key_id)

    def _check(self, key: str, key_id: str) -> str:
        t = ApiKey.__table__
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.key_hash, t.c.tenant, t.c.revoked_at).where(t.c.key_id == key_id)
            ).first()
        with self._lock:
            old = self._cache.get(_cache_id(key))
        if row is None or row.revoked_at is not None:
            # Pay for scrypt as a wrong secret would, and say the same: neither the answer nor
            # its time tells whether a key id exists.
            verify_key(key, _decoy_hash())
            self._remember(key, None, None)
            raise AuthError(_REFUSED)
        # The hash is unchanged since we last verified it: no need to pay scrypt again.
        ok = (
            old is not None
            and old.tenant is not None
            and old.key_hash is not None
            and hmac.compare_digest(old.key_hash.encode(), str(row.key_hash).encode())
        ) or verify_key(key, row.key_hash)
        if not ok:
            self._remember(key, None, None)
            raise AuthError(_REFUSED)
        self._remember(key, row.tenant, row.key_hash)
        self._touch_later(key_id)
        return str(row.tenant)

    def _remember(self, key: str, tenant: str | None, key_hash: str | None) -> None:
        with self._lock:
            if tenant is None and len(self._cache) >= _NEGATIVE_CACHE_MAX:
                self._cache = {k: v for k, v in self._cache.items() if v.tenant is not None}
            self._cache[_cache_id(key)] = _Entry(tenant, key_hash, self._clock())

    def _touch_later(self, key_id: str) -> None:
        """Record the key's last use in the background, one write per key at a time.

        A write can wait a long time on DuckDB (e.g. behind a checkpoint of a big table); the
        request that presented the key must never wait for it.
        """
        with self._lock:
            touching = self._touching
            if key_id in touching:
                return
            touching.add(key_id)

        def run() -> None:
            try:
                self._touch(key_id)
            finally:
                with self._lock:
                    touching.discard(key_id)

        self._start(run, "wattledger-key-touch")

    def _start(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                target()
            finally:
                with self._lock:
                    self._background.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._background.add(thread)
        thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Wait for background checks and last-use writes (before the engine is disposed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = next(iter(self._background), None)
            if pending is None or time.monotonic() > deadline:
                return
            pending.join(max(0.0, deadline - time.monotonic()))

    def _touch(self, key_id: str) -> None:
        t = ApiKey.__table__
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.update(t).where(t.c.key_id == key_id).values(last_used_at=utcnow()))
        except sa.exc.SQLAlchemyError as e:  # best effort: never fail a request over it
            logger.debug("could not record last use of key %s: %s", key_id, e)
