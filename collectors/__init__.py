"""Capture: the request SDK, device power sources, the sidecar collector and the fleet simulator.

This package never imports SQLAlchemy: it only produces OpenTelemetry data.
"""
