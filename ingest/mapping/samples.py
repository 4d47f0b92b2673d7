"""Power metric points → ``power_samples`` and ``devices`` rows, vectorised.

Input is one row per metric data point, keyed ``metric``, ``time_unix_nano``, ``value`` plus
point attributes merged over resource attributes (``hw.id``, ``hw.vendor``,
``wattledger.power.source`` …). The points of one device at one instant from one source are
pivoted into ONE ``power_samples`` row:

=======================  ======================  =========================================
metric                   column                  accepted values
=======================  ======================  =========================================
``hw.power``             ``power_w``             finite, ≥ 0 (W)
``hw.energy``            ``energy_counter_j``    finite, ≥ 0 (J, cumulative)
``hw.gpu.utilization``   ``utilization_ratio``   0..1; only ``hw.gpu.task`` absent/general
``hw.gpu.memory.usage``  ``memory_used_bytes``   0 .. 2^62 (By)
``hw.temperature``       ``temperature_c``       finite (Cel)
=======================  ======================  =========================================

Other producers' names for the same readings are accepted (:data:`METRIC_ALIASES`): the
OpenLIT GPU collector's ``hw.gpu.power.draw``, ``hw.gpu.energy.consumed`` and
``hw.gpu.temperature`` (``sensor=die``), and NVIDIA dcgm-exporter's fields as an OpenTelemetry
Collector's Prometheus receiver forwards them (``DCGM_FI_DEV_POWER_USAGE`` W,
``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` mJ, ``DCGM_FI_DEV_GPU_UTIL`` %,
``DCGM_FI_DEV_GPU_TEMP`` °C, ``DCGM_FI_DEV_FB_USED`` MiB), converted to our units; their device
labels (``UUID``, ``modelName``, ``Hostname``, ``gpu``; OpenLIT's ``gpu.index``) stand in for ours
where ours are absent (:data:`ATTRIBUTE_ALIASES`), and the power source says who sent them.

Other metrics are counted as ignored. ``method`` is ``wattledger.energy.method`` when given
(``counter``, ``power`` or ``modeled``), else ``counter`` when the row has an energy counter,
else ``power``. Every device seen gets one ``devices`` row for the upsert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wattledger.collectors import semconv as sc
from wattledger.ingest.mapping._arrays import (
    ColumnInput,
    Columns,
    Rejections,
    coalesce,
    describe_value,
    float_column,
    int_column,
    numbers,
    string_column,
    true_mask,
    unstorable_mask,
)
from wattledger.ingest.schema import (
    DEVICE_SCHEMA,
    DEVICES_TABLE,
    SAMPLE_SCHEMA,
    SAMPLES_TABLE,
    TIMESTAMP,
    max_lengths,
)
from wattledger.models import ENERGY_METHODS, bounds

METRIC = "metric"
TIME = "time_unix_nano"
VALUE = "value"
#: Source recorded when a point does not say (``wattledger.power.source``).
DEFAULT_SOURCE = "otlp"

#: metric -> (power_samples column, lower bound, upper bound)
METRIC_COLUMNS: dict[str, tuple[str, float | None, float | None]] = {
    sc.HW_POWER: ("power_w", 0.0, bounds.MAX_POWER_W),
    sc.HW_ENERGY: ("energy_counter_j", 0.0, bounds.MAX_ENERGY_J),
    sc.HW_GPU_UTILIZATION: ("utilization_ratio", 0.0, 1.0),
    sc.HW_GPU_MEMORY_USAGE: ("memory_used_bytes", 0.0, bounds.MAX_MEMORY_BYTES),
    sc.HW_TEMPERATURE: ("temperature_c", bounds.MIN_TEMPERATURE_C, bounds.MAX_TEMPERATURE_C),
}
#: Other producers' metric name -> (our metric, factor to our unit, default power source).
METRIC_ALIASES: dict[str, tuple[str, float, str]] = {
    # OpenLIT's opentelemetry-gpu-collector (docs: sdk README "GPU Hardware Telemetry").
    "hw.gpu.power.draw": (sc.HW_POWER, 1.0, "openlit"),
    "hw.gpu.energy.consumed": (sc.HW_ENERGY, 1.0, "openlit"),
    "hw.gpu.temperature": (sc.HW_TEMPERATURE, 1.0, "openlit"),
    # NVIDIA dcgm-exporter field ids (default counters CSV), through a Prometheus receiver.
    "DCGM_FI_DEV_POWER_USAGE": (sc.HW_POWER, 1.0, "dcgm"),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": (sc.HW_ENERGY, 1e-3, "dcgm"),  # mJ since boot
    "DCGM_FI_DEV_GPU_UTIL": (sc.HW_GPU_UTILIZATION, 0.01, "dcgm"),  # percent
    "DCGM_FI_DEV_GPU_TEMP": (sc.HW_TEMPERATURE, 1.0, "dcgm"),
    "DCGM_FI_DEV_FB_USED": (sc.HW_GPU_MEMORY_USAGE, 1024.0 * 1024.0, "dcgm"),  # MiB
}
#: Instrument names are case-insensitive (OpenTelemetry API spec; the Python SDK lower-cases
#: them, a Collector's Prometheus receiver keeps dcgm-exporter's upper case): looked up lowered.
_ALIASES = {k.lower(): v for k, v in METRIC_ALIASES.items()}
#: Other producers' device attribute -> ours (used only where ours is absent).
ATTRIBUTE_ALIASES: dict[str, str] = {
    "UUID": sc.HW_ID,  # dcgm-exporter
    "modelName": sc.HW_MODEL,  # dcgm-exporter
    "Hostname": sc.HOST_NAME,  # dcgm-exporter
    "gpu": sc.WL_DEVICE_INDEX,  # dcgm-exporter (a string such as "0")
    "gpu.index": sc.WL_DEVICE_INDEX,  # OpenLIT
}
#: OpenLIT labels each temperature reading with its sensor; the die's is the one we keep.
SENSOR = "sensor"
#: Device attributes: attribute -> (low, high), both inclusive.
_ATTR_BOUNDS: dict[str, tuple[float, float]] = {
    sc.WL_TDP_W: (bounds.MIN_TDP_W, bounds.MAX_POWER_W),
    sc.WL_IDLE_POWER_W: (0.0, bounds.MAX_POWER_W),
}
_NODE_KEYS = (sc.HOST_NAME, sc.K8S_NODE_NAME, sc.WL_NODE)
_STRING_ATTRS = (
    sc.HW_ID,
    sc.HW_TYPE,
    sc.HW_VENDOR,
    sc.HW_MODEL,
    sc.HW_NAME,
    sc.HW_GPU_TASK,
    sc.WL_POWER_SOURCE,
    sc.WL_ENERGY_METHOD,
    sc.WL_SITE,
    *_NODE_KEYS,
)
_FLOAT_ATTRS = (sc.WL_TDP_W, sc.WL_IDLE_POWER_W)
_INT_ATTRS = (sc.WL_DEVICE_INDEX,)
#: Point/resource attribute names the mapping reads; the decoder extracts exactly these.
SAMPLE_ATTRIBUTE_KEYS: frozenset[str] = frozenset(
    _STRING_ATTRS + _FLOAT_ATTRS + _INT_ATTRS + (*ATTRIBUTE_ALIASES, SENSOR)
)

_UUID = r"(?i)^(GPU-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_MIN_NS = 946_684_800 * 10**9
_MAX_NS = 7_258_118_400 * 10**9
_LENGTHS = {**max_lengths(DEVICES_TABLE), **max_lengths(SAMPLES_TABLE)}


@dataclass(frozen=True)
class MappedSamples:
    """The result of mapping one batch of metric points.

    Attributes:
        samples: ``power_samples`` rows, one per device, time and source.
        devices: ``devices`` rows, one per device seen, for the upsert.
        received: Points in the input.
        ignored: Points of metrics (or GPU tasks) that are not stored.
        rejected: Points refused as invalid.
        rejected_by_reason: Rejected points counted by reason.
        first_error: The first problem, in input order.
    """

    samples: pa.Table
    devices: pa.Table
    received: int
    ignored: int
    rejected: int
    rejected_by_reason: dict[str, int]
    first_error: str | None


def _typed(cols: Columns, key: str, convert: object, rej: Rejections, what: str) -> pa.Array:
    values = cols.values(key)
    arr, bad = convert(values)  # type: ignore[operator]
    rej.add(
        bad,
        "bad_type",
        lambda i: (
            f"point {i}: attribute {key} has value {describe_value(values[i])}, expected {what}"
        ),
    )
    return arr


def map_samples(columns: Mapping[str, ColumnInput], *, tenant: str) -> MappedSamples:
    """Pivot metric points into ``power_samples`` rows and collect ``devices`` rows.

    Args:
        columns: ``metric``, ``time_unix_nano``, ``value`` and attribute names.
        tenant: Tenant stamped on every row.

    Raises:
        ValueError: malformed columns (no ``metric``, unequal lengths) or a bad tenant.
    """
    if not tenant or len(tenant) > _LENGTHS["tenant"]:
        raise ValueError(f"tenant must be 1..{_LENGTHS['tenant']} characters, got {tenant!r}")
    cols = Columns(_canonical(columns), METRIC)
    n = cols.n
    metric, _ = string_column(cols.values(METRIC))
    task, _ = string_column(cols.values(sc.HW_GPU_TASK))
    known = pc.is_in(metric, value_set=pa.array(list(METRIC_COLUMNS))).fill_null(False)
    general = pc.or_(pc.is_null(task), pc.equal(task, "general"))
    stored = pc.and_(
        known, pc.or_(pc.not_equal(metric, sc.HW_GPU_UTILIZATION), general).fill_null(True)
    )
    keep = true_mask(stored)
    rej = Rejections(n, eligible=keep)

    strs = {k: _typed(cols, k, string_column, rej, "a string") for k in _STRING_ATTRS}
    floats = {k: _typed(cols, k, float_column, rej, "a number") for k in _FLOAT_ATTRS}
    for key, (low, high) in _ATTR_BOUNDS.items():
        x = numbers(floats[key])
        rej.add(
            (x < low) | (x > high),
            "bad_value",
            lambda i, key=key, low=low, high=high: (
                f"point {i}: {key} is {floats[key][i].as_py()}, outside {low:g}..{high:g}"
            ),
        )
    device_index, bad = int_column(cols.values(sc.WL_DEVICE_INDEX))
    rej.add(bad, "bad_type", lambda i: f"point {i}: {sc.WL_DEVICE_INDEX} is not an integer")

    device_id = strs[sc.HW_ID]
    rej.add(
        true_mask(pc.or_kleene(pc.is_null(device_id), pc.equal(device_id, ""))),
        "no_device",
        lambda i: (
            f"point {i} of {metric[i].as_py()}: attribute {sc.HW_ID} (the device id) is missing"
        ),
    )
    ns_arr, bad = int_column(cols.values(TIME))
    ns = ns_arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    rej.add(
        bad | (ns < _MIN_NS) | (ns > _MAX_NS),
        "bad_time",
        lambda i: (
            f"point {i} of {metric[i].as_py()}: time_unix_nano is missing or not a time "
            "between 2000 and 2200"
        ),
    )
    value, bad = float_column(cols.values(VALUE))
    rej.add(
        bad | ~value.is_valid().to_numpy(zero_copy_only=False),
        "bad_value",
        lambda i: f"point {i} of {metric[i].as_py()}: the value is missing or not finite",
    )
    out: dict[str, pa.Array] = {}
    for name, (column, low, high) in METRIC_COLUMNS.items():
        is_metric = pc.equal(metric, name).fill_null(False)
        out[column] = pc.if_else(is_metric, value, pa.scalar(None, pa.float64()))
        bad_range = pa.scalar(False)
        if low is not None:
            bad_range = pc.less(value, low)
        if high is not None:
            bad_range = pc.or_(bad_range, pc.greater(value, high))
        rej.add(
            true_mask(pc.and_(is_metric, bad_range)),
            "bad_value",
            lambda i, name=name, low=low, high=high: (
                f"point {i} of {name}: value "
                f"{value[i].as_py()} is outside {low if low is not None else '-inf'}.."
                f"{high if high is not None else 'inf'}"
            ),
        )
    method_attr = strs[sc.WL_ENERGY_METHOD]
    rej.add(
        true_mask(
            pc.and_(
                pc.is_valid(method_attr),
                pc.invert(pc.is_in(method_attr, value_set=pa.array(ENERGY_METHODS))),
            )
        ),
        "bad_value",
        lambda i: (
            f"point {i}: {sc.WL_ENERGY_METHOD} is {method_attr[i].as_py()!r}, expected "
            f"one of {', '.join(ENERGY_METHODS)}"
        ),
    )
    source = strs[sc.WL_POWER_SOURCE].fill_null(DEFAULT_SOURCE)
    model = coalesce(strs[sc.HW_MODEL], strs[sc.HW_NAME])
    node = coalesce(*(strs[k] for k in _NODE_KEYS))
    for column, arr, key in (
        ("device_id", device_id, sc.HW_ID),
        ("source", source, sc.WL_POWER_SOURCE),
        ("vendor", strs[sc.HW_VENDOR], sc.HW_VENDOR),
        ("hardware_model", model, sc.HW_MODEL),
        ("node", node, sc.HOST_NAME),
        ("site", strs[sc.WL_SITE], sc.WL_SITE),
    ):
        limit = _LENGTHS[column]
        rej.add(
            true_mask(pc.greater(pc.utf8_length(arr), limit)),
            "too_long",
            lambda i, key=key, limit=limit: f"point {i}: {key} is longer than {limit} characters",
        )
        unstorable = unstorable_mask(arr)
        if unstorable is not None:
            rej.add(
                unstorable,
                "bad_string",
                lambda i, key=key: (
                    f"point {i}: {key} holds a NUL character or invalid UTF-8, which cannot "
                    "be stored; send text without U+0000"
                ),
            )

    good = pa.array(keep & ~rej.mask)
    points = pa.table(
        {
            "device_id": device_id,
            "ts": pa.array(ns // 1000, pa.int64()).cast(TIMESTAMP),
            "source": source,
            **out,
            "method_attr": method_attr,
            "vendor": strs[sc.HW_VENDOR],
            "hardware_model": model,
            "node": node,
            "site": strs[sc.WL_SITE],
            "device_index": device_index,
            "tdp_w": floats[sc.WL_TDP_W],
            "idle_power_w": floats[sc.WL_IDLE_POWER_W],
        }
    ).filter(good)
    return MappedSamples(
        samples=_samples(points, tenant),
        devices=_devices(points, tenant),
        received=n,
        ignored=int((~keep).sum()),
        rejected=rej.count,
        rejected_by_reason=dict(rej.by_reason),
        first_error=rej.first_message,
    )


def _pylist(values: ColumnInput | None, n: int) -> list[object]:
    if values is None:
        return [None] * n
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    return list(values)


def _canonical(columns: Mapping[str, ColumnInput]) -> Mapping[str, ColumnInput]:
    """``columns`` with other producers' metric names, units and device labels made ours.

    Unchanged (the same object) when no alias is present, which is the common case.
    """
    n = Columns(columns, METRIC).n  # same length checks, before anything is read
    names = _pylist(columns[METRIC], n)
    aliased = any(isinstance(x, str) and x.lower() in _ALIASES for x in names)
    if not aliased and not any(k in columns for k in ATTRIBUTE_ALIASES):
        return columns
    out = dict(columns)
    for theirs, ours in ATTRIBUTE_ALIASES.items():
        if theirs not in columns:
            continue
        mine = _pylist(out.get(ours), n)
        for i, v in enumerate(_pylist(columns[theirs], n)):
            if mine[i] is None and v is not None:
                if ours == sc.WL_DEVICE_INDEX and isinstance(v, str) and v.strip().isdigit():
                    v = int(v)
                mine[i] = v
        out[ours] = mine
    values = _pylist(columns.get(VALUE), n)
    sources = _pylist(columns.get(sc.WL_POWER_SOURCE), n)
    sensors = _pylist(columns.get(SENSOR), n)
    # Device ids as dict keys: any value a producer sent (a list is refused later, by name).
    devices = [d if isinstance(d, str) else repr(d) for d in _pylist(out.get(sc.HW_ID), n)]
    producer: dict[str, str] = {}  # device -> who sent its aliased readings
    for i, name in enumerate(names):
        alias = _ALIASES.get(name.lower()) if isinstance(name, str) else None
        if alias is None:
            continue
        ours, factor, source = alias
        producer.setdefault(devices[i], source)
        if ours == sc.HW_TEMPERATURE and sensors[i] not in (None, "die", "gpu"):
            continue  # a memory or hotspot sensor: not the die temperature we store
        names[i] = ours
        v = values[i]
        if factor != 1.0 and isinstance(v, (int, float)) and not isinstance(v, bool):
            values[i] = v * factor
    # The producer's other readings of the same device (hw.gpu.utilization...) share its source,
    # so one instant stays one row.
    for i, device in enumerate(devices):
        if sources[i] is None and device in producer:
            sources[i] = producer[device]
    out[METRIC], out[VALUE], out[sc.WL_POWER_SOURCE] = names, values, sources
    return out


def _samples(points: pa.Table, tenant: str) -> pa.Table:
    values = [c for c, _, _ in METRIC_COLUMNS.values()]
    g = points.group_by(["device_id", "ts", "source"], use_threads=False).aggregate(
        [(c, "max") for c in values] + [("method_attr", "max")]
    )
    energy = g["energy_counter_j_max"]
    derived = pc.if_else(pc.is_valid(energy), "counter", "power")
    method = pc.coalesce(g["method_attr_max"], derived)
    memory = pc.round(g["memory_used_bytes_max"]).cast(pa.int64())
    cols = {
        "device_id": g["device_id"],
        "ts": g["ts"],
        "source": g["source"],
        "tenant": pa.repeat(tenant, g.num_rows),
        "method": method,
        "power_w": g["power_w_max"],
        "energy_counter_j": energy,
        "utilization_ratio": g["utilization_ratio_max"],
        "memory_used_bytes": memory,
        "temperature_c": g["temperature_c_max"],
    }
    return pa.Table.from_arrays(
        [cols[f.name].cast(f.type) for f in SAMPLE_SCHEMA], schema=SAMPLE_SCHEMA
    )


def merge_devices(tables: list[pa.Table]) -> pa.Table:
    """One ``devices`` row per device from several batches' rows (for one upsert)."""
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if t.num_rows == len(pc.unique(t["device_id"])):
        return t
    # "unknown" sorts before letters it competes with rarely; prefer any known value.
    for c in ("vendor", "hardware_model"):
        t = t.set_column(
            t.schema.get_field_index(c),
            c,
            pc.if_else(pc.equal(t[c], "unknown"), pa.scalar(None, pa.string()), t[c]),
        )
    g = t.group_by("device_id", use_threads=False).aggregate(
        [
            (c, "max")
            for c in (
                "tenant",
                "vendor",
                "hardware_model",
                "node",
                "device_index",
                "uuid",
                "site",
                "power_source",
                "tdp_w",
                "idle_power_w",
            )
        ]
        + [("first_seen_at", "min"), ("last_seen_at", "max")]
    )
    cols = {c.removesuffix("_max").removesuffix("_min"): g[c] for c in g.column_names}
    cols["vendor"] = cols["vendor"].fill_null("unknown")
    cols["hardware_model"] = cols["hardware_model"].fill_null("unknown")
    cols["hourly_cost_usd"] = pa.nulls(g.num_rows, DEVICE_SCHEMA.field("hourly_cost_usd").type)
    return pa.Table.from_arrays(
        [cols[f.name].cast(f.type) for f in DEVICE_SCHEMA], schema=DEVICE_SCHEMA
    )


