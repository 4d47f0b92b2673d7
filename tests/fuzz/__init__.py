"""Property-based fuzz tests (hypothesis): OTLP decoding and mapping, Prometheus scrapes, config."""
