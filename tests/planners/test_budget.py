"""The planners' time budget: what is spent and left by its clock, parts that never outlast it,
and planners that stop when a budget shared with their caller is spent."""

from __future__ import annotations

import pytest

from maps.movingai import parse_grid_map
from planners.budget import TimeBudget, as_budget
from planners.lns import prioritised
from planners.lns2 import repair
from planners.mapf import GridGraph, lacam, pibt


class Ticks:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_spent_left_and_parts_follow_its_clock() -> None:
    """Spent and left follow the clock; a part is capped by what is left; seconds pass through."""
    clock = Ticks()
    budget = TimeBudget(10.0, clock)
    clock.now = 4.0
    assert (budget.spent(), budget.left(), budget.over()) == (4.0, 6.0, False)
    part = budget.part(8.0)
    assert part.seconds == 6.0
    clock.now = 10.5
    assert budget.over() and part.over() and budget.left() == pytest.approx(-0.5)
    assert as_budget(budget) is budget and as_budget(3.0).seconds == 3.0


@pytest.mark.parametrize("planner", ["lacam", "pibt", "prioritised", "repair"])
def test_a_spent_budget_stops_a_planner_at_once(planner: str) -> None:
    """Given a budget its caller already spent, each grid planner returns unsolved, no later
    than its first check, whatever the instance."""
    g = GridGraph.of(parse_grid_map("type octile\nheight 3\nwidth 6\nmap\n......\n......\n......\n", "room"))
    starts, goals = (g.index[(0, 0)], g.index[(2, 5)]), (g.index[(2, 5)], g.index[(0, 0)])
    clock = Ticks()
    spent = TimeBudget(1.0, clock)
    clock.now = 2.0
    run = {"lacam": lacam, "pibt": pibt, "prioritised": prioritised, "repair": repair}[planner]
    result = run(g, starts, goals, time_limit_s=spent)
    assert not result.solved and result.seconds == 2.0
    assert run(g, starts, goals, time_limit_s=5.0).solved, "solvable with time to work"
