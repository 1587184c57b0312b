"""The League of Robot Runners' rules, run against the lifelong planner.

Agents start facing east (when they turn on the spot, the 2024 rules). A pool of
`reveal_per_agent x agents` tasks is open at a time (the next ones from the task file as tasks
finish). A free agent takes the open task whose first
errand is nearest; it visits the errands in order; the task counts when the last one is
reached. Every step is checked with `validate_step` and the run stops on the first invalid one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from maps.lorr import LorrInstance
from planners.lifelong import LifelongPlanner, validate_step
from planners.mapf import GridGraph


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
    horizon = instance.steps if steps is None else steps
    for t in range(horizon):
        began = time.perf_counter()
        for a in range(len(cells)):
            if task_of[a] is None and open_tasks:
                to = planner.pibt.distance_row
                # Nearest first errand: rows are cached per goal, so this stays cheap after warm-up.
                best = min(open_tasks, key=lambda k: to(tasks[k][0])[cells[a]])
                open_tasks.discard(best)
                task_of[a], errand[a] = best, 0
                planner.set_goal(a, tasks[best][0])
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
