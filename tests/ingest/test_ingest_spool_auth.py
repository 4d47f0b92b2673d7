"""The spool (durable, replayable, locked) and API keys (hashed, constant-time, cached)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from wattledger.ingest.auth import (
    AuthError,
    KeyVerifier,
    create_key,
    hash_key,
    list_keys,
    parse_key,
    revoke_key,
    verify_key,
)
from wattledger.ingest.spool import Spool, SpoolLocked, SpoolRecord, read_segment


def rec(i: int, size: int = 10) -> SpoolRecord:
    return SpoolRecord("traces", "acme", "protobuf", "identity", bytes([i % 256]) * size)


def test_records_survive_a_restart_until_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    assert spool.open() == []
    tickets = [spool.append(rec(i, 500)) for i in range(20)]  # several segments
    assert len({t.segment for t in tickets}) > 1
    spool.release(tickets[:10])
    spool.close()  # as after a crash: nothing else happens
    again = Spool(tmp_path, segment_bytes=4096)
    replay = again.open()
    assert [r.body for _, r in replay][-10:] == [rec(i, 500).body for i in range(10, 20)]
    assert len(replay) < 20  # fully released segments were deleted
    again.release([t for t, _ in replay])
    assert again.pending_records == 0
    again.close()
    assert Spool(tmp_path).open() == []


def test_a_torn_tail_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append(rec(1))
    spool.append(rec(2))
    spool.close()
    (seg,) = [p for p in tmp_path.glob("*.seg") if p.stat().st_size]
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])  # a crash in the middle of the second append
    assert [r.body for r in read_segment(seg)] == [rec(1).body]
    seg.write_bytes(data[:20] + b"\x00" + data[21:])  # corruption: CRC catches it
    assert read_segment(seg) == []


def test_concurrent_appends_are_all_durable(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64 * 1024)
    spool.open()
    threads = [
        threading.Thread(target=lambda i=i: [spool.append(rec(i, 300)) for _ in range(50)])
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spool.close()
    assert len(Spool(tmp_path).open()) == 200


def test_one_process_per_spool(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    with pytest.raises(SpoolLocked, match="in use by another process"):
        Spool(tmp_path).open()
    first.close()
    Spool(tmp_path).open()


def test_key_hashing() -> None:
    key = "wlk_0123456789ab_" + "A" * 43
    stored = hash_key(key)
    assert stored.startswith("scrypt$") and key not in stored
    assert verify_key(key, stored)
    assert not verify_key(key[:-1] + "B", stored)
    assert not verify_key(key, "md5$x")
    assert parse_key(key) == "0123456789ab"
    with pytest.raises(AuthError):
        parse_key("Bearer nonsense")


def test_verifier_caches_and_notices_revocation(engine) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    new = create_key(engine, "acme", "ci")
    verifier = KeyVerifier(engine, ttl_s=10, clock=lambda: now[0])
    assert verifier.verify(new.key) == "acme"
    verifier.close()  # last use is recorded in the background
    assert list_keys(engine)[0]["last_used_at"] is not None
    revoke_key(engine, new.key_id)
    assert verifier.verify(new.key) == "acme"  # cached within the TTL
    now[0] = 11
    with pytest.raises(AuthError, match="revoked"):
        verifier.verify(new.key)
    with pytest.raises(AuthError):
        verifier.cached(new.key)  # the refusal is cached too
    assert revoke_key(engine, "ffffffffffff") is None
    with pytest.raises(ValueError, match="not valid"):
        create_key(engine, "")


def test_a_failed_append_leaves_no_torn_record_behind(tmp_path: Path) -> None:
    """A full disk (here: the file-size limit, EFBIG) fails an append part-way; the partial
    record is cut off, so records appended after the disk frees up still replay."""
    script = f"""
import resource, signal
from pathlib import Path
from wattledger.ingest.spool import Spool, SpoolRecord
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
spool = Spool(Path({str(tmp_path)!r}), segment_bytes=10**9)
spool.open()
rec = lambda i: SpoolRecord("traces", "t", "protobuf", "identity", bytes([i]) * 1000)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (4500, hard))
ok = 0
try:
    for i in range(10):
        spool.append(rec(i)); ok += 1
except OSError:
    pass
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
spool.append(rec(99))
spool.close()
print(ok)
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    accepted = int(out.stdout.strip())
    assert 0 < accepted < 10
    replay = Spool(tmp_path).open()
    assert [r.body[0] for _, r in replay] == [*range(accepted), 99]


def test_stale_verdicts_answer_while_the_row_is_read_again(engine) -> None:  # type: ignore[no-untyped-def]
    """Past the TTL a known key is still accepted (within a grace) while a background check
    reads the row; a revocation then takes effect, and past the grace nothing stale is used."""
    from wattledger.ingest.auth import STALE_GRACE_S

    now = [0.0]
    new = create_key(engine, "acme", "ci")
    verifier = KeyVerifier(engine, ttl_s=10, clock=lambda: now[0])
    assert verifier.stale(new.key) is None  # never verified: nothing to fall back on
    assert verifier.verify(new.key) == "acme"
    now[0] = 11
    assert verifier.cached(new.key) is None
    assert verifier.stale(new.key) == "acme"
    revoke_key(engine, new.key_id)
    verifier.refresh_later(new.key)
    deadline = time.monotonic() + 10
    while verifier.stale(new.key) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(AuthError):
        verifier.cached(new.key)  # the refresh found the revocation
    assert verifier.stale(new.key) is None

    other = create_key(engine, "beta")
    assert verifier.verify(other.key) == "beta"
    now[0] += 10 + STALE_GRACE_S + 1
    assert verifier.stale(other.key) is None  # too old to trust without reading the row
    verifier.close()
