"""The League of Robot Runners' rules, run against the lifelong planner.

Agents start facing east (when they turn on the spot, the 2024 rules). A pool of
`reveal_per_agent x agents` tasks is open at a time (the next ones from the task file as tasks
finish). An agent visits its task's errands in order; the task counts when the last one is
reached. Every step is checked with `validate_step` and the run stops on the first invalid one.

Which agent does which task is decided again every step, as the rules allow until a task's first
errand is reached: the agents with no task or short of their first errand, and the open tasks
with those they hold, are matched at least total cost (`scipy.optimize.linear_sum_assignment`),
a task costing `REACH_WEIGHT` x the way to its first errand plus the way through its errands
(grid distances). Against the first rule tried (a free agent takes the open task whose first
errand is nearest, for good), RANDOM-03 went from 726 to 922 tasks.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from maps.lorr import LorrInstance
from planners.lifelong import LifelongPlanner, validate_step
from planners.mapf import GridGraph

# The way to a task's first errand against the way through it. RANDOM-03 (800 steps), tasks at
# 1, 1.5, 2, 5, 10 and 1000 (nearest first errand): 878, 851, 922, 853, 806, 796; a single run
# of each, so the spread between neighbours is noise as much as signal.
REACH_WEIGHT = 2.0


@dataclass(frozen=True)
class LorrResult:
    instance: str
    agents: int
    steps: int
    tasks_finished: int
    step_seconds: tuple[float, ...]
    problems: tuple[str, ...]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.step_seconds)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


class GridWays:
    """Grid distances to a goal from every cell, as arrays, and the way through a task's
    errands, cached; the distances come from `rows` (the planner's own cache, so each goal's
    search runs once)."""

    def __init__(self, rows: Callable[[int], Sequence[float]]) -> None:
        self._source = rows
        self._rows: dict[int, npt.NDArray[np.float64]] = {}
        self._lengths: dict[tuple[int, ...], float] = {}

    def row(self, goal: int) -> npt.NDArray[np.float64]:
        if goal not in self._rows:
            self._rows[goal] = np.asarray(self._source(goal))
        return self._rows[goal]

    def length(self, errands: tuple[int, ...]) -> float:
        if errands not in self._lengths:
            self._lengths[errands] = float(sum(self.row(b)[a] for a, b in itertools.pairwise(errands)))
        return self._lengths[errands]


def assign_tasks(cells: Sequence[int], tasks: Sequence[tuple[int, ...]], ways: GridWays) -> list[int | None]:
    """For agents standing on `cells`, the index of the task each takes (None: no task left),
    at least total cost."""
    reach = np.stack([ways.row(errands[0]) for errands in tasks])[:, list(cells)].T
    cost = REACH_WEIGHT * reach + np.array([ways.length(errands) for errands in tasks])
    # A task cut off from an agent costs more than any other, not infinitely: the assignment
    # must stay solvable.
    picked, chosen = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e12))
    choice: list[int | None] = [None] * len(cells)
    for i, j in zip(picked, chosen, strict=True):
        choice[i] = int(j)
    return choice


def run_lorr(
    instance: LorrInstance,
    steps: int | None = None,
    seed: int = 0,
    turning: bool = True,
    progress: Callable[[int], None] | None = None,
) -> LorrResult:
    graph = GridGraph.of(instance.grid)
    cells = [graph.index[c] for c in instance.starts]
    headings = [0] * len(cells)
    planner = LifelongPlanner(graph, cells, seed, turning)
    tasks = [tuple(graph.index[c] for c in task) for task in instance.tasks]
    pool_size = math.ceil(instance.reveal_per_agent * len(cells))
    revealed = min(pool_size, len(tasks))
    open_tasks = set(range(revealed))
    task_of: list[int | None] = [None] * len(cells)
    errand = [0] * len(cells)
    finished = 0
    times: list[float] = []
    ways = GridWays(planner.pibt.distance_row)

    horizon = instance.steps if steps is None else steps
    for t in range(horizon):
        began = time.perf_counter()
        free = [a for a in range(len(cells)) if task_of[a] is None or errand[a] == 0]
        pool = sorted(open_tasks | {k for a in free if (k := task_of[a]) is not None})
        if free and pool:
            choice = assign_tasks([cells[a] for a in free], [tasks[k] for k in pool], ways)
            assigned = {a: pool[j] for a, j in zip(free, choice, strict=True) if j is not None}
            for a in free:
                k = assigned.get(a)
                if k != task_of[a]:
                    task_of[a], errand[a] = k, 0
                    if k is not None:
                        planner.set_goal(a, tasks[k][0])
            open_tasks = set(pool) - set(assigned.values())
        new_cells, new_headings = planner.step(cells, headings)
        times.append(time.perf_counter() - began)
        problems = validate_step(graph, cells, headings, new_cells, new_headings, turning)
        if problems:
            return LorrResult(instance.name, len(cells), t, finished, tuple(times), tuple(problems))
        cells, headings = new_cells, new_headings
        for a in range(len(cells)):
            task = task_of[a]
            if task is None or cells[a] != tasks[task][errand[a]]:
                continue
            errand[a] += 1
            if errand[a] < len(tasks[task]):
                planner.set_goal(a, tasks[task][errand[a]])
                continue
            finished += 1
            task_of[a] = None
            if revealed < len(tasks):
                open_tasks.add(revealed)
                revealed += 1
        if progress is not None:
            progress(t)
    return LorrResult(instance.name, len(cells), horizon, finished, tuple(times), ())
