"""OTLP-independent mapping: attribute-keyed columns → warehouse rows (Arrow tables)."""
