"""The action-dependency graph of a set of timed plans, kept as the order in which vehicles are
to enter each node.

Executing plans by this order instead of by the clock is what makes execution survive delays
(Hönig et al., "Persistent and robust execution of MAPF schedules in warehouses", RA-L 2019):
a vehicle may claim the next node of its plan only when every vehicle planned to enter that node
before it has done so and moved on. The plans of `planners.sipp` hold a node from leaving the
node before it until reaching the node after it, so each such dependency runs from an event of
an earlier planned time to one of a later time and the dependencies cannot form a cycle: late,
early, paused or stopped vehicles make others wait, never deadlock, and never meet.

A vehicle's start is not in the order: it stands there already, and whoever comes after it
waits until it has left.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping
from typing import TypeVar

from planners.sipp import Plan

Agent = TypeVar("Agent", bound=Hashable)


def entry_times(plan: Plan) -> list[tuple[str, float]]:
    """(node, when the vehicle claims it: when it leaves the node before) past the start."""
    return [(b.node, a.depart) for a, b in itertools.pairwise(plan)]


def passing_order(plans: Mapping[Agent, Plan]) -> dict[str, list[Agent]]:
    """Per node, the vehicles in the order their plans enter it (a vehicle entering a node
    twice is listed twice)."""
    entries: dict[str, list[tuple[float, int, Agent]]] = {}
    for rank, (agent, plan) in enumerate(plans.items()):
        for node, when in entry_times(plan):
            entries.setdefault(node, []).append((when, rank, agent))
    return {node: [agent for _, _, agent in sorted(items)] for node, items in entries.items()}
