"""Compiled graph: shortest paths and travel times."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from maps import FacilityMap
from planners.graph import NoPathError, compile_map


def test_shortest_path_matches_hand_computation(small_map: FacilityMap) -> None:
    """ST-A (SA) to ST-B (SB): out of the bay through the slow goods-in zone (0.5 m/s, 4.24 m),
    along the aisle A2-A3 (6 m at 1.5 m/s; the bay through SD is slower), into bay SB (4.24 m at 1 m/s)."""
    g = compile_map(small_map)
    assert g.shortest_path("SA", "SB") == ["SA", "A2", "A3", "SB"]
    diag = math.hypot(3, 3)
    assert g.time("SA", "SB") == pytest.approx(diag / 0.5 + 6 / 1.5 + diag / 1.0)


def test_one_way_lanes_are_respected(small_map: FacilityMap) -> None:
    """A2 -> A1 against the one-way loop must go round via the corridor or the whole loop."""
    g = compile_map(small_map)
    path = g.shortest_path("A2", "A1")
    assert path[0] == "A2" and path[-1] == "A1"
    for a, b in itertools.pairwise(path):
        assert math.isfinite(g.edge_seconds(a, b)), f"{a}->{b} is not a lane"
    assert "A2" not in path[1:]


def test_matrix_agrees_with_paths(plant_map: FacilityMap) -> None:
    """Every entry of the all-pairs matrix equals the time along its own reconstructed path."""
    g = compile_map(plant_map)
    rng = np.random.default_rng(3)
    ids = g.node_ids
    for _ in range(200):
        a, b = ids[int(rng.integers(len(ids)))], ids[int(rng.integers(len(ids)))]
        path = g.shortest_path(a, b)
        assert g.path_time(path) == pytest.approx(g.time(a, b))
    assert np.isfinite(g.travel_time).all(), "the plant is strongly connected"


def test_triangle_inequality_holds(plant_map: FacilityMap) -> None:
    """Fastest times never beat a detour: t(a,c) <= t(a,b) + t(b,c) for all triples sampled."""
    t = compile_map(plant_map).travel_time
    rng = np.random.default_rng(5)
    idx = rng.integers(t.shape[0], size=(500, 3))
    a, b, c = idx[:, 0], idx[:, 1], idx[:, 2]
    assert (t[a, c] <= t[a, b] + t[b, c] + 1e-9).all()


def test_no_path_raises(small_map: FacilityMap) -> None:
    g = compile_map(small_map)
    g.travel_time[g.index["A1"], g.index["A5"]] = np.inf  # a broken table stands for a cut map
    with pytest.raises(NoPathError):
        g.shortest_path("A1", "A5")
