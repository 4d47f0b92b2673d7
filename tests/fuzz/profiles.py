"""Hypothesis profiles for the fuzz tests: ``fuzz`` (default, seconds) and ``thorough``.

``make fuzz`` sets ``HYPOTHESIS_PROFILE=thorough``, which multiplies every test's example count
by :data:`THOROUGH_FACTOR` and draws new random examples on each run; the fast profile is
derandomized, so `make test` is repeatable. No example database is written (nothing left
behind), and there is no deadline: a slow example on a busy machine is not a failure.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

THOROUGH_FACTOR = 50

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}
# In `make test` the examples are derived from each test's name (derandomize): CI runs the same
# inputs every time, so a red run is a regression, not a new find. `make fuzz` explores.
settings.register_profile(
    "fuzz",
    max_examples=1,
    derandomize=True,
    **_COMMON,  # type: ignore[arg-type]
)
settings.register_profile(
    "thorough",
    max_examples=THOROUGH_FACTOR,
    **_COMMON,  # type: ignore[arg-type]
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
if PROFILE not in ("fuzz", "thorough"):
    PROFILE = "fuzz"


def fuzz(examples: int) -> settings:
    """Settings for one fuzz test: ``examples`` in the fast profile, x50 under ``thorough``."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=examples * base.max_examples)
