"""OTLP wire formats → column dicts keyed by attribute names (protobuf and OTLP/JSON)."""

from wattledger.ingest.otlp.values import DecodeError

__all__ = ["DecodeError"]
