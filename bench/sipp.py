"""Prioritised SIPP on the bundled facility maps: carts leave parking (or any free start) for
stations all at once, one cart per station (so fleets are capped by the stations a map has).

Run: `python bench/sipp.py`. For each map and fleet size it prints whether every cart got a
plan, the planning time, and the sum of arrival times against the sum of each cart's fastest
path alone (the congestion-free bound). Every plan set is validated before it counts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps import load_map
from planners.graph import compile_map
from planners.sipp import near_elements, plan_prioritised, validate_plans
from sim.fleets import start_nodes

CLEAR_S = 1.0
CASES = [("small_test", (4,)), ("solar_module_plant", (12, 30)), ("warehouse", (12, 30, 60, 120))]


def main() -> None:
    table = Table(title=f"prioritised SIPP, node clearing time {CLEAR_S:g} s")
    for col in ("map", "carts", "planned", "seconds", "sum of arrivals / bound", "valid"):
        table.add_column(col, justify="right")
    for name, sizes in CASES:
        fmap = load_map(name)
        graph = compile_map(fmap)
        near = near_elements(fmap, fmap.vehicle_types[0].radius)
        no_through = fmap.no_through_nodes
        for n in sizes:
            starts = start_nodes(fmap, n)
            goals = [s.node for s in fmap.stations][:n]
            began = time.perf_counter()
            result = plan_prioritised(graph, near, CLEAR_S, starts, goals, no_through=no_through)
            seconds = time.perf_counter() - began
            plans = [p for p in result.plans if p is not None]
            valid = result.solved and validate_plans(graph, near, CLEAR_S, starts, goals, plans) == []
            bound = sum(graph.time(s, g) for s, g in zip(starts, goals, strict=True))
            ratio = sum(p[-1].arrive for p in plans) / bound if valid and bound else float("nan")
            table.add_row(name, str(n), f"{len(plans)}/{n}", f"{seconds:.3f}", f"{ratio:.2f}", "yes" if valid else "NO")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
