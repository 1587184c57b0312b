"""Collision repair (MAPF-LNS2): the soft search counts collisions right and takes the fewest,
and the repair ends in a valid solution where prioritised planning gives up."""

from __future__ import annotations

from pathlib import Path

from maps.movingai import parse_grid_map
from planners.budget import NO_LIMIT
from planners.lns import _horizon, _plan, _state_budget
from planners.lns2 import _DENSE_SHARE, _Collisions, _first_pass, _orders, _partners, _plan_soft, repair
from planners.mapf import GridGraph, lacam, validate_solution
from tests.planners.benchmark import instance

CORRIDOR = "type octile\nheight 3\nwidth 5\nmap\n.....\n.....\n@@@@@\n"
AISLE = "type octile\nheight 1\nwidth 5\nmap\n.....\n"
INF = float("inf")


def test_a_cells_time_line_is_free_ranges_visits_and_the_hold_for_good() -> None:
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    row = [g.index[(1, k)] for k in range(5)]
    state = _Collisions(3)
    state.add(0, [row[0], row[1], row[1], row[2]])  # on row[1] at t=1 and 2, holds row[2] from t=3
    state.add(1, [row[3], row[3], row[2], row[1]])  # on row[1] at t=3 (colliding paths are allowed)
    state.add(2, [row[4], row[4], row[4], row[4], row[4], row[3], row[2], row[3]])  # on row[2] at t=6
    assert state.taken.soft_intervals(row[1]) == [(0, 0, 0), (1, 1, 1), (2, 2, 1), (3, INF, 1)]
    assert state.taken.soft_intervals(row[2]) == [(0, 1, 0), (2, 2, 1), (3, INF, 2)], "held, and passed once then"
    assert state.taken.soft_intervals(row[0]) == [(0, 0, 1), (1, INF, 0)]


def test_collisions_are_found_both_ways_vertex_swap_and_on_a_held_cell() -> None:
    g = GridGraph.of(parse_grid_map(AISLE, "aisle"))
    c = [g.index[(0, k)] for k in range(5)]
    state = _Collisions(4)
    state.add(0, [c[0], c[1], c[2]])  # holds c[2] from t=2
    assert _partners(state.taken, 1, [c[4], c[3], c[2]]) == {0}, "vertex at t=2"
    assert _partners(state.taken, 1, [c[1], c[0]]) == {0}, "swap between t=0 and t=1"
    assert _partners(state.taken, 1, [c[4], c[4], c[4], c[3], c[2], c[1]]) == {0}, "through the held cell"
    assert _partners(state.taken, 1, [c[4], c[3]]) == set()
    state.add(1, [c[4], c[3]])
    assert _partners(state.taken, 2, [c[1]]) == {0}, "0 comes by its goal after it has arrived"
    state.add(2, [c[1]])
    assert state.partners == [{2}, set(), {0}, set()]
    assert state.pairs([0, 1, 2]) == 1 and state.pairs([1]) == 0 and state.colliding() == [0, 2]
    state.remove(2)
    assert state.colliding() == [], "removing a path takes its collisions away"


def test_the_soft_search_takes_the_fewest_collisions_where_none_is_impossible() -> None:
    """In a one-wide aisle agent 0 holds the middle cell for good: the exact search finds no
    way past, the soft one goes through it once, and where a free way exists it takes it."""
    g = GridGraph.of(parse_grid_map(AISLE, "aisle"))
    c = [g.index[(0, k)] for k in range(5)]
    state = _Collisions(2)
    state.add(0, [c[2]])
    distance = g.distances_to([c[4]])[0].tolist()
    assert _plan(g, c[0], c[4], distance, state.taken, horizon=20) is None
    path = _plan_soft(g, c[0], c[4], distance, state.taken, horizon=20)
    assert path == [c[0], c[1], c[2], c[3], c[4]]
    assert _partners(state.taken, 1, path) == {0}

    room = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    row = [room.index[(1, k)] for k in range(5)]
    state = _Collisions(2)
    state.add(0, [row[2]])  # stands in the lower row's middle for good
    distance = room.distances_to([row[4]])[0].tolist()
    path = _plan_soft(room, row[0], row[4], distance, state.taken, horizon=20)
    assert path is not None and path[-1] == row[4] and row[2] not in path, "round through the upper row"
    assert _partners(state.taken, 1, path) == set() and len(path) == 7


def test_the_repair_solves_a_room_map_where_one_prioritised_pass_fails(mapf_data: Path) -> None:
    """room-64-64-8 with 250 agents (one pass of prioritised planning leaves an agent without a
    path): a valid solution, its sum of costs under 1.6 of the lower bound (LaCAM's first: over
    1.8)."""
    g, starts, goals, bound = instance(mapf_data, "room-64-64-8", "room-64-64-8-even-1", 250)
    result = repair(g, starts, goals, time_limit_s=120.0)
    assert result.solved
    assert validate_solution(g, starts, goals, result.solution) == []
    assert result.sum_of_costs(goals) / bound < 1.6
    first = lacam(g, starts, goals, time_limit_s=30.0)
    assert first.solved and first.sum_of_costs(goals) / bound > 1.8


def test_agents_that_cannot_pass_each_other_stay_unsolved() -> None:
    g = GridGraph.of(parse_grid_map(AISLE, "aisle"))
    a, b = g.index[(0, 0)], g.index[(0, 4)]
    result = repair(g, [a, b], [b, a], time_limit_s=0.5)
    assert not result.solved and result.solution == [(a, b)]


def _first_passes(
    mapf_data: Path, map_name: str, scen: str, agents: int
) -> tuple[_Collisions | None, _Collisions | None]:
    """The nearest-first pass (giving up past the dense share of failures) and the
    farthest-first one, on the first `agents` of a scenario."""
    g, starts, goals, _ = instance(mapf_data, map_name, scen, agents)
    distance = [row.tolist() for row in g.distances_to(goals)]
    alone = [distance[a][starts[a]] for a in range(agents)]
    horizon, budget = _horizon(alone), _state_budget(g)
    nearest, farthest = _orders(alone)
    near = _first_pass(g, starts, goals, distance, nearest, horizon, budget, NO_LIMIT, int(_DENSE_SHARE * agents))
    far = _first_pass(g, starts, goals, distance, farthest, horizon, budget, NO_LIMIT)
    return near, far


def test_nearest_agents_first_leave_shorter_first_paths_on_the_warehouse(mapf_data: Path) -> None:
    """warehouse-10-20-10-2-1 with 200 agents: planned nearest first the first paths add up to
    19,921 steps against 26,300 farthest first (measured), with fewer collisions to repair."""
    near, far = _first_passes(mapf_data, "warehouse-10-20-10-2-1", "warehouse-10-20-10-2-1-even-1", 200)
    assert near is not None and far is not None
    steps = [sum(len(p) - 1 for p in state.paths) for state in (near, far)]
    assert steps[0] < 0.85 * steps[1], steps
    assert near.pairs(range(200)) <= far.pairs(range(200))


def test_the_nearest_first_pass_gives_up_where_the_map_is_dense(mapf_data: Path) -> None:
    """random-32-32-10 with 400 agents: more than 2 % of them find no collision-free path when
    the far ones come last, so that pass gives up and the farthest-first one plans everybody."""
    near, far = _first_passes(mapf_data, "random-32-32-10", "random-32-32-10-random-1", 400)
    assert near is None
    assert far is not None and all(far.paths)
