"""Simulation speed: simulated seconds per wall second on the solar-module plant.

Run: `python bench/sim_speed.py` (defaults: 12, 50 and 100 vehicles, 8 simulated hours each).
Prints per fleet size the wall time, the speed factor, the KPIs that show the run was real work
(orders finished, collisions) and the process's peak memory (ru_maxrss). The aim from issue 2:
an 8-hour shift with 50 vehicles in under 60 s wall, peak memory under 1 GB.

A run stops at the first deadlock that cannot be broken (gridlock): the "simulated h" column then shows how
far it got, and the speed factor covers that part only.
"""

from __future__ import annotations

import argparse
import resource

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from maps import load_map
from sim.runner import SimConfig, run_simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="solar_module_plant")
    parser.add_argument("--vehicles", type=int, nargs="+", default=[12, 50, 100])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders-per-vehicle-hour", type=float, default=6.0, help="demand per vehicle (default 6/h)")
    args = parser.parse_args()
    fmap = load_map(args.map)
    console = Console()
    table = Table(title=f"simulation speed on {args.map}, {args.hours:g} simulated hours, seed {args.seed}")
    columns = ("vehicles", "simulated h", "wall s", "sim s / wall s", "finished", "finished/h", "open", "collisions")
    for col in (*columns, "deadlocks (resolved / not)"):
        table.add_column(col, justify="right")
    for n in args.vehicles:
        config = SimConfig(
            vehicles=n, hours=args.hours, seed=args.seed, orders_per_hour=args.orders_per_vehicle_hour * n
        )
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{n} vehicles", total=args.hours * 3600)
            report, _ = run_simulation(
                fmap, config, lambda t, task=task: progress.update(task, completed=t), stop_on_deadlock=True
            )
        table.add_row(
            str(n),
            f"{report.simulated_hours:.2f}",
            f"{report.wall_seconds:.1f}",
            f"{report.speed_factor:.0f}",
            str(report.orders_finished),
            f"{report.finished_per_hour:.0f}",
            str(report.orders_open),
            str(report.collisions),
            f"{report.deadlocks} ({report.deadlocks_resolved} / {report.deadlocks_unresolved})",
        )
    console.print(table)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
