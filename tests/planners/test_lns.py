"""Anytime MAPF refinement (LNS): every refined solution passes the validator, is never worse
than the one it starts from, and on a benchmark instance is clearly better."""

from __future__ import annotations

from pathlib import Path

from maps.movingai import parse_grid_map
from planners.lns import _plan, _Reservations, configurations, paths_of, prioritised, refine
from planners.mapf import GridGraph, MapfResult, lacam, validate_solution
from tests.planners.benchmark import instance

CORRIDOR = "type octile\nheight 3\nwidth 5\nmap\n.....\n.....\n@@@@@\n"


def test_a_replanned_agent_waits_for_its_goal_to_be_free_for_good_and_never_swaps() -> None:
    """Agent b runs along the lower row of a 2x5 room and passes cell (1, 2) at t=2; agent a,
    whose goal that cell is, may reach it only once b is through, and its path keeps out of b's
    cells and moves."""
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    row = [g.index[(1, k)] for k in range(5)]
    taken = _Reservations()
    taken.add(1, row)  # b: (1,0) -> (1,4), at (1,2) at t=2, parked at (1,4) from t=4
    start, goal = g.index[(0, 2)], row[2]
    distance = g.distances_to([goal])[0].tolist()
    path = _plan(g, start, goal, distance, taken, horizon=20)
    assert path is not None and path[0] == start and path[-1] == goal
    assert len(path) - 1 >= 3, "arrives after b has passed at t=2"
    for t, v in enumerate(path):
        assert not taken.occupied(t, v), f"t={t}: on b's cell"
        if t:
            assert (t, v, path[t - 1]) not in taken.moves, f"t={t}: swaps with b"
    assert _plan(g, start, row[4], g.distances_to([row[4]])[0].tolist(), taken, horizon=20) is None, (
        "b holds its goal for good"
    )


def test_paths_and_configurations_round_trip() -> None:
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    a, b = g.index[(0, 0)], g.index[(1, 4)]
    first = lacam(g, (a, b), (b, a))
    assert first.solved
    goals = (b, a)
    paths = paths_of(first.solution, goals)
    assert sum(len(p) - 1 for p in paths) == first.sum_of_costs(goals)
    assert all(p[-1] == goal for p, goal in zip(paths, goals, strict=True))
    again = configurations(paths)
    assert validate_solution(g, (a, b), goals, again) == []


def test_refinement_on_the_warehouse_benchmark(mapf_data: Path) -> None:
    """warehouse-10-20-10-2-1 with 50 agents: LaCAM's first solution costs 1.27 x the lower
    bound; 300 rounds of LNS bring it under 1.1, valid at the end, and never worse on the way."""
    g, starts, goals, bound = instance(mapf_data, "warehouse-10-20-10-2-1", "warehouse-10-20-10-2-1-even-1", 50)
    first = lacam(g, starts, goals)
    assert first.solved
    costs = [first.sum_of_costs(goals)]
    result: MapfResult = first
    for _ in range(3):
        result = refine(g, goals, result, time_limit_s=120.0, max_rounds=100, seed=len(costs))
        assert validate_solution(g, starts, goals, result.solution) == []
        costs.append(result.sum_of_costs(goals))
    assert costs == sorted(costs, reverse=True), "never worse"
    assert costs[0] / bound > 1.2 and costs[-1] / bound < 1.1, [c / bound for c in costs]


def test_an_unsolved_first_result_is_returned_as_it_is() -> None:
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    unsolved = MapfResult([(0, 1)], False, 0.0)
    assert refine(g, (1, 0), unsolved, time_limit_s=1.0) is unsolved


def test_safe_intervals_are_the_gaps_between_visits_and_end_where_an_agent_parks() -> None:
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    row = [g.index[(1, k)] for k in range(5)]
    taken = _Reservations()
    taken.add(0, [row[0], row[1], row[1], row[2]])  # on row[1] at t=1 and 2, parked on row[2] from t=3
    taken.add(1, [row[3], row[3], row[3], row[3], row[3], row[1]])  # on row[1] at t=5, parked there
    assert taken.safe_intervals(row[0]) == [(1, float("inf"))]
    assert taken.safe_intervals(row[1]) == [(0, 0), (3, 4)]
    assert taken.safe_intervals(row[2]) == [(0, 2)]
    assert taken.free_after(row[1]) == 6
    taken.remove(1, [row[3], row[3], row[3], row[3], row[3], row[1]])
    assert taken.safe_intervals(row[1]) == [(0, 0), (3, float("inf"))]


def test_a_search_over_its_state_budget_gives_up() -> None:
    """Across the 2x5 room in one go needs 5 states; with 3 allowed the search returns None."""
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    start, goal = g.index[(0, 0)], g.index[(0, 4)]
    distance = g.distances_to([goal])[0].tolist()
    assert _plan(g, start, goal, distance, _Reservations(), horizon=20) == [g.index[(0, k)] for k in range(5)]
    assert _plan(g, start, goal, distance, _Reservations(), horizon=20, max_expanded=3) is None


def test_a_bounded_search_finds_a_path_that_arrives_by_the_bound_and_none_sooner() -> None:
    """The search drops states that cannot arrive by `horizon` (its estimate counts the way to
    the goal and the wait until the goal is free for good): with the bound at the best arrival
    it still finds that path, one step below it finds none. Agent b passes a's goal at t=2 and
    parks at the row's end, so a, three steps from its goal, can arrive at t=3 at the earliest."""
    g = GridGraph.of(parse_grid_map(CORRIDOR, "corridor"))
    row = [g.index[(1, k)] for k in range(5)]
    taken = _Reservations()
    taken.add(1, row)
    start, goal = g.index[(0, 0)], row[2]
    distance = g.distances_to([goal])[0].tolist()
    best = _plan(g, start, goal, distance, taken, horizon=20)
    assert best is not None
    arrival = len(best) - 1
    assert arrival == 3, best
    assert _plan(g, start, goal, distance, taken, horizon=arrival) == best
    assert _plan(g, start, goal, distance, taken, horizon=arrival - 1) is None
    # Waiting for the goal to be free: from the cell above it, one step away, the best arrival is
    # t=3 all the same, since b passes the goal at t=2.
    near = g.index[(0, 2)]
    assert _plan(g, near, goal, distance, taken, horizon=2) is None
    assert _plan(g, near, goal, distance, taken, horizon=3) is not None


def test_prioritised_planning_starts_far_below_lacams_first_solution(mapf_data: Path) -> None:
    """warehouse-10-20-10-2-1 with 50 agents: prioritised SIPP solves it at 1.13 x the lower
    bound (LaCAM's first solution: 1.27), valid."""
    g, starts, goals, bound = instance(mapf_data, "warehouse-10-20-10-2-1", "warehouse-10-20-10-2-1-even-1", 50)
    result = prioritised(g, starts, goals, time_limit_s=60.0)
    assert result.solved
    assert validate_solution(g, starts, goals, result.solution) == []
    assert result.sum_of_costs(goals) / bound < 1.2 < lacam(g, starts, goals).sum_of_costs(goals) / bound


def test_prioritised_planning_says_unsolved_when_agents_cannot_pass() -> None:
    """Two agents trading ends of a one-cell-wide corridor: no order of them has a plan."""
    g = GridGraph.of(parse_grid_map("type octile\nheight 1\nwidth 5\nmap\n.....\n", "aisle"))
    ends = (g.index[(0, 0)], g.index[(0, 4)])
    result = prioritised(g, ends, ends[::-1], time_limit_s=0.2)
    assert not result.solved
