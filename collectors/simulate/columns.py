"""Simulation results as the column dicts ingest maps to warehouse rows.

Request columns (one element per span) use the keys ``trace_id`` (32 hex), ``span_id``
(16 hex), ``start_time_unix_nano``, ``end_time_unix_nano`` (int64), ``status_code``
(0 unset, 2 error), ``resource.service.name``, ``resource.host.name`` and span attribute
names from :mod:`wattledger.collectors.semconv`. Metric columns (one element per data point)
use ``metric``, ``time_unix_nano``, ``value`` and attribute names (``hw.id``, ``host.name``…).

Numbers are numpy arrays (int64, float64, bool); strings are numpy arrays of ``str`` (object
or fixed-width unicode, e.g. the ids). A key that
is absent from a chunk means no span in it has that attribute; inside a column ``None``
(strings) and NaN (floats) mark a span without it, e.g. the TTFT of a failed request.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from wattledger.catalog.specs import HostedProvider
from wattledger.collectors import semconv as sc
from wattledger.collectors.simulate.config import Device
from wattledger.collectors.simulate.fleet import ReplicaRun
from wattledger.collectors.simulate.hosted import HostedRun

Columns = dict[str, np.ndarray]
#: gen_ai.provider.name of self-hosted routes (a custom value, as the conventions allow).
SELF_HOSTED_PROVIDER = "vllm"


def ids_from_bytes(raw: bytes, i0: int, i1: int) -> tuple[NDArray[np.str_], NDArray[np.str_]]:
    """Trace ids (16 bytes) and span ids (8 bytes) of requests ``i0..i1`` as lowercase hex.

    ``raw`` holds 24 random bytes per request; ids are never all zeros (invalid in OTel).
    """
    block = np.frombuffer(raw, dtype=np.uint8)[24 * i0 : 24 * i1].reshape(-1, 24).copy()
    block[:, 0] |= 1
    block[:, 16] |= 1
    return _hex(block[:, :16]), _hex(block[:, 16:])


def _hex(b: NDArray[np.uint8]) -> NDArray[np.str_]:
    """Rows of bytes as lowercase hex strings (a numpy ``U`` array; no Python str objects)."""
    width = 2 * b.shape[1]
    text = np.ascontiguousarray(b).tobytes().hex().encode("utf-32-le")
    return np.frombuffer(text, dtype=f"<U{width}")


def to_unix_nano(start_unix_nano: int, t_s: NDArray[np.float64]) -> NDArray[np.int64]:
    """Seconds since the simulation start as Unix nanoseconds."""
    return start_unix_nano + np.rint(t_s * 1e9).astype(np.int64)


def take(columns: Mapping[str, np.ndarray], idx: NDArray[np.int64]) -> Columns:
    """The rows ``idx`` of every column."""
    return {k: v[idx] for k, v in columns.items()}


def constant(value: object, n: int) -> NDArray[np.object_]:
    """A string column holding ``value`` ``n`` times."""
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


def replica_request_columns(
    run: ReplicaRun,
    *,
    device: Device,
    start_unix_nano: int,
    trace_id: NDArray[np.str_],
    span_id: NDArray[np.str_],
    service: NDArray[np.object_],
    operation: NDArray[np.object_],
    workload: NDArray[np.object_],
    input_tokens: NDArray[np.int64],
    output_tokens: NDArray[np.int64],
    llm_model: str,
    quantization: str,
) -> Columns:
    """Span columns of every request a replica served, in arrival order."""
    n = len(run.arrival_s)
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "start_time_unix_nano": to_unix_nano(start_unix_nano, run.arrival_s),
        "end_time_unix_nano": to_unix_nano(start_unix_nano, run.end_s),
        "status_code": np.zeros(n, dtype=np.int64),
        "resource.service.name": service,
        "resource.host.name": constant(device.node, n),
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: constant(SELF_HOSTED_PROVIDER, n),
        sc.GEN_AI_REQUEST_MODEL: constant(llm_model, n),
        sc.GEN_AI_RESPONSE_MODEL: constant(llm_model, n),
        sc.GEN_AI_REQUEST_STREAM: np.ones(n, dtype=bool),
        sc.SERVER_ADDRESS: constant(device.node, n),
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
        sc.WL_TTFT_S: run.first_token_s - run.arrival_s,
        sc.WL_ITL_MEAN_S: run.itl_mean_s,
        sc.WL_ITL_P50_S: run.itl_p50_s,
        sc.WL_ITL_P95_S: run.itl_p95_s,
        sc.WL_ITL_MAX_S: run.itl_max_s,
        sc.WL_ITL_COUNT: run.itl_count,
        sc.WL_WORKLOAD: workload,
        sc.WL_DEVICE_ID: constant(device.device_id, n),
        sc.WL_QUANTIZATION: constant(quantization, n),
        sc.WL_TENSOR_PARALLEL_SIZE: np.ones(n, dtype=np.int64),
        sc.WL_BATCH_SIZE: run.batch_size,
    }


def metric_columns(
    device: Device,
    *,
    time_unix_nano: NDArray[np.int64],
    energy_j: NDArray[np.float64],
    power_w: NDArray[np.float64],
    utilization: NDArray[np.float64],
) -> Columns:
    """Data points of one device at its sample times, ordered by time then metric.

    Devices measured by ``counter`` report ``hw.energy`` (cumulative J), ``hw.power`` and
    ``hw.gpu.utilization``; devices measured by ``power`` report only the last two.
    """
    if device.energy_method == "counter":
        names = [sc.HW_ENERGY, sc.HW_GPU_UTILIZATION, sc.HW_POWER]
        values = np.stack([energy_j, utilization, power_w], axis=1)
    else:
        names = [sc.HW_GPU_UTILIZATION, sc.HW_POWER]
        values = np.stack([utilization, power_w], axis=1)
    k = len(names)
    n = len(time_unix_nano) * k
    return {
        "metric": np.tile(np.array(names, dtype=object), len(time_unix_nano)),
        "time_unix_nano": np.repeat(time_unix_nano, k),
        "value": values.ravel(),
        sc.HW_ID: constant(device.device_id, n),
        sc.HW_TYPE: constant("gpu", n),
        sc.HW_VENDOR: constant(device.vendor, n),
        sc.HW_MODEL: constant(device.hardware, n),
        sc.WL_DEVICE_INDEX: np.full(n, device.index, dtype=np.int64),
        sc.WL_POWER_SOURCE: constant(device.power_source, n),
        sc.WL_ENERGY_METHOD: constant(device.energy_method, n),
        sc.WL_TDP_W: np.full(n, device.tdp_w),
        sc.WL_IDLE_POWER_W: np.full(n, device.idle_power_w),
        sc.HOST_NAME: constant(device.node, n),
    }


def hosted_request_columns(
    run: HostedRun,
    *,
    provider: HostedProvider,
    served_model: str,
    start_unix_nano: int,
    trace_id: NDArray[np.str_],
    span_id: NDArray[np.str_],
    service: NDArray[np.object_],
    operation: NDArray[np.object_],
    workload: NDArray[np.object_],
    input_tokens: NDArray[np.int64],
) -> Columns:
    """Span columns of every request sent to a hosted route, in arrival order.

    Spans carry no device: the provider's hardware is not visible. The client runs on the
    service's own host (``<service>-0``).
    """
    n = len(run.arrival_s)
    failed = run.failed
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "start_time_unix_nano": to_unix_nano(start_unix_nano, run.arrival_s),
        "end_time_unix_nano": to_unix_nano(start_unix_nano, run.end_s),
        "status_code": np.where(failed, 2, 0).astype(np.int64),
        "resource.service.name": service,
        "resource.host.name": _client_hosts(service),
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: constant(provider.provider_name, n),
        sc.GEN_AI_REQUEST_MODEL: constant(served_model, n),
        sc.GEN_AI_RESPONSE_MODEL: constant(served_model, n),
        sc.GEN_AI_REQUEST_STREAM: np.ones(n, dtype=bool),
        sc.SERVER_ADDRESS: constant(provider.server_address, n),
        sc.ERROR_TYPE: run.error_type,
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: run.output_tokens,
        sc.WL_TTFT_S: run.first_token_s - run.arrival_s,
        sc.WL_ITL_MEAN_S: run.itl_mean_s,
        sc.WL_ITL_P50_S: run.itl_p50_s,
        sc.WL_ITL_P95_S: run.itl_p95_s,
        sc.WL_ITL_MAX_S: run.itl_max_s,
        sc.WL_ITL_COUNT: run.itl_count,
        sc.WL_WORKLOAD: workload,
    }


def _client_hosts(service: NDArray[np.object_]) -> NDArray[np.object_]:
    if len(service) == 0:
        return constant(None, 0)
    names, inverse = np.unique(service.astype(str), return_inverse=True)
    hosts = np.array([f"{s}-0" for s in names], dtype=object)
    return hosts[inverse]
