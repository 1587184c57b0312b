"""One-shot MAPF benchmark on the Moving AI maps in ../shared/benchmarks/mapf.

Run: `python bench/mapf.py` (optional `--time-limit`, default 10 s per instance).
For each map and agent count (the first N agents of the scenario) it prints whether PIBT solved
it within the time limit, the planning time, and the sum of costs and makespan relative to their
lower bounds (sum of individual shortest paths; the longest individual shortest path). Every
solution is checked with `validate_solution` before it counts. Agent counts are capped by what
the shared scenario files hold (random-64-64-20 even-10 has 220 agents, room-64-64-8 even-1 310).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps.movingai import load_grid_map, load_scenario
from planners.mapf import GridGraph, pibt, validate_solution

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mapf"
INSTANCES = [
    ("warehouse-10-20-10-2-1", "warehouse-10-20-10-2-1-even-1", (50, 100, 200)),
    ("random-32-32-10", "random-32-32-10-random-1", (100, 200, 400)),
    ("room-64-64-8", "room-64-64-8-even-1", (100, 200, 300)),
    ("random-64-64-20", "random-64-64-20-even-10", (100, 200)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = Table(title=f"PIBT, one-shot, {args.time_limit:g} s limit, seed {args.seed}")
    for col in ("map", "agents", "solved", "seconds", "SOC / LB", "makespan / LB", "valid"):
        table.add_column(col, justify="right")
    for map_name, scen, counts in INSTANCES:
        graph = GridGraph.of(load_grid_map(DATA / "maps" / f"{map_name}.map"))
        for n in counts:
            pairs = load_scenario(DATA / "scen" / f"{scen}.scen", n)
            starts = [graph.index[a] for a, _ in pairs]
            goals = [graph.index[b] for _, b in pairs]
            dist = graph.distances_to(goals)
            individual = [int(dist[k][s]) for k, s in enumerate(starts)]
            result = pibt(graph, starts, goals, time_limit_s=args.time_limit, seed=args.seed)
            valid = result.solved and validate_solution(graph, starts, goals, result.solution) == []
            soc = f"{result.sum_of_costs(goals) / max(1, sum(individual)):.2f}" if valid else "-"
            makespan = f"{result.makespan / max(1, max(individual)):.2f}" if valid else "-"
            table.add_row(
                map_name,
                str(n),
                "yes" if result.solved else "NO",
                f"{result.seconds:.2f}",
                soc,
                makespan,
                "yes" if valid else "-",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
