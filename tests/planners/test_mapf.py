"""Grid MAPF: the validator catches every kind of mistake, PIBT's and LaCAM's plans pass it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maps.movingai import load_scenario, parse_grid_map
from planners.mapf import GridGraph, MapfResult, lacam, local_repair, pibt, validate_solution
from tests.planners.benchmark import instance

# A 3x5 room with a one-cell pocket below the middle of a corridor.
POCKET = "type octile\nheight 3\nwidth 5\nmap\n@@@@@\n.....\n@@.@@\n"


def graph(text: str = POCKET) -> GridGraph:
    return GridGraph.of(parse_grid_map(text, "pocket"))


def test_validator_catches_each_kind_of_conflict() -> None:
    g = graph()
    a, b, c, d = (g.index[(1, k)] for k in range(4))
    starts, goals = (a, b), (c, b)
    good = [(a, b), (b, g.index[(2, 2)]), (c, g.index[(2, 2)])]
    assert "last configuration is not the goals" in validate_solution(g, starts, goals, good)
    vertex = [(a, b), (b, b)]
    assert any("vertex conflict between agents 0 and 1" in p for p in validate_solution(g, starts, (b, b), vertex))
    swap = [(a, b), (b, a)]
    assert any("swap conflict between agents 0 and 1" in p for p in validate_solution(g, (a, b), (b, a), swap))
    jump = [(a, b), (d, b)]
    assert any("agent 0 jumps" in p for p in validate_solution(g, (a, b), (d, b), jump))
    assert "first configuration is not the starts" in validate_solution(g, (b, a), (a, b), [(a, b)])


ROOM = "type octile\nheight 2\nwidth 3\nmap\n...\n...\n"


def test_pibt_trades_places_through_the_other_row() -> None:
    """Two agents trade the ends of a row in a 2x3 room: one must detour through the other row.
    (On a tree such as a corridor with a pocket plain PIBT can livelock: its guarantee needs every
    edge on a cycle; LaCAM below is complete.)"""
    g = graph(ROOM)
    left, right = g.index[(0, 0)], g.index[(0, 2)]
    result = pibt(g, (left, right), (right, left), max_steps=100)
    assert result.solved
    assert validate_solution(g, (left, right), (right, left), result.solution) == []
    assert any(g.cells[v][0] == 1 for config in result.solution for v in config), "someone used the other row"


def test_same_seed_same_plan() -> None:
    g = graph(ROOM)
    s, t = (g.index[(0, 0)], g.index[(0, 2)]), (g.index[(0, 2)], g.index[(0, 0)])
    assert pibt(g, s, t, seed=3).solution == pibt(g, s, t, seed=3).solution


def test_loader_names_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="height"):
        parse_grid_map("type octile\nmap\n...\n")
    scen = tmp_path / "x.scen"
    scen.write_text("version 1\n0\tx.map\t5\t3\t0\t1\t4\t1\t4\n")
    assert load_scenario(scen) == [((1, 0), (1, 4))]
    with pytest.raises(ValueError, match="has 1 agents, 2 asked"):
        load_scenario(scen, 2)


@pytest.mark.parametrize(
    ("map_name", "scen", "agents", "soc_bound"),
    [("empty-32-32", "empty-32-32-even-10", 100, 1.5), ("random-32-32-10", "random-32-32-10-random-1", 200, 2.0)],
)
def test_pibt_on_benchmark_maps(mapf_data: Path, map_name: str, scen: str, agents: int, soc_bound: float) -> None:
    """Valid, solved, and the sum of costs within a bound of the sum of shortest paths."""
    g, starts, goals, lower = instance(mapf_data, map_name, scen, agents)
    result = pibt(g, starts, goals, time_limit_s=30)
    assert result.solved
    assert validate_solution(g, starts, goals, result.solution) == []
    assert result.sum_of_costs(goals) <= soc_bound * lower


def test_lacam_trades_places_through_a_pocket() -> None:
    """Two agents trade the ends of a corridor with a one-cell pocket: a tree, where PIBT alone
    has no guarantee; LaCAM must find the dance through the pocket."""
    g = graph()
    left, right = g.index[(1, 0)], g.index[(1, 4)]
    for seed in range(5):
        result = lacam(g, (left, right), (right, left), time_limit_s=5, seed=seed, swap=False)
        assert result.solved, seed
        assert validate_solution(g, (left, right), (right, left), result.solution) == []
        assert any(g.index[(2, 2)] in config for config in result.solution), "someone used the pocket"


def test_lacam_reports_an_unsolvable_instance() -> None:
    """Two agents cannot trade the ends of a bare corridor: the search ends and says so."""
    g = graph("type octile\nheight 1\nwidth 3\nmap\n...\n")
    left, right = g.index[(0, 0)], g.index[(0, 2)]
    result = lacam(g, (left, right), (right, left), time_limit_s=5)
    assert not result.solved
    assert result.seconds < 1


@pytest.mark.parametrize("planner", [pibt, lacam])
def test_warehouse_aisles_do_not_livelock(mapf_data: Path, planner: Callable[..., MapfResult]) -> None:
    """warehouse-10-20-10-2-1 with 100 agents: plain PIBT livelocks in the one-cell aisles; the
    swap rule lets agents that meet head-on back out to a fork."""
    g, starts, goals, lower = instance(mapf_data, "warehouse-10-20-10-2-1", "warehouse-10-20-10-2-1-even-1", 100)
    result = planner(g, starts, goals, time_limit_s=30)
    assert result.solved
    assert validate_solution(g, starts, goals, result.solution) == []
    assert result.sum_of_costs(goals) <= 1.6 * lower


# A dead-end cross off a corridor into a small room: four agents that must rotate one place
# round the cross (as on random-64-64-20 with 1000 agents, where PIBT never finishes).
CROSS = "type octile\nheight 6\nwidth 8\nmap\n@@@@@@@@\n@.@@@@@@\n@.......\n@.@@@...\n@@@@@...\n@@@@@@@@\n"


def test_local_repair_solves_the_rotation_puzzle_pibt_cannot() -> None:
    g = graph(CROSS)
    cell = g.index.__getitem__
    starts = [cell((1, 1)), cell((2, 1)), cell((3, 1)), cell((2, 2))]
    goals = [cell((2, 1)), cell((3, 1)), cell((2, 2)), cell((1, 1))]
    assert not pibt(g, starts, goals, max_steps=2000).solved, "PIBT alone: the agents keep their places"
    repaired = pibt(g, starts, goals, max_steps=2000, repair=True)
    assert repaired.solved
    assert validate_solution(g, starts, goals, repaired.solution) == []
    # Too small a region (the cross alone, no free cell to rotate through): no way, said so.
    assert local_repair(g, starts, goals, [0, 1, 2, 3], radius=0) is None
