"""OTLP ``AnyValue`` → Python, from protobuf messages and from the OTLP JSON encoding.

Both give the same Python value for the same attribute: ``str``, ``bool``, ``int``, ``float``,
``bytes``, ``list`` (arrayValue) or ``dict`` (kvlistValue); an empty AnyValue is None.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue


class DecodeError(ValueError):
    """The body is not a valid OTLP export request (answered with HTTP 400)."""


def from_proto(value: AnyValue) -> Any:
    """The Python value of a protobuf ``AnyValue``."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [from_proto(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: from_proto(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def from_proto_bytes(raw: bytes) -> Any:
    """The Python value of a serialized ``AnyValue``."""
    return from_proto(AnyValue.FromString(raw))


def _json_int(v: Any) -> int:
    if isinstance(v, bool):
        raise DecodeError(f"expected an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise DecodeError(f"expected an integer, got {v!r}")


def from_json(value: Any) -> Any:
    """The Python value of a JSON ``AnyValue`` object (``{"stringValue": "x"}`` …).

    Raises:
        DecodeError: the object is not an AnyValue.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DecodeError(f"attribute value must be an object, got {type(value).__name__}")
    for key, v in value.items():
        if key == "stringValue":
            if not isinstance(v, str):
                raise DecodeError("stringValue must be a string")
            return v
        if key == "intValue":
            return _json_int(v)
        if key == "doubleValue":
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                raise DecodeError("doubleValue must be a number")
            try:
                return float(v)
            except ValueError as e:
                raise DecodeError(f"doubleValue {v!r} is not a number") from e
        if key == "boolValue":
            if not isinstance(v, bool):
                raise DecodeError("boolValue must be true or false")
            return v
        if key == "arrayValue":
            return [from_json(x) for x in _list(v, "values")]
        if key == "kvlistValue":
            return json_attributes(v, "values")  # each entry an object with a string key
        if key == "bytesValue":
            try:
                return base64.b64decode(v, validate=True)
            except (binascii.Error, TypeError) as e:
                raise DecodeError("bytesValue must be base64") from e
    return None  # an empty AnyValue, or only unknown fields (ignored per the spec)


def _list(obj: Any, key: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise DecodeError(f"expected an object with {key!r}, got {type(obj).__name__}")
    v = obj.get(key, [])
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"{key!r} must be a list")
    return v


def json_list(obj: Any, key: str) -> list[Any]:
    """``obj[key]`` as a list (absent or null is empty).

    Raises:
        DecodeError: ``obj`` is not an object or ``obj[key]`` is not a list.
    """
    return _list(obj, key)


def json_attributes(obj: Any, key: str = "attributes") -> dict[str, Any]:
    """The ``attributes`` list of a JSON object as ``{key: python value}`` (last wins)."""
    out: dict[str, Any] = {}
    for kv in _list(obj, key):
        if not isinstance(kv, dict):
            raise DecodeError("each attribute must be an object with key and value")
        k = kv.get("key")
        if not isinstance(k, str):
            raise DecodeError("attribute key must be a string")
        out[k] = from_json(kv.get("value"))
    return out


def json_hex_id(v: Any) -> str | None:
    """An OTLP/JSON trace or span id: a hex string (case-insensitive), lower-cased.

    OTLP/JSON deviates from proto3 JSON here: ids are hex, not base64. Anything else is
    returned as is for the mapping to reject with a message.
    """
    if v is None or v == "":
        return None
    return v.lower() if isinstance(v, str) else str(v)


def json_uint(v: Any) -> int | None:
    """A 64-bit integer sent as a JSON string or number; None when absent or malformed."""
    if v is None:
        return None
    try:
        return _json_int(v)
    except DecodeError:
        return None
