"""Transport: the OTLP/HTTP receiver that validates, authenticates and stores telemetry."""
