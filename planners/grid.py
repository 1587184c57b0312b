"""Grid graphs for multi-agent path finding, their solutions, and the validator every planner's
output goes through: continuity, vertex conflicts (two agents in one cell), swap conflicts (two
agents trading cells in one step), and that the first configuration holds the starts and the last
the goals. A solution is a list of configurations, one per time step, each giving every agent's
cell index; agents move to a 4-neighbour or wait."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from maps.movingai import Cell, GridMap

Config = tuple[int, ...]
_DIRECTIONS = {(0, 1): 0, (1, 0): 1, (0, -1): 2, (-1, 0): 3}


@dataclass(frozen=True, eq=False)
class GridGraph:
    """Passable cells as vertices 0..n-1 with 4-neighbour adjacency."""

    grid: GridMap
    cells: npt.NDArray[np.int32]  # vertex -> (row, col)
    index: dict[Cell, int]
    neighbours: tuple[tuple[int, ...], ...]
    ahead: tuple[tuple[int, int, int, int], ...]  # vertex -> the neighbour east/south/west/north, or -1

    @classmethod
    def of(cls, grid: GridMap) -> GridGraph:
        rows, cols = np.nonzero(grid.passable)
        cells = np.stack([rows, cols], axis=1).astype(np.int32)
        index = {(int(r), int(c)): i for i, (r, c) in enumerate(cells)}
        neighbours = []
        for r, c in cells:
            around = ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
            neighbours.append(tuple(index[(int(a), int(b))] for a, b in around if (int(a), int(b)) in index))
        ahead = []
        for r, c in cells:
            e, s, w, n = (index.get((int(r) + dr, int(c) + dc), -1) for (dr, dc) in _DIRECTIONS)
            ahead.append((e, s, w, n))
        return cls(grid, cells, index, tuple(neighbours), tuple(ahead))

    def direction(self, u: int, v: int) -> int:
        """Heading from u to its neighbour v: 0 east, 1 south, 2 west, 3 north (clockwise)."""
        dr = int(self.cells[v][0]) - int(self.cells[u][0])
        dc = int(self.cells[v][1]) - int(self.cells[u][1])
        return _DIRECTIONS[(dr, dc)]

    def turns(self, facing: int, u: int, v: int) -> int:
        """Quarter turns to face from u towards v (0 when v is u)."""
        if u == v:
            return 0
        diff = (self.direction(u, v) - facing) % 4
        return min(diff, 4 - diff)

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
    graph: GridGraph, starts: Sequence[int], goals: Sequence[int], solution: Sequence[Sequence[int]]
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