def _devices(points: pa.Table, tenant: str) -> pa.Table:
    g = points.group_by("device_id", use_threads=False).aggregate(
        [
            ("vendor", "max"),
            ("hardware_model", "max"),
            ("node", "max"),
            ("site", "max"),
            ("source", "max"),
            ("device_index", "max"),
            ("tdp_w", "max"),
            ("idle_power_w", "max"),
            ("ts", "min"),
            ("ts", "max"),
        ]
    )
    ids = g["device_id"]
    uuid = pc.if_else(pc.match_substring_regex(ids, _UUID), ids, pa.scalar(None, pa.string()))
    n = g.num_rows
    cols = {
        "device_id": ids,
        "tenant": pa.repeat(tenant, n),
        "vendor": g["vendor_max"].fill_null("unknown"),
        "hardware_model": g["hardware_model_max"].fill_null("unknown"),
        "node": g["node_max"],
        "device_index": g["device_index_max"],
        "uuid": uuid,
        "site": g["site_max"],
        "power_source": g["source_max"],
        "tdp_w": g["tdp_w_max"],
        "idle_power_w": g["idle_power_w_max"],
        "hourly_cost_usd": pa.nulls(n, DEVICE_SCHEMA.field("hourly_cost_usd").type),
        "first_seen_at": g["ts_min"],
        "last_seen_at": g["ts_max"],
    }
    return pa.Table.from_arrays(
        [cols[f.name].cast(f.type) for f in DEVICE_SCHEMA], schema=DEVICE_SCHEMA
    )


def sample_tables_from_columns(
    columns: Mapping[str, ColumnInput],
    *,
    tenant: str,
    on_invalid: Literal["raise", "drop"] = "raise",
) -> tuple[pa.Table, pa.Table]:
    """Map metric points to ``(power_samples, devices)`` Arrow tables with warehouse columns.

    The public entry for bulk loaders; the OTLP receiver uses the same code through
    :func:`map_samples`. Pass the result to :func:`~wattledger.ingest.write_samples`.

    Args:
        columns: ``metric``, ``time_unix_nano``, ``value`` and attribute names (``hw.id``,
            ``hw.vendor``, ``wattledger.power.source``…), one row per data point.
        tenant: Tenant stamped on every row.
        on_invalid: ``raise`` (default) raises on any invalid point, naming the first; ``drop``
            leaves invalid points out. Points of other metrics are ignored either way.

    Raises:
        ValueError: malformed columns, or (with ``on_invalid="raise"``) invalid points.
    """
    mapped = map_samples(columns, tenant=tenant)
    if on_invalid == "raise" and mapped.rejected:
        raise ValueError(
            f"{mapped.rejected} of {mapped.received} points are invalid; first: "
            f"{mapped.first_error}"
        )
    return mapped.samples, mapped.devices
