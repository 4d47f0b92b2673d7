"""Live mode: the official OTLP exporters deliver exactly the backfill's rows to a real server."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from wattledger.cli import main
from wattledger.collectors import semconv as sc
from wattledger.collectors.simulate.backfill import Chunk, Simulation
from wattledger.collectors.simulate.emit import EmitError, OtlpSender, run_live
from wattledger.collectors.simulate.groundtruth import read_ground_truth

MONDAY_NOON = 1_699_833_600.0 + 12 * 3600


@dataclass
class Capture:
    """What an OTLP/HTTP receiver on 127.0.0.1 got."""

    url: str
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Capture]:
    cap = Capture(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            cap.auth.append(self.headers.get("Authorization"))
            if self.path == "/v1/traces":
                cap.traces.append(ExportTraceServiceRequest.FromString(body))
            elif self.path == "/v1/metrics":
                cap.metrics.append(ExportMetricsServiceRequest.FromString(body))
            self.send_response(cap.status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cap.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cap
    finally:
        server.shutdown()
        server.server_close()


class FakeClock:
    """Wall clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += max(s, 1e-3)
        self.sleeps += 1


def _spans(cap: Capture) -> dict[str, tuple[dict[str, object], object, dict[str, object]]]:
    out = {}
    for req in cap.traces:
        for rs in req.resource_spans:
            res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                assert ss.scope.name == sc.SCOPE_NAME
                for span in ss.spans:
                    attrs = {}
                    for kv in span.attributes:
                        v = kv.value
                        attrs[kv.key] = getattr(v, v.WhichOneof("value"))
                    out[span.span_id.hex()] = (attrs, span, res)
    return out


def test_live_run_delivers_the_backfill_rows(receiver: Capture) -> None:
    sim = Simulation(start_unix_s=MONDAY_NOON, horizon_s=300, seed=9, sample_interval_s=5)
    chunks: list[Chunk] = list(sim.chunks())
    clock = FakeClock()
    sender = OtlpSender(receiver.url, api_key="wl_test_key")
    try:
        summary = run_live(
            chunks, sender, start_unix_nano=sim.start_unix_nano,
            end_unix_nano=sim.start_unix_nano + int(300e9), speed=10.0, clock=clock,
            sleep=clock.sleep,
        )  # fmt: skip
    finally:
        sender.shutdown()
    assert clock.sleeps > 10  # paced over simulated time, not sent at once
    assert clock.now == pytest.approx(30.0, abs=1.5)  # 300 simulated s at 10x
    assert len(receiver.traces) < 200  # batched like a span processor
    assert set(receiver.auth) == {"Bearer wl_test_key"}
    got = _spans(receiver)
    n = sum(c.n_requests for c in chunks)
    assert summary.spans == n == len(got)
    for c in chunks:
        cols = c.request_columns
        for i in range(0, c.n_requests, 7):
            attrs, span, res = got[cols["span_id"][i]]
            assert span.trace_id.hex() == cols["trace_id"][i]
            assert span.start_time_unix_nano == cols["start_time_unix_nano"][i]
            assert span.end_time_unix_nano == cols["end_time_unix_nano"][i]
            assert span.status.code == cols["status_code"][i]
            assert res[sc.SERVICE_NAME] == cols["resource.service.name"][i]
            assert res[sc.HOST_NAME] == cols["resource.host.name"][i]
            for key in (
                sc.GEN_AI_USAGE_INPUT_TOKENS,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS,
                sc.WL_WORKLOAD,
            ):
                assert attrs[key] == cols[key][i]
            if sc.WL_DEVICE_ID in cols:
                assert attrs[sc.WL_DEVICE_ID] == cols[sc.WL_DEVICE_ID][i]
                assert attrs[sc.WL_BATCH_SIZE] == cols[sc.WL_BATCH_SIZE][i]
            else:
                assert sc.WL_DEVICE_ID not in attrs
            ttft = cols[sc.WL_TTFT_S][i]
            assert attrs.get(sc.WL_TTFT_S) == (None if np.isnan(ttft) else pytest.approx(ttft))


def test_live_readings_match_the_backfill(receiver: Capture) -> None:
    sim = Simulation(start_unix_s=MONDAY_NOON, horizon_s=120, seed=9, sample_interval_s=5)
    chunks = list(sim.chunks())
    clock = FakeClock()
    sender = OtlpSender(receiver.url)
    run_live(
        chunks, sender, start_unix_nano=sim.start_unix_nano, speed=100.0, clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    sender.shutdown()
    points: dict[tuple[str, str, int], float] = {}
    for req in receiver.metrics:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == sc.HW_ENERGY:
                        assert m.sum.is_monotonic and m.sum.aggregation_temporality == 2
                        dps = m.sum.data_points
                    else:
                        dps = m.gauge.data_points
                    for dp in dps:
                        hw_id = next(
                            kv.value.string_value for kv in dp.attributes if kv.key == sc.HW_ID
                        )
                        points[(hw_id, m.name, dp.time_unix_nano)] = dp.as_double
    expected = {}
    for c in chunks:
        m = c.metric_columns
        for i in range(c.n_metric_points):
            expected[(m[sc.HW_ID][i], m["metric"][i], int(m["time_unix_nano"][i]))] = m["value"][i]
    assert points.keys() == expected.keys()
    assert all(points[k] == pytest.approx(v) for k, v in expected.items())


def test_a_refusing_endpoint_is_a_clear_error(receiver: Capture) -> None:
    receiver.status = 400
    sim = Simulation(start_unix_s=MONDAY_NOON, horizon_s=60, seed=1)
    clock = FakeClock()
    sender = OtlpSender(receiver.url)
    with pytest.raises(EmitError, match="did not accept"):
        run_live(
            list(sim.chunks()), sender, start_unix_nano=sim.start_unix_nano, speed=100.0,
            clock=clock, sleep=clock.sleep,
        )  # fmt: skip
    sender.shutdown()


def test_cli_live_mode(
    receiver: Capture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "truth.parquet"
    args = [
        "simulate", "--endpoint", receiver.url, "--speed", "1200", "--duration-s", "0.5",
        "--start", "2023-11-13T12:00:00", "--seed", "4", "--ground-truth", str(truth), "--json",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "live" and out["requests"] > 1000
    assert out["requests"] == len(_spans(receiver))
    assert read_ground_truth(truth).requests.num_rows == out["requests"]
    # The same seed and start as a backfill give the same requests.
    sim = Simulation(start_unix_s=MONDAY_NOON, horizon_s=600, seed=4, sample_interval_s=1)
    ids = {s for c in sim.chunks() for s in c.request_columns["span_id"]}
    assert ids == set(_spans(receiver))
