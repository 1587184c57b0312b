"""KPIs of a simulated shift, computed from the controller's orders and the simulator's counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class KpiReport:
    vehicles: int
    simulated_hours: float
    orders_accepted: int
    orders_rejected: int
    orders_finished: int
    orders_failed: int
    orders_open: int
    orders_stuck: int  # open and accepted longer ago than the stuck threshold
    finished_per_hour: float
    lead_time_mean_s: float
    lead_time_p95_s: float
    utilisation: float
    distance_km: float
    collisions: int
    claim_violations: int
    reassignments: int  # orders moved from one vehicle to another before pick-up
    deadlocks: int  # circular waits detected
    deadlocks_resolved: int  # broken by routing a vehicle around or aside
    deadlocks_unresolved: int  # found unbreakable (an alarm each)
    wall_seconds: float
    routes_planned: int = 0  # routes planned in time (SIPP)
    routes_unplanned: int = 0  # of those, no plan found: driven on claims alone
    waiting_s_by_cause: dict[str, float] = field(default_factory=dict)  # node / lane / zone / turn / load / cell

    @property
    def speed_factor(self) -> float:
        return self.simulated_hours * 3600 / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "speed_factor": round(self.speed_factor, 1)}

    def same_outcome(self, other: KpiReport) -> bool:
        """Equal in every figure except wall-clock time."""
        a, b = asdict(self), asdict(other)
        a.pop("wall_seconds")
        b.pop("wall_seconds")
        return a == b
