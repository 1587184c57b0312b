"""Prometheus text exposition (format 0.0.4) of the controller's state and counters.

Gauges are read from the core when scraped; counters come from the core's stats and from any
extra sources a shell registers (the VDA 5050 master's received and dropped messages).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fleet.core import Controller
from fleet.model import OrderState


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    kind: str  # "gauge" or "counter"
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


MetricSource = Callable[[], Iterable[Sample]]


def controller_samples(c: Controller) -> list[Sample]:
    orders = Counter(o.state for o in c.orders.values())
    out = [
        Sample("fleet_orders", "gauge", "Transport orders by state.", orders.get(s, 0), (("state", s.value),))
        for s in OrderState
    ]
    activity: Counter[str] = Counter()
    for v in c.vehicles.values():
        activity["not_reported" if not v.placed else (v.task.kind.value if v.task else "idle")] += 1
    out += [
        Sample("fleet_vehicles", "gauge", "Vehicles by activity.", n, (("activity", a),))
        for a, n in sorted(activity.items())
    ]
    out.append(
        Sample(
            "fleet_vehicles_available",
            "gauge",
            "Vehicles that may be given work.",
            sum(v.available for v in c.vehicles.values()),
        )
    )
    out.append(Sample("fleet_dispatch_runs_total", "counter", "Dispatcher runs.", c.stats.dispatch_runs))
    out.append(
        Sample(
            "fleet_dispatch_seconds_total", "counter", "Compute time spent dispatching.", round(c.stats.dispatch_s, 6)
        )
    )
    out.append(
        Sample("fleet_routes_planned_total", "counter", "Routes planned in time (SIPP).", c.stats.routes_planned)
    )
    out.append(
        Sample(
            "fleet_routes_unplanned_total",
            "counter",
            "Routes SIPP found no plan for (driven on claims alone).",
            c.stats.routes_unplanned,
        )
    )
    out.append(
        Sample(
            "fleet_route_planning_seconds_total",
            "counter",
            "Compute time spent planning routes.",
            round(c.stats.planning_s, 6),
        )
    )
    out.append(
        Sample("fleet_reassignments_total", "counter", "Orders moved to another vehicle.", c.stats.reassignments)
    )
    out.append(Sample("fleet_deadlocks_total", "counter", "Circular waits detected.", c.stats.deadlocks))
    out.append(
        Sample(
            "fleet_deadlocks_resolved_total",
            "counter",
            "Circular waits broken by routing a vehicle around or aside.",
            c.stats.deadlocks_resolved,
        )
    )
    alarms = Counter(a.code for a in c.alarms)
    out += [
        Sample("fleet_alarms_total", "counter", "Alarms raised, by code.", n, (("code", code),))
        for code, n in sorted(alarms.items())
    ]
    causes = Counter(c.wait_causes().values())
    out += [
        Sample("fleet_vehicles_waiting", "gauge", "Vehicles standing still, by what is in the way.", n, (("cause", k),))
        for k, n in sorted(causes.items())
    ]
    return out


def render(samples: Iterable[Sample]) -> str:
    lines: list[str] = []
    described: set[str] = set()
    for s in samples:
        if s.name not in described:
            described.add(s.name)
            lines += [f"# HELP {s.name} {s.help}", f"# TYPE {s.name} {s.kind}"]
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels)
        lines.append(f"{s.name}{{{labels}}} {s.value:g}" if labels else f"{s.name} {s.value:g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
