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

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from planners.sipp import INF, Plan, Visit

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


@dataclass(frozen=True, slots=True)
class Walk:
    """What a vehicle is to drive, for `project`: where it stands, then the rest of its route."""

    nodes: tuple[str, ...]
    claimed: int = 0  # nodes after the first that it holds already (it drives them unhindered)
    ready: float = 0.0  # when it may leave where it stands (INF: it cannot move beyond what it holds)
    stay: float = INF  # how long it stays at the last node (if it can move)


def project(
    walks: Mapping[Agent, Walk],
    turns: Mapping[str, Sequence[Agent]],
    seconds: Callable[[str, str], float],
    now: float,
) -> dict[Agent, Plan]:
    """The plans vehicles will follow if each drives its walk at lane speed from `now`, claiming
    its next node when nobody holds it and, where it has a turn (`turns`: per node, who is to
    enter it, in order), when its turn has come. A vehicle that waits for ever (behind one that
    cannot move, or stays) ends its plan where it waits, with an infinite departure.

    Every node's claims happen in the order of `turns`, so the result, as a timed schedule, is
    consistent with the order already fixed: a vehicle planned around it (SIPP) and slotted into
    `turns` by its planned times cannot close a cycle of waits."""
    queue = {node: deque(a for a in agents if a in walks) for node, agents in turns.items()}
    # A plain dict read with .get: Counter's lookup of a missing key goes through a Python-level
    # __missing__, and most steps have no turn to take.
    pending: dict[tuple[str, Agent], int] = dict(Counter((node, a) for node, agents in queue.items() for a in agents))
    holder: dict[str, Agent] = {}
    at = dict.fromkeys(walks, 0)
    visits: dict[Agent, list[list[Any]]] = {
        a: [[w.nodes[0], now, INF]] for a, w in walks.items()
    }  # node, arrive, depart
    waiting: dict[str, list[Agent]] = {}
    events: list[tuple[float, int, str, Agent]] = []
    tie = itertools.count()
    for a, w in walks.items():
        for node in w.nodes[: w.claimed + 1]:
            holder[node] = a
        if w.claimed:
            heapq.heappush(events, (now + seconds(w.nodes[0], w.nodes[1]), next(tie), "arrive", a))
            visits[a][-1][2] = now
        elif len(w.nodes) > 1 and w.ready < INF:
            heapq.heappush(events, (max(now, w.ready), next(tie), "go", a))
        elif len(w.nodes) == 1 and w.stay < INF and w.ready < INF:
            heapq.heappush(events, (max(now, w.ready) + w.stay, next(tie), "leave", a))

    def let_go(node: str, agent: Agent, t: float) -> None:
        if holder.get(node) == agent:
            del holder[node]
            for waiter in waiting.pop(node, ()):
                heapq.heappush(events, (t, next(tie), "go", waiter))

    def go(agent: Agent, t: float) -> None:
        walk, k = walks[agent], at[agent]
        if walk.ready == INF:
            return  # it drives out what it holds, then stands
        nxt = walk.nodes[k + 1]
        owner = holder.get(nxt)
        turn = pending.get((nxt, agent), 0) > 0
        if (owner is not None and owner != agent) or (turn and queue[nxt][0] != agent):
            waiting.setdefault(nxt, []).append(agent)
            return
        holder[nxt] = agent
        if turn:
            queue[nxt].popleft()
            pending[(nxt, agent)] -= 1
        visits[agent][-1][2] = t
        heapq.heappush(events, (t + seconds(walk.nodes[k], nxt), next(tie), "arrive", agent))

    while events:
        t, _, kind, agent = heapq.heappop(events)
        walk = walks[agent]
        if kind == "go":
            go(agent, t)
        elif kind == "leave":
            let_go(walk.nodes[-1], agent, t)
            visits[agent][-1][2] = t
        else:  # arrive
            k = at[agent] = at[agent] + 1
            visits[agent].append([walk.nodes[k], t, INF])
            let_go(walk.nodes[k - 1], agent, t)
            if k == len(walk.nodes) - 1:
                if walk.stay < INF and walk.ready < INF:
                    heapq.heappush(events, (t + walk.stay, next(tie), "leave", agent))
            elif k < walk.claimed:
                visits[agent][-1][2] = t
                heapq.heappush(events, (t + seconds(walk.nodes[k], walk.nodes[k + 1]), next(tie), "arrive", agent))
            else:
                go(agent, t)
    return {a: [Visit(n, arr, dep) for n, arr, dep in vs] for a, vs in visits.items()}
