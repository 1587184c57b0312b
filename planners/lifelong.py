"""Lifelong multi-agent path finding: goals change whenever an agent reaches one.

Planning is one step at a time with dynamic priorities (an agent's priority grows with every
step it has not reached its goal, and starts again with each new errand). Two action models:

* grid (`turning=False`): each step an agent moves to a 4-neighbour or waits; PIBT with the
  swap rule decides (`planners.mapf.Pibt`).
* turning on the spot (`turning=True`, the League of Robot Runners 2024 model, and that of many
  differential-drive carts): an agent faces east, south, west or north (0..3, clockwise) and each
  step drives one cell straight ahead, turns a quarter either way, or waits; PIBT over
  three-action operations decides (`planners.epibt.OperationPibt`). An agent that stood still
  for `_STUCK_STEPS` steps in a row, asked to make room and unable to, goes first from then on
  (the cart in a dead end whose only way out is through the one that wants in); so does one
  kept from its best operation for `_HELD_STEPS` (stuck ones in random order).

`validate_step` checks every step either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from planners.epibt import OperationPibt
from planners.mapf import NO_AGENT, GridGraph, Pibt

# Without the rule RANDOM-03 (400 agents, first 400 steps) finished 206 tasks, with it 379.
_STUCK_STEPS = 3
# An agent kept from its best operation by others this long goes first too: two carts nose to
# nose at a dead end, the one inside asked for nothing since the other prefers waiting to
# backing out. Sooner (3 steps) cost RANDOM-03 a sixth of its tasks.
_HELD_STEPS = 10


class LifelongPlanner:
    """One step at a time: `step(cells, headings)` gives the next cells and headings."""

    def __init__(self, graph: GridGraph, cells: Sequence[int], seed: int = 0, turning: bool = True) -> None:
        self.graph = graph
        self.turning = turning
        # Grid moves plan with it; both models take its grid distances (`distance_row`).
        self.pibt = Pibt(graph, cells, seed)
        self.ops = OperationPibt(graph, cells, seed) if turning else None
        self.priority = [0.0] * len(cells)
        self.waited = [0] * len(cells)  # turning: steps in a row neither driving nor turning

    def set_goal(self, agent: int, goal: int) -> None:
        self.pibt.set_goal(agent, goal)
        if self.ops is not None:
            self.ops.set_goal(agent, goal)
        self.priority[agent] -= int(self.priority[agent])  # a new errand starts from the tie-break

    def step(self, cells: Sequence[int], headings: Sequence[int]) -> tuple[list[int], list[int]]:
        goals = self.pibt.goals
        self.priority = [p - int(p) if cells[a] == goals[a] else p + 1.0 for a, p in enumerate(self.priority)]
        order = sorted(range(len(cells)), key=lambda a: -self.priority[a])
        if self.ops is None:
            nxt = self.pibt.step(cells, order)
            assert nxt is not None  # no fixed moves: PIBT places everyone
            return nxt, list(headings)
        nxt, new_headings = self.ops.step(cells, headings, order)
        top = max(self.priority, default=0.0)
        stuck = []
        for a in range(len(cells)):
            still = nxt[a] == cells[a] and new_headings[a] == headings[a]
            self.waited[a] = self.waited[a] + 1 if still else 0
            failed, held = a in self.ops.failed, a in self.ops.held
            if (failed and self.waited[a] >= _STUCK_STEPS) or (held and self.waited[a] >= _HELD_STEPS):
                stuck.append(a)
        self.pibt.rng.shuffle(stuck)
        for a in stuck:
            top += 1.0
            self.priority[a] = top
        return nxt, new_headings


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
