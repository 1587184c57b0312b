"""Lifelong multi-agent path finding: goals change whenever an agent reaches one.

Planning is one step at a time with PIBT and dynamic priorities. Two action models:

* grid (`turning=False`): each step an agent moves to a 4-neighbour or waits; PIBT with the
  swap rule decides.
* turning on the spot (`turning=True`, the League of Robot Runners 2024 model, and that of many
  differential-drive carts): an agent faces east, south, west or north (0..3, clockwise) and each
  step drives one cell straight ahead, turns a quarter either way, or waits.
  1. PIBT decides who drives: an agent's only move is straight ahead (or to stay), so a pushed
     agent can only make room by driving on; PIBT's guarantee (no two agents in a cell, no two
     trading places) holds for the moves as they will be made.
  2. An agent that stays turns towards the neighbour that leads on soonest, steering around
     agents that stood still once it has been blocked a few steps.

`validate_step` checks every step either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from planners.mapf import NO_AGENT, GridGraph, Pibt


class LifelongPlanner:
    """One step at a time: `step(cells, headings)` gives the next cells and headings."""

    def __init__(self, graph: GridGraph, cells: Sequence[int], seed: int = 0, turning: bool = True) -> None:
        self.graph = graph
        self.turning = turning
        self.pibt = Pibt(graph, cells, seed, swap=not turning)
        self.priority = [0.0] * len(cells)
        self.waited = [0] * len(cells)  # steps in a row without moving

    def set_goal(self, agent: int, goal: int) -> None:
        self.pibt.set_goal(agent, goal)
        self.priority[agent] -= int(self.priority[agent])  # a new errand starts from the tie-break

    def step(self, cells: Sequence[int], headings: Sequence[int]) -> tuple[list[int], list[int]]:
        n = len(cells)
        goals = self.pibt.goals
        self.priority = [p - int(p) if cells[a] == goals[a] else p + 1.0 for a, p in enumerate(self.priority)]
        order = sorted(range(n), key=lambda a: -self.priority[a])
        wanted = list(headings)
        if self.turning:
            # Cells of agents that did not move last step: the ones worth steering around.
            standing = {v for a, v in enumerate(cells) if self.waited[a] > 0}
            wanted = [self._wanted(a, cells[a], headings[a], standing) for a in range(n)]
            self.pibt.headings = list(headings)
            self.pibt.prefer_ahead = [w == h for w, h in zip(wanted, headings, strict=True)]
        nxt = self.pibt.step(cells, order)
        assert nxt is not None  # no fixed moves: PIBT places everyone
        new_headings = list(headings)
        for a in range(n):
            if nxt[a] != cells[a]:
                self.waited[a] = 0
                new_headings[a] = self.graph.direction(cells[a], nxt[a])
                continue
            self.waited[a] += 1
            facing = headings[a]
            if wanted[a] != facing:
                new_headings[a] = (facing + (1 if (wanted[a] - facing) % 4 in (1, 2) else -1)) % 4
        return nxt, new_headings

    def _wanted(self, agent: int, here: int, facing: int, standing: set[int]) -> int:
        """The heading to drive on: towards the neighbour that leads on soonest; after a few
        blocked steps, away from agents standing still (two carts nose to nose in an aisle would
        otherwise wait for each other for ever). Facing on when at the goal."""
        dist = self.pibt.dist[agent]
        if dist[here] == 0:
            return facing
        crowded = 0.5 if self.waited[agent] < 3 else 4.0
        rand = self.pibt.rng.random
        best = min(
            self.graph.neighbours[here],
            key=lambda v: (
                dist[v] + 0.4 * self.graph.turns(facing, here, v) + (crowded if v in standing else 0.0) + 0.3 * rand()
            ),
        )
        return self.graph.direction(here, best)


def validate_step(
    graph: GridGraph,
    cells: Sequence[int],
    headings: Sequence[int],
    new_cells: Sequence[int],
    new_headings: Sequence[int],
    turning: bool,
) -> list[str]:
    """Every problem with one step: a jump, driving other than straight ahead or turning while
    driving (when turning), more than a quarter turn, two agents in a cell, two trading cells."""
    problems: list[str] = []
    after: dict[int, int] = {}
    for a, (u, v) in enumerate(zip(cells, new_cells, strict=True)):
        if v != u and v not in graph.neighbours[u]:
            problems.append(f"agent {a} jumps from {graph.cells[u].tolist()} to {graph.cells[v].tolist()}")
        if turning:
            turn = (new_headings[a] - headings[a]) % 4
            if v != u and (graph.ahead[u][headings[a]] != v or turn != 0):
                problems.append(f"agent {a} moves other than straight ahead")
            if turn == 2:
                problems.append(f"agent {a} turns half round in one step")
        if v in after:
            problems.append(f"vertex conflict between agents {after[v]} and {a}")
        after[v] = a
    before = {v: a for a, v in enumerate(cells)}
    for v, a in after.items():
        other = before.get(v)
        if other is not None and a < other and after.get(cells[a]) == other and cells[a] != v:
            problems.append(f"swap conflict between agents {a} and {other}")
    return problems


__all__ = ["NO_AGENT", "LifelongPlanner", "validate_step"]
