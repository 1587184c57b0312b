"""Multi-agent path finding on grids: PIBT, and the validator every planner's output goes through.

A solution is a list of configurations, one per time step, each giving every agent's cell index;
agents move to a 4-neighbour or wait. `validate_solution` checks continuity, vertex conflicts
(two agents in one cell), swap conflicts (two agents trading cells in one step), and that the
first configuration holds the starts and the last the goals.

PIBT (Okumura et al., "Priority Inheritance with Backtracking for Iterative Multi-agent Path
Finding", AIJ 2022) plans one step at a time: agents in priority order take their best free
neighbour; an agent in the way inherits the priority and must move on, or the choice backtracks.
Priorities grow while an agent is away from its goal, so every agent gets its turn. Fast and
scalable; it can livelock in narrow aisles (it is not complete for one-shot problems).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from maps.movingai import Cell, GridMap

Config = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class GridGraph:
    """Passable cells as vertices 0..n-1 with 4-neighbour adjacency."""

    grid: GridMap
    cells: npt.NDArray[np.int32]  # vertex -> (row, col)
    index: dict[Cell, int]
    neighbours: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, grid: GridMap) -> GridGraph:
        rows, cols = np.nonzero(grid.passable)
        cells = np.stack([rows, cols], axis=1).astype(np.int32)
        index = {(int(r), int(c)): i for i, (r, c) in enumerate(cells)}
        neighbours = []
        for r, c in cells:
            around = ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
            neighbours.append(tuple(index[(int(a), int(b))] for a, b in around if (int(a), int(b)) in index))
        return cls(grid, cells, index, tuple(neighbours))

    def distances_to(self, goals: Sequence[int]) -> npt.NDArray[np.float64]:
        """Row k: steps from every vertex to goals[k] (inf when cut off), in C (scipy BFS)."""
        n = len(self.neighbours)
        src = [i for i, ns in enumerate(self.neighbours) for _ in ns]
        dst = [j for ns in self.neighbours for j in ns]
        adjacency = csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
        return np.asarray(shortest_path(adjacency, directed=False, unweighted=True, indices=list(goals)))


@dataclass(frozen=True)
class MapfResult:
    solution: list[Config]
    solved: bool
    seconds: float

    @property
    def makespan(self) -> int:
        return len(self.solution) - 1

    def sum_of_costs(self, goals: Sequence[int]) -> int:
        """Per agent, the last step at which it was not yet at its goal for good, summed."""
        total = 0
        for agent, goal in enumerate(goals):
            cost = 0
            for t in range(len(self.solution) - 1, 0, -1):
                if self.solution[t - 1][agent] != goal:
                    cost = t
                    break
            total += cost
        return total


def validate_solution(
    graph: GridGraph, starts: Sequence[int], goals: Sequence[int], solution: list[Config]
) -> list[str]:
    """Every problem of a solution, by time step and agents; empty when valid."""
    problems: list[str] = []
    if not solution:
        return ["empty solution"]
    if tuple(solution[0]) != tuple(starts):
        problems.append("first configuration is not the starts")
    if tuple(solution[-1]) != tuple(goals):
        problems.append("last configuration is not the goals")
    for t, config in enumerate(solution):
        seen: dict[int, int] = {}
        for agent, v in enumerate(config):
            if v in seen:
                problems.append(
                    f"t={t}: vertex conflict between agents {seen[v]} and {agent} at {graph.cells[v].tolist()}"
                )
            seen[v] = agent
        if t == 0:
            continue
        before = solution[t - 1]
        at_before = {v: a for a, v in enumerate(before)}
        for agent, v in enumerate(config):
            u = before[agent]
            if v != u and v not in graph.neighbours[u]:
                problems.append(
                    f"t={t}: agent {agent} jumps from {graph.cells[u].tolist()} to {graph.cells[v].tolist()}"
                )
            other = at_before.get(v)
            if other is not None and other != agent and config[other] == u and agent < other:
                problems.append(f"t={t}: swap conflict between agents {agent} and {other}")
    return problems


def pibt(
    graph: GridGraph,
    starts: Sequence[int],
    goals: Sequence[int],
    max_steps: int = 10_000,
    time_limit_s: float = 10.0,
    seed: int = 0,
) -> MapfResult:
    """One-shot PIBT: step until every agent stands on its goal, or the step or time limit."""
    began = time.perf_counter()
    n = len(starts)
    unique_goals = sorted(set(goals))
    dist_rows = graph.distances_to(unique_goals)
    row_of = {g: k for k, g in enumerate(unique_goals)}
    dist = [dist_rows[row_of[g]] for g in goals]
    rng = np.random.default_rng(seed)
    priority = [float(dist[i][starts[i]]) / max(1, graph.grid.passable.size) for i in range(n)]
    base = list(priority)
    config: list[int] = list(starts)
    solution: list[Config] = [tuple(config)]
    while tuple(config) != tuple(goals):
        if len(solution) > max_steps or time.perf_counter() - began > time_limit_s:
            return MapfResult(solution, False, time.perf_counter() - began)
        config = _step(graph, config, goals, dist, priority, rng)
        solution.append(tuple(config))
        for i in range(n):
            priority[i] = base[i] if config[i] == goals[i] else priority[i] + 1.0
    return MapfResult(solution, True, time.perf_counter() - began)


def _step(
    graph: GridGraph,
    current: list[int],
    goals: Sequence[int],
    dist: list[npt.NDArray[np.float64]],
    priority: list[float],
    rng: np.random.Generator,
) -> list[int]:
    n = len(current)
    unset = -1
    nxt = [unset] * n
    taken: dict[int, int] = {}  # vertex -> agent that will be there next step
    standing = {v: a for a, v in enumerate(current)}

    def plan(agent: int, parent: int) -> bool:
        here = current[agent]
        options = [*graph.neighbours[here], here]
        # Independent random tie-breaks per agent and call: shared ones correlate choices and livelock.
        jitter = rng.random(len(options))
        order = sorted(range(len(options)), key=lambda k: (dist[agent][options[k]], jitter[k]))
        options = [options[k] for k in order]
        for v in options:
            if v in taken:
                continue
            if parent != unset and v == current[parent]:
                continue  # would swap with the agent that pushed us
            taken[v] = agent
            nxt[agent] = v
            blocker = standing.get(v)
            if blocker is not None and blocker != agent and nxt[blocker] == unset and not plan(blocker, agent):
                continue  # the blocker could not make room; it keeps v, try the next option
            return True
        nxt[agent] = here
        taken[here] = agent
        return False

    for agent in sorted(range(n), key=lambda a: -priority[a]):
        if nxt[agent] == unset:
            plan(agent, unset)
    return nxt
