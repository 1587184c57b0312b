"""Plant throughput as the fleet grows, against the congestion-free bound.

Run: `python bench/throughput.py` (defaults: the `warehouse` map, 10 to 200 vehicles, 1 simulated
hour each, seed 1, demand of 20 calls per vehicle-hour so that every cart always has work).
The congestion-free bound for N vehicles is N times what one vehicle alone on the map finishes
per hour under the same demand. For each fleet size it prints orders finished per hour, the
ratio to the bound, finished per vehicle-hour, waiting time per vehicle-hour, collisions and
circular waits, and the fleet size beyond which throughput stops growing (the first size whose
next step adds less than 5 %); by default for planned traffic and for claims only (`--traffic`).

`--max-working N [N ...]` runs every fleet with admission control
(DispatchConfig.max_working_vehicles; 0: no limit), one table per limit. `--seeds S [S ...]`
runs each case on several seeds: finished/h is then the mean with the lowest and highest in
brackets, and with several limits the study ends with the limit whose worst seed finishes most
for each fleet size (a limit to configure, found by simulation: dense fleets are chaotic, one
seed can collapse where its neighbours do not). `--jobs N` runs N simulations at once.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps import load_map
from sim.kpi import KpiReport
from sim.runner import SimConfig, run_simulation

Case = tuple[bool, int, int | None, int]  # (planned traffic, vehicles, working limit, seed)


def simulate(map_name: str, hours: float, per_vehicle: float, case: Case) -> KpiReport:
    planned, vehicles, max_working, seed = case
    config = SimConfig(
        vehicles=vehicles,
        hours=hours,
        seed=seed,
        orders_per_hour=per_vehicle * vehicles,
        planned_traffic=planned,
        max_working_vehicles=max_working,
    )
    report, _ = run_simulation(load_map(map_name), config)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="warehouse")
    parser.add_argument("--vehicles", type=int, nargs="+", default=[10, 25, 50, 100, 150, 200])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1, help="the seed, unless --seeds gives several")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--orders-per-vehicle-hour", type=float, default=20.0)
    parser.add_argument(
        "--traffic", choices=("planned", "claims", "both"), default="both", help="traffic mode(s) to measure"
    )
    parser.add_argument(
        "--max-working",
        type=int,
        nargs="+",
        default=[0],
        help="admission control: at most this many vehicles work at once (0: no limit); several: one table each",
    )
    parser.add_argument("--jobs", type=int, default=1, help="simulations run at once")
    args = parser.parse_args()
    modes = {"planned": [True], "claims": [False], "both": [True, False]}[args.traffic]
    seeds = args.seeds or [args.seed]
    limits = [cap or None for cap in args.max_working]
    cases: list[Case] = [(True, 1, None, seed) for seed in seeds]
    cases += [(planned, n, cap, seed) for planned in modes for cap in limits for n in args.vehicles for seed in seeds]
    cases = list(dict.fromkeys(cases))
    console = Console(width=150)
    reports: dict[Case, KpiReport] = {}
    with Progress(console=console, transient=True) as progress, ProcessPoolExecutor(args.jobs) as pool:
        bar = progress.add_task(f"{len(cases)} simulations of {args.hours:g} h", total=len(cases))
        futures = {
            case: pool.submit(simulate, args.map, args.hours, args.orders_per_vehicle_hour, case) for case in cases
        }
        for case, future in futures.items():
            reports[case] = future.result()
            progress.advance(bar)
    alone = {seed: reports[(True, 1, None, seed)].finished_per_hour for seed in seeds}
    for planned in modes:
        for cap in limits:
            rows = [[reports[(planned, n, cap, seed)] for seed in seeds] for n in args.vehicles]
            print_table(console, args, seeds, mean(alone.values()), rows, planned, cap)
    if len(limits) > 1:
        for planned in modes:
            print_best_limits(console, args, seeds, limits, reports, planned)


def print_table(
    console: Console,
    args: argparse.Namespace,
    seeds: list[int],
    per_vehicle_bound: float,
    rows: list[list[KpiReport]],
    planned: bool,
    cap: int | None,
) -> None:
    mode = "planned traffic" if planned else "claims only"
    limit = f", at most {cap} working" if cap else ""
    on = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    table = Table(
        title=f"throughput on {args.map}, {mode}{limit}, {args.hours:g} h, {on}; "
        f"one vehicle alone finishes {per_vehicle_bound:.1f}/h"
    )
    columns = ("vehicles", "finished/h", "bound/h", "ratio", "per vehicle-h", "wait min per vehicle-h")
    for col in (*columns, "routes without a plan", "collisions", "deadlocks (resolved / not)", "wall s"):
        table.add_column(col, justify="right")
    means = []
    for n, reports in zip(args.vehicles, rows, strict=True):
        bound = per_vehicle_bound * n
        finished = [r.finished_per_hour for r in reports]
        means.append(mean(finished))
        spread = f" ({min(finished):.0f}-{max(finished):.0f})" if len(reports) > 1 else ""
        waiting = sum(sum(r.waiting_s_by_cause.values()) for r in reports) / 60 / (n * args.hours * len(reports))
        planned_routes = sum(r.routes_planned for r in reports)
        unplanned = sum(r.routes_unplanned for r in reports)
        table.add_row(
            str(n),
            f"{means[-1]:.0f}{spread}",
            f"{bound:.0f}",
            f"{means[-1] / bound:.2f}" if bound else "-",
            f"{means[-1] / n:.2f}",
            f"{waiting:.1f}",
            f"{unplanned / planned_routes:.0%}" if planned_routes else "-",
            str(sum(r.collisions for r in reports)),
            f"{sum(r.deadlocks for r in reports)} ({sum(r.deadlocks_resolved for r in reports)} / "
            f"{sum(r.deadlocks_unresolved for r in reports)})",
            f"{max(r.wall_seconds for r in reports):.0f}",
        )
    console.print(table)
    peak = next((n for n, m, nxt in zip(args.vehicles, means, means[1:], strict=False) if nxt < 1.05 * m), None)
    if peak is None:
        console.print(f"{mode}{limit}: throughput still grows at {args.vehicles[-1]} vehicles")
    else:
        console.print(f"{mode}{limit}: throughput stops growing beyond {peak} vehicles")


def print_best_limits(
    console: Console,
    args: argparse.Namespace,
    seeds: list[int],
    limits: list[int | None],
    reports: dict[Case, KpiReport],
    planned: bool,
) -> None:
    """Per fleet size, the limit whose worst seed finishes most (ties: the one that holds fewer
    vehicles back; a limit at or above the fleet size is none)."""
    mode = "planned traffic" if planned else "claims only"
    for n in args.vehicles:
        worst = {cap: min(reports[(planned, n, cap, seed)].finished_per_hour for seed in seeds) for cap in limits}
        best = max(limits, key=lambda cap: (worst[cap], min(cap or n, n), cap is None))
        shown = ", ".join(f"{cap or 'none'}: {worst[cap]:.0f}/h" for cap in limits)
        console.print(
            f"{mode}, {n} vehicles: best working limit {best or 'none'} "
            f"(worst seed finishes {worst[best]:.0f}/h; by limit {shown})"
        )


if __name__ == "__main__":
    main()
