"""Message content never reaches disk: spooled trace bodies keep only what the mapping reads.

The spool keeps each accepted body until the warehouse has its rows (that is what makes a 200
safe), and instrumentations put prompts and completions in span attributes
(``gen_ai.input.messages``, OpenLLMetry's ``gen_ai.prompt.0.content``…) and in event
attributes. A body that may hold content is rewritten before it is spooled: span attributes
the mapping does not read, every event and link attribute (events are read by name and time
only) and content-named resource attributes are dropped. Bodies without content markers, the
common case, are spooled as received.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from wattledger.ingest.mapping.requests import REQUEST_ATTRIBUTE_KEYS
from wattledger.ingest.spool import SpoolRecord

#: Byte strings whose presence in a decompressed body means it may carry message content.
CONTENT_MARKERS: tuple[bytes, ...] = (
    b"gen_ai.input.messages",
    b"gen_ai.output.messages",
    b"gen_ai.system_instructions",
    b"gen_ai.prompt",
    b"gen_ai.completion",
    b"gen_ai.tool.",
    b"gen_ai.content.",
    b"gen_ai.user.message",
    b"gen_ai.assistant.message",
    b"gen_ai.system.message",
    b"gen_ai.choice",
    b"llm.prompts",
    b"llm.completions",
    b"input.value",
    b"output.value",
)
_CONTENT_PREFIXES = tuple(m.decode() for m in CONTENT_MARKERS)


def may_hold_content(raw: bytes) -> bool:
    """True when the (decompressed) body names a content attribute or event."""
    return any(m in raw for m in CONTENT_MARKERS)


def _is_content(key: str) -> bool:
    return key.startswith(_CONTENT_PREFIXES)


def strip_protobuf(raw: bytes) -> bytes:
    """``raw`` (an OTLP protobuf trace request) without content-bearing attributes."""
    req = ExportTraceServiceRequest.FromString(raw)
    for rs in req.resource_spans:
        kept = [kv for kv in rs.resource.attributes if not _is_content(kv.key)]
        del rs.resource.attributes[:]
        rs.resource.attributes.extend(kept)
        for ss in rs.scope_spans:
            for sp in ss.spans:
                kept = [kv for kv in sp.attributes if kv.key in REQUEST_ATTRIBUTE_KEYS]
                del sp.attributes[:]
                sp.attributes.extend(kept)
                for e in sp.events:
                    del e.attributes[:]
                for link in sp.links:
                    del link.attributes[:]
    return req.SerializeToString()


def strip_json(raw: bytes) -> bytes:
    """``raw`` (an OTLP/JSON trace request) without content-bearing attributes."""
    doc = json.loads(raw)
    for rs in _list(doc, "resourceSpans", "resource_spans"):
        resource = rs.get("resource") if isinstance(rs, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("attributes"), list):
            resource["attributes"] = [
                kv for kv in resource["attributes"] if not _is_content(_key(kv))
            ]
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            for sp in _list(ss, "spans"):
                if isinstance(sp.get("attributes"), list):
                    sp["attributes"] = [
                        kv for kv in sp["attributes"] if _key(kv) in REQUEST_ATTRIBUTE_KEYS
                    ]
                for item in (*_list(sp, "events"), *_list(sp, "links")):
                    item.pop("attributes", None)
    return json.dumps(doc, separators=(",", ":")).encode()


def _list(obj: Any, *names: str) -> list[dict[str, Any]]:
    if not isinstance(obj, dict):
        return []
    for name in names:
        value = obj.get(name)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
    return []


def _key(kv: Any) -> str:
    return kv.get("key", "") if isinstance(kv, dict) and isinstance(kv.get("key"), str) else ""


def private_record(record: SpoolRecord, raw: bytes) -> SpoolRecord:
    """``record`` as it may be spooled: content stripped from trace bodies that may hold it.

    ``raw`` is the record's decompressed body (already decoded successfully, so parsing it
    again cannot fail); the rewritten record is stored uncompressed.
    """
    if record.signal != "traces" or not may_hold_content(raw):
        return record
    body = strip_protobuf(raw) if record.fmt == "protobuf" else strip_json(raw)
    return SpoolRecord(record.signal, record.tenant, record.fmt, "identity", body)
