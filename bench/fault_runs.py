"""Long simulated shifts with random delays: the acceptance runs of issue 4, too long for CI.

Run: `python bench/fault_runs.py` (defaults: the solar-module plant with 12, 30 and 60 vehicles
and the warehouse with 30, 8 simulated hours each, seeds 1 to 5, 2 faults per vehicle-hour:
slow-downs, pauses and stops at random). Then calls stop and the fleet drains its backlog, in
steps of 15 minutes, until no order is open or `--max-drain-min` has passed. For each run it
prints orders accepted and finished, orders open at the end of the shift and after the drain,
the drain minutes it took, collisions, circular waits (resolved / not), waiting minutes per
vehicle-hour by cause and wall time. A run passes when nothing collided, no circular wait stayed
unbroken and every accepted order finished. (A backlog at the end of the shift means demand was
above what the fleet carries with its faults; the drain time tells that apart from orders stuck.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps import load_map
from sim.runner import SimConfig, Simulation

DRAIN_STEP_S = 900.0
CASES = [("solar_module_plant", 12), ("solar_module_plant", 30), ("solar_module_plant", 60), ("warehouse", 30)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--faults", type=float, default=2.0, help="faults per vehicle-hour")
    parser.add_argument(
        "--case",
        nargs="+",
        default=None,
        help="map:vehicles[:calls per hour], e.g. warehouse:30 or solar_module_plant:60:240 (default: all)",
    )
    parser.add_argument("--warehouse-calls", type=float, default=150.0, help="calls per hour on the warehouse")
    parser.add_argument("--max-drain-min", type=float, default=120.0, help="longest drain after the shift")
    args = parser.parse_args()
    parsed = [c.split(":") for c in args.case] if args.case else [[m, str(n)] for m, n in CASES]
    cases = [(p[0], int(p[1]), float(p[2]) if len(p) > 2 else None) for p in parsed]
    console = Console(width=160)
    table = Table(title=f"{args.hours:g} h shifts, then a drain, {args.faults:g} faults/vehicle-h")
    columns = ("map", "vehicles", "seed", "accepted", "finished", "open at shift end", "open after drain", "drain min")
    for col in (*columns, "collisions", "cycles (res / not)"):
        table.add_column(col, justify="right")
    table.add_column("wait min/vehicle-h by cause")
    table.add_column("wall s", justify="right")
    table.add_column("pass")
    failures = 0
    with Progress(console=console, transient=True) as progress:
        for map_name, vehicles, demand in cases:
            fmap = load_map(map_name)
            calls = demand if demand is not None else args.warehouse_calls if map_name == "warehouse" else None
            for seed in args.seeds:
                config = SimConfig(
                    vehicles=vehicles,
                    hours=args.hours,
                    seed=seed,
                    faults_per_vehicle_hour=args.faults,
                    orders_per_hour=calls,
                )
                bar = progress.add_task(f"{map_name} {vehicles} seed {seed}", total=args.hours * 3600)
                began = time.perf_counter()
                sim = Simulation(fmap, config)
                sim.run_for(args.hours * 3600, lambda t, bar=bar: progress.update(bar, completed=t))
                at_shift_end = sim.report(0.0).orders_open
                sim.demand_enabled = False
                drained = 0.0
                while sim.report(0.0).orders_open and drained < args.max_drain_min * 60:
                    sim.run_for(DRAIN_STEP_S)
                    drained += DRAIN_STEP_S
                progress.remove_task(bar)
                r = sim.report(time.perf_counter() - began)
                ok = r.collisions == 0 and r.claim_violations == 0 and r.deadlocks_unresolved == 0
                ok = ok and r.orders_open == 0 and r.orders_failed == 0
                failures += not ok
                hours = r.simulated_hours * vehicles
                waits = ", ".join(f"{k} {v / 60 / hours:.1f}" for k, v in r.waiting_s_by_cause.items())
                row = (
                    map_name,
                    str(vehicles),
                    str(seed),
                    str(r.orders_accepted),
                    str(r.orders_finished),
                    str(at_shift_end),
                    str(r.orders_open),
                    f"{drained / 60:.0f}",
                    str(r.collisions),
                    f"{r.deadlocks_resolved} / {r.deadlocks_unresolved}",
                    waits,
                    f"{r.wall_seconds:.0f}",
                    "yes" if ok else "NO",
                )
                table.add_row(*row)
                progress.console.print("  ".join(row))  # each run as it ends: long runs may be cut off
    console.print(table)
    console.print(f"{failures} run(s) failed")


if __name__ == "__main__":
    main()
