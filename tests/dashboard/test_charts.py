"""Label placement on the cost-vs-latency scatter: readable however close the routes are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wattledger.dashboard import charts


def _points(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "route": [f"vllm/H100-SXM/meta-llama/Llama-3.1-{i}B-Instruct@bf16" for i in range(n)],
            "latency_ms": rng.uniform(600, 700, n),  # a tight cluster, as self-hosted routes are
            "cost_per_mtok_usd": rng.uniform(8, 20, n),
        }
    )


def _boxes(placed: pd.DataFrame, points: pd.DataFrame) -> list[tuple[float, ...]]:
    (x0, x1), (y0, y1) = charts.scatter_domains(points)
    boxes = []
    for r in placed[placed["side"] != ""].itertuples():
        px = (r.latency_ms - x0) / (x1 - x0) * charts.SCATTER_WIDTH
        py = charts.SCATTER_HEIGHT * (
            1 - (np.log10(r.label_y) - np.log10(y0)) / (np.log10(y1) - np.log10(y0))
        )
        width = len(r.route) * charts._CHAR_PX
        left = px + 9 if r.side == "right" else px - 9 - width
        boxes.append((left, py - charts._LINE_PX / 2, left + width, py + charts._LINE_PX / 2))
    return boxes


def test_labels_of_clustered_routes_never_overlap_and_stay_in_the_plot() -> None:
    for n in (2, 5, 8, 12):
        points = _points(n)
        placed = charts.place_labels(points)
        boxes = _boxes(placed, points)
        assert len(boxes) >= min(n, 5)  # most routes keep a label even in a tight cluster
        for i, a in enumerate(boxes):
            assert a[0] >= -0.01 and a[2] <= charts.SCATTER_WIDTH + 0.01
            assert a[1] >= -0.01 and a[3] <= charts.SCATTER_HEIGHT + 0.01
            for b in boxes[i + 1 :]:
                assert not charts._overlap(a, b), (a, b)


def test_a_lone_route_keeps_its_label_on_its_own_line() -> None:
    points = _points(1)
    placed = charts.place_labels(points)
    assert placed.loc[0, "side"] == "right"
    assert placed.loc[0, "label_y"] == points.loc[0, "cost_per_mtok_usd"]


def test_a_route_at_the_right_edge_is_labelled_on_its_left() -> None:
    points = pd.DataFrame(
        {
            "route": ["groq/hosted/llama-3.1-8b-instant", "together/hosted/mixtral-8x7b"],
            "latency_ms": [500.0, 2100.0],
            "cost_per_mtok_usd": [0.05, 0.9],
        }
    )
    placed = charts.place_labels(points)
    assert list(placed["side"]) == ["right", "left"]
