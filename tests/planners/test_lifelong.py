"""Lifelong MAPF: the step validator catches each mistake; the planner's steps pass it, agents
keep finishing tasks, and the LoRR loader names broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maps.lorr import load_lorr_instance
from maps.movingai import parse_grid_map
from planners.epibt import OPERATIONS, REFRESH_STEPS, WAIT, OperationPibt
from planners.lifelong import LifelongPlanner, validate_step
from planners.mapf import GridGraph, Pibt
from sim.lorr import GridWays, assign_tasks, run_lorr

ROOM = "type octile\nheight 2\nwidth 3\nmap\n...\n...\n"


def test_step_validator_catches_each_kind_of_mistake() -> None:
    g = GridGraph.of(parse_grid_map(ROOM))
    a, b, c = (g.index[(0, k)] for k in range(3))
    below = g.index[(1, 0)]
    east, south = 0, 1

    def problems(cells: list[int], heads: list[int], new: list[int], new_heads: list[int], turning: bool) -> str:
        return "\n".join(validate_step(g, cells, heads, new, new_heads, turning))

    assert problems([a], [east], [b], [east], True) == ""
    assert "jumps" in problems([a], [east], [c], [east], False)
    assert "other than straight ahead" in problems([a], [east], [below], [south], True)
    assert "other than straight ahead" in problems([a], [east], [b], [south], True)
    assert "half round" in problems([a], [east], [a], [2], True)
    assert "vertex conflict between agents 0 and 1" in problems([a, c], [east, 2], [b, b], [east, 2], True)
    assert "swap conflict between agents 0 and 1" in problems([a, b], [east, 2], [b, a], [east, 2], True)
    assert problems([a, b], [east, 2], [b, a], [east, 2], False).count("swap") == 1


@pytest.mark.parametrize("turning", [True, False])
def test_random_instance_runs_valid_and_finishes_tasks(mapf_data: Path, turning: bool) -> None:
    """RANDOM-01 (100 agents) for 200 steps: every step valid; tasks keep finishing. Grid moves
    finish 260 tasks in 200 steps, turning on the spot 190 (measured; with each free agent
    taking the nearest task for good, 220 and 161: the bounds fail without the matching; 47
    before planning three-action operations)."""
    instance = load_lorr_instance(mapf_data / "lorr2024" / "random.domain" / "RANDOM-01.json")
    assert (len(instance.starts), instance.steps, instance.reveal_per_agent) == (100, 600, 1.5)
    result = run_lorr(instance, steps=200, turning=turning)
    assert result.problems == ()
    assert result.tasks_finished >= (175 if turning else 240)


def test_tasks_go_to_agents_at_least_total_cost() -> None:
    """On a corridor, agents at cells 3 and 8, one-errand tasks at 5 and 0: the nearest task of
    the first agent (5) would leave the second 8 cells to go; matched, each goes 3. A longer
    task counts its errands: of two tasks starting at 5, the one going on to 9 (4 more) loses to
    the one going on to 6 (1 more) when only one agent is free."""
    g = GridGraph.of(parse_grid_map("type octile\nheight 1\nwidth 10\nmap\n..........\n"))
    ways = GridWays(Pibt(g, []).distance_row)
    assert assign_tasks([3, 8], [(5,), (0,)], ways) == [1, 0]
    assert assign_tasks([5], [(5, 9), (5, 6)], ways) == [1]
    assert assign_tasks([1, 2], [(4,)], ways) == [None, 0]


def test_dense_instance_steps_stay_valid(mapf_data: Path) -> None:
    """RANDOM-03: 400 agents on about 820 free cells, turning on the spot; 60 steps, each
    validated (no two agents in a cell or trading cells, only straight-ahead drives)."""
    instance = load_lorr_instance(mapf_data / "lorr2024" / "random.domain" / "RANDOM-03.json")
    result = run_lorr(instance, steps=60, turning=True)
    assert result.problems == ()
    assert result.tasks_finished >= 20  # 30 measured


def test_operations_are_distinct_and_complete() -> None:
    """Three actions of four kinds, one sequence per effect: 31 in all, standing still and
    driving three cells among them, no turn undone within one operation."""
    assert len(OPERATIONS) == 31 and len(set(OPERATIONS)) == 31
    assert (WAIT, WAIT, WAIT) in OPERATIONS and (0, 0, 0) in OPERATIONS
    assert all("12" not in "".join(map(str, op)).replace("3", "") for op in OPERATIONS)
    assert all("21" not in "".join(map(str, op)).replace("3", "") for op in OPERATIONS)


def test_state_distances_count_turns_and_the_grain() -> None:
    """From the west end of a row facing west, the east end is two turns and three drives away;
    against the row's way (even rows run east, odd ones west) each drive costs 1 more, and no
    detour through the other row is cheaper here."""
    g = GridGraph.of(parse_grid_map("type octile\nheight 2\nwidth 4\nmap\n....\n....\n"))
    east, west = 0, 2
    plain = OperationPibt(g, [g.index[(0, 3)], g.index[(1, 3)]], against_grain=0.0)
    assert plain.state_distances(g.index[(0, 3)])[4 * g.index[(0, 0)] + west] == 5
    assert plain.state_distances(g.index[(0, 3)])[4 * g.index[(0, 0)] + east] == 3
    graded = OperationPibt(g, [g.index[(0, 3)], g.index[(1, 3)]], against_grain=1.0)
    assert graded.state_distances(g.index[(0, 3)])[4 * g.index[(0, 0)] + east] == 3  # row 0 runs east
    assert graded.state_distances(g.index[(1, 3)])[4 * g.index[(1, 0)] + east] == 6  # row 1 runs west: 3 drives at 2
    assert plain.state_distances(g.index[(1, 3)])[4 * g.index[(1, 0)] + east] == 3


def test_costs_follow_the_traffic_away_from_an_oncoming_flow() -> None:
    """Two rows of 6, no grain. Two agents stand on row 0 facing east, at other cells each step,
    for 40 steps (one refresh), as if a flow drove east along it: from the east end of row 0
    facing west, the best way to its west end is no longer straight along row 0 (5 drives) but
    round by row 1. Without guidance the costs stay as they were."""
    g = GridGraph.of(parse_grid_map("type octile\nheight 2\nwidth 6\nmap\n......\n......\n"))
    west, south = 2, 1
    goal, start = g.index[(0, 0)], g.index[(0, 5)]
    guided = OperationPibt(g, [goal, goal], against_grain=0.0)
    alone = OperationPibt(g, [goal, goal], against_grain=0.0, guidance=False)
    assert guided.state_distances(goal)[4 * start + west] == 5
    for t in range(REFRESH_STEPS):
        flow = [g.index[(0, (t + k) % 6)] for k in (0, 3)]
        for planner in (guided, alone):
            planner.step(flow, [0, 0], [0, 1])
    best = guided.state_distances(goal)[4 * start + west]
    round_by_row_1 = 2 + guided.state_distances(goal)[4 * g.index[(1, 5)] + south]  # turn south, drive down
    assert best > 5 and best == pytest.approx(round_by_row_1), (best, round_by_row_1)
    assert alone.state_distances(goal)[4 * start + west] == 5


def test_cart_in_a_dead_end_gets_out_and_the_other_gets_in() -> None:
    """A one-cell-wide dead end: A stands at its end facing out, with a goal in the open; B,
    facing A, wants A's cell. B must turn round and back out of the aisle first. Both reach
    their goals, every step valid (without the rule that lets a long-held agent go first, they
    waited for each other for ever: checked)."""
    rows = [".........", "######...", "######..."]
    g = GridGraph.of(parse_grid_map(f"type octile\nheight 3\nwidth 9\nmap\n{chr(10).join(rows)}\n"))
    cells, heads = [g.index[(0, 1)], g.index[(0, 0)]], [2, 0]  # B facing west, A facing east
    goals = [g.index[(0, 0)], g.index[(2, 8)]]
    planner = LifelongPlanner(g, cells, seed=0, turning=True)
    for agent, goal in enumerate(goals):
        planner.set_goal(agent, goal)
    reached: set[int] = set()
    for _ in range(60):
        new_cells, new_heads = planner.step(cells, heads)
        assert validate_step(g, cells, heads, new_cells, new_heads, True) == []
        cells, heads = new_cells, new_heads
        reached |= {a for a in (0, 1) if cells[a] == goals[a]}
    assert reached == {0, 1}


def test_lorr_loader_names_broken_files(tmp_path: Path) -> None:
    folder = tmp_path / "x.domain"
    (folder / "maps").mkdir(parents=True)
    (folder / "maps" / "m.map").write_text("type octile\nheight 1\nwidth 3\nmap\n.@.\n")
    (folder / "a.agents").write_text("# agents\n2\n0\n1\n")
    (folder / "t.tasks").write_text("# tasks\n1\n0,2\n")
    (tmp_path / "simulation_time.json").write_text('{"X": 10}')
    spec = {"mapFile": "maps/m.map", "agentFile": "a.agents", "taskFile": "t.tasks", "teamSize": 2, "numTasksReveal": 1}
    (folder / "X.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"cell 1 \(0, 1\) is blocked"):
        load_lorr_instance(folder / "X.json")
    (folder / "a.agents").write_text("# agents\nmany\n0\n")
    with pytest.raises(ValueError, match="line 2 must be the number of entries"):
        load_lorr_instance(folder / "X.json")
    (folder / "a.agents").write_text("# agents\n2\n0\n")
    with pytest.raises(ValueError, match="says 2 entries, holds 1"):
        load_lorr_instance(folder / "X.json")
    (folder / "a.agents").write_text("# agents\n2\n0\n2\n")
    loaded = load_lorr_instance(folder / "X.json")
    assert loaded.starts == ((0, 0), (0, 2)) and loaded.tasks == (((0, 0), (0, 2)),) and loaded.steps == 10
