"""Bodies that wait together are decoded together, and each still gets exactly its own answer."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import pytest
from ingest_helpers import make_spans, post, protobuf_body, rows, settings_for
from sqlalchemy import Engine

from wattledger.ingest import IngestService
from wattledger.ingest.decoding import DecodeQueue, DecoderStopped
from wattledger.ingest.otlp import DecodeError
from wattledger.ingest.service import Outcome
from wattledger.ingest.spool import SpoolRecord

GENAI = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "vllm"}


def _body(n: int, model: str, *, bad: int = 0, plain: int = 0) -> bytes:
    attrs: list[dict[str, Any]] = [
        {**GENAI, "gen_ai.request.model": model, "gen_ai.usage.output_tokens": i + 1}
        for i in range(n)
    ]
    attrs += [{**GENAI, "gen_ai.usage.output_tokens": -1} for _ in range(bad)]  # rejected
    attrs += [{"http.route": "/x"} for _ in range(plain)]  # not GenAI: dropped
    return protobuf_body(make_spans(attrs, resource={"service.name": model}))


def _record(body: bytes, tenant: str = "acme", encoding: str = "identity") -> SpoolRecord:
    if encoding == "gzip":
        body = gzip.compress(body)
    return SpoolRecord("traces", tenant, "protobuf", encoding, body)


def _summary(out: Outcome | Exception) -> Any:
    if isinstance(out, Exception):
        return type(out)
    table = out.batch.requests.drop(["ingested_at"]) if out.batch else None
    return (
        out.received,
        out.rejected,
        out.dropped,
        out.rejected_by_reason,
        out.first_error,
        table.to_pylist() if table is not None else None,
    )


@pytest.fixture
def service(migrated_url: str, engine: Engine, tmp_path: Path) -> IngestService:
    return IngestService(settings_for(migrated_url, tmp_path), engine)


def test_process_many_equals_each_body_alone(service: IngestService) -> None:
    records = [
        _record(_body(5, "a")),
        _record(_body(3, "b", bad=2, plain=4)),
        _record(b"\x0a\xff\xff garbage"),  # undecodable: fails alone
        _record(_body(4, "c"), encoding="gzip"),
        _record(_body(2, "d"), tenant="globex"),  # another tenant: its own group
        _record(_body(6, "e", bad=1)),
    ]
    together = service.process_many(records)
    alone: list[Outcome | Exception] = []
    for r in records:
        try:
            alone.append(service.process(r, spool=False))
        except Exception as e:  # noqa: BLE001 - compared by type
            alone.append(e)
    assert [_summary(o) for o in together] == [_summary(o) for o in alone]
    assert isinstance(together[2], DecodeError)
    second = together[1]
    assert isinstance(second, Outcome)
    assert (second.received, second.rejected, second.dropped) == (9, 2, 4)
    assert "item 3" in (second.first_error or "")  # numbered within its own body
    globex = together[4]
    assert isinstance(globex, Outcome) and globex.batch is not None
    assert set(globex.batch.requests.column("tenant").to_pylist()) == {"globex"}


def test_queue_takes_waiting_bodies_together(service: IngestService) -> None:
    calls: list[int] = []
    gate = threading.Event()

    def process_many(records: list[SpoolRecord]) -> list[Outcome | Exception]:
        calls.append(len(records))
        gate.wait(10)  # the first call holds the only worker while more bodies arrive
        return service.process_many(records)

    queue = DecodeQueue(process_many, threads=1)
    queue.start()
    try:
        first = queue.submit(_record(_body(1, "first")))
        bodies = [_body(k + 1, f"m{k}") for k in range(6)] + [b"garbage"]
        while not calls:
            threading.Event().wait(0.01)
        futures = [queue.submit(_record(b)) for b in bodies]
        assert queue.depth == 7
        gate.set()
        assert first.result(10).received == 1
        outcomes = [f.exception(10) or f.result(10) for f in futures]
    finally:
        queue.stop()
    assert calls == [1, 7]  # everything that waited was decoded in one go
    for k, out in enumerate(outcomes[:6]):
        assert isinstance(out, Outcome) and out.batch is not None
        assert out.received == k + 1
        assert out.batch.requests.column("llm_model").to_pylist() == [f"m{k}"] * (k + 1)
    assert isinstance(outcomes[6], DecodeError)


def test_a_stopped_queue_refuses_instead_of_hanging(service: IngestService) -> None:
    queue = DecodeQueue(service.process_many, threads=1)
    with pytest.raises(DecoderStopped, match="not running"):
        queue.submit(_record(_body(1, "x"))).result(5)


@pytest.mark.parametrize("concurrency", [8])
def test_concurrent_requests_over_http_are_stored_once_each(
    serve: Any, engine: Engine, key: str, concurrency: int
) -> None:
    server = serve(decode_threads=1)
    bodies = [_body(20, f"model-{i}", bad=1, plain=1) for i in range(concurrency * 3)]
    answers: list[Any] = [None] * len(bodies)

    def send(i: int) -> None:
        answers[i] = post(server.url, "/v1/traces", bodies[i], key)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.flush()
    for r in answers:
        assert r.status_code == 200
        assert "1 of 22 rejected" in r.content.decode("latin-1")  # partial success, per body
    got = rows(
        engine,
        "SELECT llm_model, count(*) AS n FROM inference_requests GROUP BY llm_model",
    )
    assert {r["llm_model"]: r["n"] for r in got} == {f"model-{i}": 20 for i in range(len(bodies))}


def test_refused_bodies_are_not_waited_for(serve: Any, key: str) -> None:
    """A body announced to the decoder and then refused (too large) is withdrawn."""
    server = serve(max_body_bytes=10_000)
    big = _body(200, "big")
    assert len(big) > 10_000
    # no Content-Length, so the limit is found while reading: after the decoder was told
    r = post(server.url, "/v1/traces", iter([big]), key)  # type: ignore[arg-type]
    assert r.status_code == 413
    assert post(server.url, "/v1/traces", _body(2, "small"), key).status_code == 200
    assert server.service.decoder.incoming == 0


def test_a_body_arriving_while_the_decoder_is_stopped_gets_503(serve: Any, key: str) -> None:
    server = serve()
    server.service.decoder.stop()  # as while the service shuts down
    try:
        r = post(server.url, "/v1/traces", _body(1, "late"), key)
        assert r.status_code == 503 and r.headers["retry-after"]
    finally:
        server.service.decoder.start()
