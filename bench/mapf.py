"""One-shot MAPF benchmark on the Moving AI maps in ../shared/benchmarks/mapf.

Run: `python bench/mapf.py` (optional `--time-limit`, default 10 s per instance; `--planners` to
run only some of them, by name).
For each map and agent count (the first N agents of the scenario) and each planner (LaCAM; LaCAM's
first solution refined by LNS for the rest of the limit, `planners/lns.py`, starting from PIBT
with local repair when LaCAM has no solution in 30 % of the limit; the same LNS from
prioritised planning's solution when that succeeds in 30 % of the limit; the same LNS from
MAPF-LNS2's collision repair, `planners/lns2.py`, when that succeeds in 70 % of the limit; PIBT with the swap rule; the
same with local repair, `pibt(repair=True)`; plain PIBT, as published, for comparison) it prints whether it solved it
within the time limit, the planning time, and the sum of costs and makespan relative to their
lower bounds (sum of individual shortest paths; the longest individual shortest path). Every
solution is checked with `validate_solution` before it counts. The shared scenario files hold
fewer agents than some counts asked for (random-64-64-20 even-10 has 220, room-64-64-8 even-1
310): beyond the file, agents get distinct random start and goal cells (seeded), marked "+rand".
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps.movingai import load_grid_map, load_scenario
from planners.lns import prioritised, refine
from planners.lns2 import repair
from planners.mapf import GridGraph, MapfResult, lacam, pibt, validate_solution

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mapf"
INSTANCES = [
    ("warehouse-10-20-10-2-1", "warehouse-10-20-10-2-1-even-1", (50, 100, 200)),
    ("random-32-32-10", "random-32-32-10-random-1", (100, 200, 400)),
    ("room-64-64-8", "room-64-64-8-even-1", (100, 200, 300)),
    ("random-64-64-20", "random-64-64-20-even-10", (200, 500, 1000)),
]
Planner = Callable[[GridGraph, list[int], list[int], float, int], MapfResult]


def lacam_lns(graph: GridGraph, starts: list[int], goals: list[int], limit: float, seed: int) -> MapfResult:
    """LaCAM's first solution (for at most 30 % of the time limit; failing that, PIBT with local
    repair for what is left), then LNS refinement for the rest of the time limit."""
    first = lacam(graph, starts, goals, time_limit_s=0.3 * limit, seed=seed)
    if not first.solved:
        spent = first.seconds
        first = pibt(graph, starts, goals, time_limit_s=limit - spent, seed=seed, repair=True)
        first = replace(first, seconds=first.seconds + spent)
    return refine(graph, goals, first, limit - first.seconds, seed=seed)


def _refined(
    first: MapfResult, graph: GridGraph, starts: list[int], goals: list[int], limit: float, seed: int
) -> MapfResult:
    """`first` refined by LNS for the rest of the time limit; when `first` is unsolved, what
    `lacam_lns` gives in the time that is left, the time `first` took counted in."""
    if not first.solved:
        fallback = lacam_lns(graph, starts, goals, limit - first.seconds, seed)
        return replace(fallback, seconds=fallback.seconds + first.seconds)
    return refine(graph, goals, first, limit - first.seconds, seed=seed)


def pp_lns(graph: GridGraph, starts: list[int], goals: list[int], limit: float, seed: int) -> MapfResult:
    """Prioritised planning's solution (for at most 30 % of the time limit), refined."""
    return _refined(prioritised(graph, starts, goals, time_limit_s=0.3 * limit), graph, starts, goals, limit, seed)


def lns2_lns(graph: GridGraph, starts: list[int], goals: list[int], limit: float, seed: int) -> MapfResult:
    """MAPF-LNS2's collision repair (`planners/lns2.py`, for at most 70 % of the time limit), refined."""
    first = repair(graph, starts, goals, time_limit_s=0.7 * limit, seed=seed)
    return _refined(first, graph, starts, goals, limit, seed)


PLANNERS: dict[str, Planner] = {
    "LaCAM": lambda g, s, t, limit, seed: lacam(g, s, t, time_limit_s=limit, seed=seed),
    "LaCAM+LNS": lacam_lns,
    "PP+LNS": pp_lns,
    "LNS2+LNS": lns2_lns,
    "PIBT+swap": lambda g, s, t, limit, seed: pibt(g, s, t, time_limit_s=limit, seed=seed),
    "PIBT+repair": lambda g, s, t, limit, seed: pibt(g, s, t, time_limit_s=limit, seed=seed, repair=True),
    "PIBT (plain)": lambda g, s, t, limit, seed: pibt(g, s, t, time_limit_s=limit, seed=seed, swap=False),
}


def instance(graph: GridGraph, scen: Path, n: int, seed: int) -> tuple[list[int], list[int], int]:
    """Starts and goals of the first n agents; past the file's end, distinct random cells."""
    pairs = load_scenario(scen)[:n]
    starts = [graph.index[a] for a, _ in pairs]
    goals = [graph.index[b] for _, b in pairs]
    extra = n - len(starts)
    if extra > 0:
        rng = random.Random(seed)
        cells = range(len(graph.neighbours))
        starts += rng.sample(sorted(set(cells) - set(starts)), extra)
        goals += rng.sample(sorted(set(cells) - set(goals)), extra)
    return starts, goals, max(0, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planners", nargs="+", choices=sorted(PLANNERS), default=list(PLANNERS), metavar="NAME")
    args = parser.parse_args()
    table = Table(title=f"One-shot MAPF, {args.time_limit:g} s limit, seed {args.seed}")
    for col in ("planner", "map", "agents", "solved", "seconds", "SOC / LB", "makespan / LB", "valid"):
        table.add_column(col, justify="right")
    for map_name, scen, counts in INSTANCES:
        graph = GridGraph.of(load_grid_map(DATA / "maps" / f"{map_name}.map"))
        for n in counts:
            starts, goals, extra = instance(graph, DATA / "scen" / f"{scen}.scen", n, args.seed)
            dist = graph.distances_to(goals)
            individual = [int(dist[k][s]) for k, s in enumerate(starts)]
            for name in args.planners:
                result = PLANNERS[name](graph, starts, goals, args.time_limit, args.seed)
                valid = result.solved and validate_solution(graph, starts, goals, result.solution) == []
                soc = f"{result.sum_of_costs(goals) / max(1, sum(individual)):.2f}" if valid else "-"
                makespan = f"{result.makespan / max(1, max(individual)):.2f}" if valid else "-"
                table.add_row(
                    name,
                    map_name,
                    f"{n}{' +rand' if extra else ''}",
                    "yes" if result.solved else "NO",
                    f"{result.seconds:.2f}",
                    soc,
                    makespan,
                    "yes" if valid else "-",
                )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
