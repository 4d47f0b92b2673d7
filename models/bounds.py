"""Physical and commercial bounds on every number ingest accepts, in one table.

A value outside its bound is rejected per item with reason ``bad_value`` and a message naming
the attribute and the range (OTLP partial success), never stored. The bounds are far beyond
any real request or device, and tight enough that every derived figure fits its column: with
at most 10⁹ tokens per request and list prices of at most $10⁶ per million tokens, a request
costs at most $10⁹, inside the NUMERIC(20, 10) cost columns (< 10¹⁰). ``docs/security.md``
lists them for users.
"""

from __future__ import annotations

#: Longest a request (span) may last, and the bound on its TTFT and inter-token latencies.
MAX_DURATION_S = 86_400.0
#: Most tokens one request may report in any token count (no model has a context near this).
MAX_TOKENS = 1_000_000_000
#: Most requests one span may say were batched together, and the largest tensor-parallel size.
MAX_BATCH_SIZE = 1_000_000
MAX_TENSOR_PARALLEL_SIZE = 65_536
#: Most inter-token gaps one request may report (one per output token).
MAX_ITL_COUNT = MAX_TOKENS
#: Highest power one device may draw (a whole 72-GPU rack draws about 120 kW).
MAX_POWER_W = 200_000.0
#: Lowest TDP a device may declare (a TDP of 0 or less makes utilisation models divide by 0).
MIN_TDP_W = 1.0
#: Largest energy counter reading: a 200 kW device running for 150 years.
MAX_ENERGY_J = 1e15
#: Temperatures a sensor can report, in degrees Celsius.
MIN_TEMPERATURE_C = -273.15
MAX_TEMPERATURE_C = 1_000.0
#: Device memory in bytes (2⁶² B = 4 EiB).
MAX_MEMORY_BYTES = 2.0**62
