"""The OR-Tools dispatcher against the nearest-free-vehicle baseline in simulation, same seeds.

Run: `python bench/dispatch_sim.py` (`--map solar_module_plant --vehicles 12 --hours 4 --seeds 1 2 3`).

Protocol: the same simulated shift (map, fleet, PLC calls, seed) run twice, once with each
dispatcher (`SimConfig.dispatcher`: "ortools", the controller's default, or "greedy": each
order, by priority then arrival, to the vehicle that reaches its pick-up first); everything
else equal (planned traffic, charging, parking). Printed per seed: orders finished per hour and
mean lead time of each, and the ratios OR-Tools / greedy; then the means.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from maps import load_map
from sim.runner import SimConfig, run_simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--map", default="solar_module_plant")
    parser.add_argument("--vehicles", type=int, default=12)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--orders-per-hour", type=float, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    fmap = load_map(args.map)
    print("| seed | OR-Tools finished/h | greedy finished/h | ratio | OR-Tools lead s | greedy lead s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for seed in args.seeds:
        runs = {}
        for solver in ("ortools", "greedy"):
            config = SimConfig(
                vehicles=args.vehicles,
                hours=args.hours,
                seed=seed,
                orders_per_hour=args.orders_per_hour,
                dispatcher=solver,
            )
            runs[solver], _ = run_simulation(fmap, config)
        o, g = runs["ortools"], runs["greedy"]
        throughput, lead = o.finished_per_hour / g.finished_per_hour, o.lead_time_mean_s / g.lead_time_mean_s
        ratios.append((throughput, lead))
        print(
            f"| {seed} | {o.finished_per_hour:.1f} | {g.finished_per_hour:.1f} | {throughput:.3f} "
            f"| {o.lead_time_mean_s:.0f} | {g.lead_time_mean_s:.0f} | {lead:.3f} |"
        )
    mean_t = sum(r[0] for r in ratios) / len(ratios)
    mean_l = sum(r[1] for r in ratios) / len(ratios)
    print(f"| mean | | | {mean_t:.3f} | | | {mean_l:.3f} |")


if __name__ == "__main__":
    main()
