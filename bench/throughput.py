"""Plant throughput as the fleet grows, against the congestion-free bound.

Run: `python bench/throughput.py` (defaults: the `warehouse` map, 10 to 200 vehicles, 1 simulated
hour each, seed 1, demand of 20 calls per vehicle-hour so that every cart always has work).
The congestion-free bound for N vehicles is N times what one vehicle alone on the map finishes
per hour under the same demand. For each fleet size it prints orders finished per hour, the
ratio to the bound, finished per vehicle-hour, waiting time per vehicle-hour, collisions and
circular waits, and the fleet size beyond which throughput stops growing (the first size whose
next step adds less than 5 %); by default for planned traffic and for claims only (`--traffic`).
`--max-working N` runs every fleet with admission control (DispatchConfig.max_working_vehicles).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps import load_map
from sim.kpi import KpiReport
from sim.runner import SimConfig, run_simulation


def simulate(
    map_name: str,
    vehicles: int,
    hours: float,
    seed: int,
    per_vehicle: float,
    planned: bool,
    progress: Progress,
    max_working: int | None = None,
) -> KpiReport:
    config = SimConfig(
        vehicles=vehicles,
        hours=hours,
        seed=seed,
        orders_per_hour=per_vehicle * vehicles,
        planned_traffic=planned,
        max_working_vehicles=max_working,
    )
    mode = "planned" if planned else "claims only"
    bar = progress.add_task(f"{vehicles} vehicles, {mode}", total=hours * 3600)
    report, _ = run_simulation(load_map(map_name), config, lambda t: progress.update(bar, completed=t))
    progress.remove_task(bar)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="warehouse")
    parser.add_argument("--vehicles", type=int, nargs="+", default=[10, 25, 50, 100, 150, 200])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders-per-vehicle-hour", type=float, default=20.0)
    parser.add_argument(
        "--traffic", choices=("planned", "claims", "both"), default="both", help="traffic mode(s) to measure"
    )
    parser.add_argument(
        "--max-working", type=int, default=None, help="admission control: at most this many vehicles work at once"
    )
    args = parser.parse_args()
    modes = {"planned": [True], "claims": [False], "both": [True, False]}[args.traffic]
    console = Console(width=150)
    with Progress(console=console, transient=True) as progress:
        alone = simulate(args.map, 1, args.hours, args.seed, args.orders_per_vehicle_hour, True, progress)
        runs = {
            planned: [
                simulate(
                    args.map,
                    n,
                    args.hours,
                    args.seed,
                    args.orders_per_vehicle_hour,
                    planned,
                    progress,
                    args.max_working,
                )
                for n in args.vehicles
            ]
            for planned in modes
        }
    for planned, reports in runs.items():
        print_table(console, args, alone.finished_per_hour, reports, "planned traffic" if planned else "claims only")


def print_table(
    console: Console, args: argparse.Namespace, per_vehicle_bound: float, reports: list[KpiReport], mode: str
) -> None:
    limit = f", at most {args.max_working} working" if args.max_working else ""
    table = Table(
        title=f"throughput on {args.map}, {mode}{limit}, {args.hours:g} h, seed {args.seed}; "
        f"one vehicle alone finishes {per_vehicle_bound:.1f}/h"
    )
    columns = ("vehicles", "finished/h", "bound/h", "ratio", "per vehicle-h", "wait min per vehicle-h")
    for col in (*columns, "routes without a plan", "collisions", "deadlocks (resolved / not)", "wall s"):
        table.add_column(col, justify="right")
    for n, report in zip(args.vehicles, reports, strict=True):
        bound = per_vehicle_bound * n
        waiting = sum(report.waiting_s_by_cause.values()) / 60 / (n * report.simulated_hours)
        table.add_row(
            str(n),
            f"{report.finished_per_hour:.0f}",
            f"{bound:.0f}",
            f"{report.finished_per_hour / bound:.2f}" if bound else "-",
            f"{report.finished_per_hour / n:.2f}",
            f"{waiting:.1f}",
            f"{report.routes_unplanned / report.routes_planned:.0%}" if report.routes_planned else "-",
            str(report.collisions),
            f"{report.deadlocks} ({report.deadlocks_resolved} / {report.deadlocks_unresolved})",
            f"{report.wall_seconds:.0f}",
        )
    console.print(table)
    peak = next(
        (
            n
            for n, report, nxt in zip(args.vehicles, reports, reports[1:], strict=False)
            if nxt.finished_per_hour < 1.05 * report.finished_per_hour
        ),
        None,
    )
    if peak is None:
        console.print(f"{mode}: throughput still grows at {args.vehicles[-1]} vehicles")
    else:
        console.print(f"{mode}: throughput stops growing beyond {peak} vehicles")


if __name__ == "__main__":
    main()
