"""Lifelong MAPF: the step validator catches each mistake; the planner's steps pass it, agents
keep finishing tasks, and the LoRR loader names broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maps.lorr import load_lorr_instance
from maps.movingai import parse_grid_map
from planners.lifelong import validate_step
from planners.mapf import GridGraph
from sim.lorr import run_lorr

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
    finish about 220 tasks in 200 steps, turning on the spot about 80 (measured)."""
    instance = load_lorr_instance(mapf_data / "lorr2024" / "random.domain" / "RANDOM-01.json")
    assert (len(instance.starts), instance.steps, instance.reveal_per_agent) == (100, 600, 1.5)
    result = run_lorr(instance, steps=200, turning=turning)
    assert result.problems == ()
    assert result.tasks_finished >= (50 if turning else 150)


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
