"""Transport: the OTLP/HTTP receiver that validates, authenticates and stores telemetry.

Public API (names are a contract with bulk loaders and ``wattledger serve``):

- :func:`request_table_from_columns`, :func:`sample_tables_from_columns`: attribute-keyed
  columns → Arrow tables with exactly the warehouse columns (the one mapping, also used by the
  receiver).
- :func:`write_requests`, :func:`write_samples` → :class:`WriteResult`: idempotent batched
  writes (DuckDB via Arrow, PostgreSQL via COPY).
- :func:`create_ingest` → :class:`IngestService`: the ASGI app (``.app``) and its writer, with
  ``start()``/``stop()``.

Names are imported on first use, so ``wattledger.config`` can import
``wattledger.ingest.settings`` without loading Arrow, protobuf and the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MappedRequests": "wattledger.ingest.mapping.requests",
    "map_requests": "wattledger.ingest.mapping.requests",
    "request_table_from_columns": "wattledger.ingest.mapping.requests",
    "MappedSamples": "wattledger.ingest.mapping.samples",
    "map_samples": "wattledger.ingest.mapping.samples",
    "sample_tables_from_columns": "wattledger.ingest.mapping.samples",
    "DEVICE_SCHEMA": "wattledger.ingest.schema",
    "REQUEST_SCHEMA": "wattledger.ingest.schema",
    "SAMPLE_SCHEMA": "wattledger.ingest.schema",
    "IngestService": "wattledger.ingest.service",
    "create_ingest": "wattledger.ingest.service",
    "IngestSettings": "wattledger.ingest.settings",
    "WriteResult": "wattledger.ingest.store",
    "write_requests": "wattledger.ingest.store",
    "write_samples": "wattledger.ingest.store",
}

__all__ = [
    "DEVICE_SCHEMA",
    "REQUEST_SCHEMA",
    "SAMPLE_SCHEMA",
    "IngestService",
    "IngestSettings",
    "MappedRequests",
    "MappedSamples",
    "WriteResult",
    "create_ingest",
    "map_requests",
    "map_samples",
    "request_table_from_columns",
    "sample_tables_from_columns",
    "write_requests",
    "write_samples",
]

if TYPE_CHECKING:
    from wattledger.ingest.mapping.requests import (
        MappedRequests,
        map_requests,
        request_table_from_columns,
    )
    from wattledger.ingest.mapping.samples import (
        MappedSamples,
        map_samples,
        sample_tables_from_columns,
    )
    from wattledger.ingest.schema import DEVICE_SCHEMA, REQUEST_SCHEMA, SAMPLE_SCHEMA
    from wattledger.ingest.service import IngestService, create_ingest
    from wattledger.ingest.settings import IngestSettings
    from wattledger.ingest.store import WriteResult, write_requests, write_samples


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
