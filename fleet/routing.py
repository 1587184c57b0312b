"""Routes with times: each new route a vehicle gets is planned with SIPP around what the other
vehicles are expected to do, so that the traffic manager can make everyone take turns at shared
nodes in the planned order (see `fleet.traffic` and `planners.precedence`).

Planning is incremental and prioritised: the vehicle that needs a route now is planned last.
What the others will do is projected from their routes and the turns already fixed
(`planners.precedence.project`), not taken from their old plans' clock times: vehicles are
late and early, and only the order they pass in is binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from maps import FacilityMap
from planners.graph import CompiledGraph
from planners.sipp import Key, Plan, ReservationTable, near_elements, sipp


@dataclass
class TimedRouter:
    """The SIPP planner of new routes, with the map's footprint geometry."""

    fmap: FacilityMap
    clear_s: float = 1.0
    near: dict[Key, frozenset[Key]] = field(init=False)

    def __post_init__(self) -> None:
        radius = max((t.radius for t in self.fmap.vehicle_types), default=0.0)
        self.near = near_elements(self.fmap, radius)

    def plan(
        self,
        graph: CompiledGraph,
        start: str,
        goal: str,
        start_time: float,
        others: Mapping[str, Plan],
        claimed: Mapping[str, int],
        now: float,
        no_through: frozenset[str],
        stay: float,
        start_heading: float | None = None,
    ) -> Plan | None:
        """The earliest plan from `start` (reached at `start_time`, facing `start_heading`) to
        `goal`, staying there for `stay` seconds, that keeps clear of the others' plans, or None.
        The first `claimed[o]` nodes after the first of another's plan are held by it already:
        from `now` on."""
        table = ReservationTable(self.near, self.clear_s)
        for agent, (other, plan) in enumerate(sorted(others.items())):
            table.reserve(agent, plan)
            for k in range(1, min(claimed.get(other, 0) + 1, len(plan))):
                until = plan[k + 1].arrive + self.clear_s if k + 1 < len(plan) else plan[k].depart
                table.hold(agent, plan[k].node, now, until)
        return sipp(graph, table, start, goal, start_time, no_through, stay, start_heading)
