"""A Moving AI benchmark instance for the planner tests: the map's graph, the first agents of a
scenario and the lower bound on their sum of costs."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from maps.movingai import load_grid_map, load_scenario
from planners.mapf import GridGraph


class Instance(NamedTuple):
    graph: GridGraph
    starts: list[int]
    goals: list[int]
    bound: int  # the sum of each agent's shortest path alone


def instance(mapf_data: Path, map_name: str, scen: str, agents: int) -> Instance:
    g = GridGraph.of(load_grid_map(mapf_data / "maps" / f"{map_name}.map"))
    pairs = load_scenario(mapf_data / "scen" / f"{scen}.scen", agents)
    starts, goals = [g.index[a] for a, _ in pairs], [g.index[b] for _, b in pairs]
    distance = g.distances_to(goals)
    return Instance(g, starts, goals, sum(int(distance[k][s]) for k, s in enumerate(starts)))
