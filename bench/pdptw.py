"""The dispatcher's pickup-and-delivery model on the 56 Li & Lim 100-task PDPTW instances.

Run: `python bench/pdptw.py` (1 s and 10 s per instance, about 11 minutes), or `--limits 1`,
`--instances lc101 lr201`, `--set distance_share=0.2` (any `SolveSettings` field).

Protocol: each instance from `../shared/benchmarks/pdptw/li_lim_100/` is solved by
`planners.pdptw.solve_pdptw` (fewest vehicles first, then distance: first plan by cheapest
insertion and guided local search, then route elimination, then distance by ruin and
recreate) within the time
limit, one instance at a time on one core; every plan is checked by `validate_pdptw` (each
request once, pickup before delivery on one route, capacity, time windows, depot horizon) and
its distance recomputed in double precision. Printed per instance and limit: vehicles against
the best known (`li_lim_bks.csv`), distance gap in percent where the vehicle count matches the
best known, and the plain OR-Tools baseline of `ortools_baseline.csv` beside it; then totals:
feasible, best-known vehicle count reached, extra vehicles, mean gap.
Aims from issue 5: at 10 s, best-known vehicles on at least 40 instances and a mean gap under
1.5 %; at 1 s, a feasible plan for all 56.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from planners.pdptw import SolveSettings, parse_li_lim, solve_pdptw, validate_pdptw

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "pdptw"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limits", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--instances", nargs="*")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="NAME=VALUE", help="SolveSettings fields, e.g. distance_share=0.2"
    )
    args = parser.parse_args()
    overrides = _settings(args.set)
    bks = {r["instance"]: r for r in csv.DictReader((args.data / "li_lim_bks.csv").open())}
    base = {
        (r["instance"], float(r["time_limit_s"])): r
        for r in csv.DictReader((args.data / "ortools_baseline.csv").open())
    }
    names = args.instances or sorted(n for n in bks if (args.data / "li_lim_100" / f"{n}.txt").exists())
    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("solving", total=len(names) * len(args.limits))
        for limit in args.limits:
            for name in names:
                instance = parse_li_lim((args.data / "li_lim_100" / f"{name}.txt").read_text(), name)
                started = time.perf_counter()
                plan = solve_pdptw(instance, replace(overrides, time_limit_s=limit))
                wall = time.perf_counter() - started
                problems = validate_pdptw(instance, plan.routes) if plan else ["no plan"]
                best_v, best_d = int(bks[name]["bks_vehicles"]), float(bks[name]["bks_distance"])
                peer = base.get((name, limit))
                rows.append(
                    {
                        "instance": name,
                        "limit": limit,
                        "feasible": plan is not None and not problems,
                        "vehicles": plan.vehicles if plan else None,
                        "bks_vehicles": best_v,
                        "gap": round(100 * (plan.distance - best_d) / best_d, 2)
                        if plan and plan.vehicles == best_v
                        else None,
                        "distance": plan.distance if plan else None,
                        "wall": round(wall, 2),
                        "problems": problems[:2],
                        "peer_vehicles": int(peer["vehicles"]) if peer and peer["solution_found"] == "yes" else None,
                    }
                )
                progress.advance(task)
    print("| instance | limit s | vehicles (best known) | distance | gap % | baseline vehicles | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        gap = "" if r["gap"] is None else f"{r['gap']:.2f}"
        peer = "none" if r["peer_vehicles"] is None else r["peer_vehicles"]
        v = f"{r['vehicles']} ({r['bks_vehicles']})" if r["feasible"] else f"INVALID {r['problems']}"
        print(f"| {r['instance']} | {r['limit']:g} | {v} | {r['distance']} | {gap} | {peer} | {r['wall']} |")
    print()
    print(
        "| limit s | feasible | best-known vehicles | extra vehicles | mean gap % | baseline: feasible / bkv / extra |"
    )
    print("|---:|---:|---:|---:|---:|---|")
    for limit in args.limits:
        mine = [r for r in rows if r["limit"] == limit]
        ok = [r for r in mine if r["feasible"]]
        at_best = [r for r in ok if r["vehicles"] == r["bks_vehicles"]]
        extra = sum(r["vehicles"] - r["bks_vehicles"] for r in ok)
        gap = sum(r["gap"] for r in at_best) / len(at_best) if at_best else float("nan")
        peers = [base[(r["instance"], limit)] for r in mine if (r["instance"], limit) in base]
        found = [p for p in peers if p["solution_found"] == "yes"]
        peer_best = sum(1 for p in found if p["extra_vehicles"] == "0")
        peer_extra = sum(int(p["extra_vehicles"]) for p in found)
        peer = f"{len(found)} / {peer_best} / {peer_extra}"
        print(f"| {limit:g} | {len(ok)}/{len(mine)} | {len(at_best)} | {extra} | {gap:.2f} | {peer} |")


def _settings(pairs: list[str]) -> SolveSettings:
    """SolveSettings with NAME=VALUE fields replaced, each value read as its field's type."""
    settings = SolveSettings()
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in {f.name for f in fields(SolveSettings)}:
            raise SystemExit(f"--set: SolveSettings has no field {name!r}")
        kind = type(getattr(settings, name))
        parsed: Any = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        settings = replace(settings, **{name: parsed})
    return settings


if __name__ == "__main__":
    main()
