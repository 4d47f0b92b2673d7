"""API keys: hashed at rest, compared in constant time, a near-miss key refused."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.ingest import auth
from wattledger.ingest.auth import AuthError, KeyVerifier, create_key, hash_key, verify_key
from wattledger.models import make_engine


@pytest.fixture
def engine(migrated_url: str) -> Any:
    e = make_engine(migrated_url)
    yield e
    e.dispose()


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every call auth makes to hmac.compare_digest, which still decides the result."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    return calls


def near_miss(key: str) -> str:
    """The same key id and length, one character of the secret changed."""
    last = key[-1]
    return key[:-1] + ("A" if last != "A" else "B")


def test_verify_key_compares_digests_with_compare_digest(
    compare_calls: list[tuple[bytes, bytes]],
) -> None:
    key = f"wlk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    stored = hash_key(key)
    assert verify_key(key, stored)
    wrong = near_miss(key)
    assert len(wrong) == len(key) and auth.parse_key(wrong) == auth.parse_key(key)
    assert not verify_key(wrong, stored)
    # Both answers came from compare_digest on the 32-byte scrypt digests, not from ==.
    assert len(compare_calls) == 2
    assert all(isinstance(a, bytes) and len(a) == len(b) == 32 for a, b in compare_calls)
    assert compare_calls[0][0] == compare_calls[0][1]
    assert compare_calls[1][0] != compare_calls[1][1]


def test_keys_are_stored_only_as_salted_scrypt(engine: Engine) -> None:
    a, b = create_key(engine, "acme"), create_key(engine, "acme")
    with engine.connect() as conn:
        rows = {r.key_id: r for r in conn.execute(sa.text("SELECT * FROM api_keys"))}
    for new in (a, b):
        row = rows[new.key_id]
        stored = row.key_hash
        secret = new.key[17:]
        assert stored.startswith("scrypt$16384$8$1$")
        assert new.key not in stored and secret not in stored
        assert all(secret not in str(v) for v in row)  # no column holds the secret
    salts = {rows[k.key_id].key_hash.split("$")[4] for k in (a, b)}
    assert len(salts) == 2  # a random salt per key


def test_verifier_refuses_a_near_miss_key_through_compare_digest(
    engine: Engine, compare_calls: list[tuple[bytes, bytes]]
) -> None:
    new = create_key(engine, "acme")
    verifier = KeyVerifier(engine, ttl_s=60)
    wrong = near_miss(new.key)
    with pytest.raises(AuthError, match="wrong"):
        verifier.verify(wrong)
    assert len(compare_calls) == 1 and compare_calls[0][0] != compare_calls[0][1]
    assert verifier.verify(new.key) == "acme"
    # The refusal of the near miss stays cached and does not poison the right key.
    with pytest.raises(AuthError):
        verifier.verify(wrong)
    assert verifier.verify(new.key) == "acme"
    # The cache never holds the key itself.
    held = repr(verifier._cache) + repr(verifier._inflight)
    assert new.key not in held and wrong not in held
    verifier.close()


def test_a_key_of_another_id_or_revoked_is_refused(engine: Engine) -> None:
    a, b = create_key(engine, "acme"), create_key(engine, "beta")
    verifier = KeyVerifier(engine, ttl_s=0)
    # a's id with b's secret: the hash of the whole key does not match.
    swapped = f"wlk_{a.key_id}_{b.key[17:]}"
    with pytest.raises(AuthError):
        verifier.verify(swapped)
    with pytest.raises(AuthError):
        verifier.verify(f"wlk_{'0' * 12}_{b.key[17:]}")
    assert verifier.verify(b.key) == "beta"
    auth.revoke_key(engine, b.key_id)
    with pytest.raises(AuthError, match="revoked"):
        verifier.verify(b.key)
    verifier.close()


def test_an_unknown_key_id_is_refused_like_a_wrong_secret(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same answer, same scrypt work: a refusal tells nothing about whether the id exists."""
    new = create_key(engine, "acme")
    checked: list[str] = []
    real = auth.verify_key

    def spy(key: str, stored: str) -> bool:
        checked.append(stored)
        return real(key, stored)

    monkeypatch.setattr(auth, "verify_key", spy)
    verifier = KeyVerifier(engine, ttl_s=0)
    messages = []
    for key in (near_miss(new.key), f"wlk_{'0' * 12}_{new.key[17:]}"):  # wrong secret, no such id
        with pytest.raises(AuthError) as refused:
            verifier.verify(key)
        messages.append(str(refused.value))
    assert messages[0] == messages[1] == "the API key is unknown, wrong or revoked"
    assert len(checked) == 2 and all(h.startswith("scrypt$") for h in checked)
    assert checked[1] != checked[0]  # the unknown id was checked against a decoy hash
    verifier.close()
