"""Shared fixtures of the simulator tests: the packaged catalog and small workloads."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from wattledger.catalog.specs import Catalog, load_catalog
from wattledger.collectors.simulate.workload import Arrivals


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def _arrivals(a: list[float], n_in: list[int], n_out: list[int]) -> Arrivals:
    k = len(a)
    return Arrivals(
        np.asarray(a, dtype=np.float64),
        np.asarray(n_in, dtype=np.int64),
        np.asarray(n_out, dtype=np.int64),
        np.full(k, -1, dtype=np.int64),
        np.zeros(k, dtype=np.int64),
    )


@pytest.fixture
def make_arrivals() -> Callable[[list[float], list[int], list[int]], Arrivals]:
    """Arrivals from plain lists: arrival times (sorted), input and output tokens."""
    return _arrivals
