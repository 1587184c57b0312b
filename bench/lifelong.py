"""Lifelong MAPF on the League of Robot Runners 2024 random-map instances.

Run: `python bench/lifelong.py` (optional `--instances RANDOM-01 ...`, `--seed`).
For each instance (random-32-32-20 with 100 to 800 agents, its own step horizon) and each action
model it prints the tasks finished, the ratio to the best result known for the competition
(2024 main round, which uses turning on the spot), and the planning time per step (p50, p99;
the competition allows 1 s). Every step is validated; an invalid one stops the run and shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maps.lorr import load_lorr_instance
from sim.lorr import run_lorr

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mapf" / "lorr2024" / "random.domain"
BEST_KNOWN = {"RANDOM-01": 696, "RANDOM-02": 1260, "RANDOM-03": 2368, "RANDOM-04": 2585, "RANDOM-05": 3050}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", nargs="+", default=list(BEST_KNOWN))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = Table(title=f"Lifelong MAPF, LoRR 2024 random instances, seed {args.seed}")
    for col in ("instance", "agents", "steps", "model", "tasks", "best known", "ratio", "p50 ms", "p99 ms", "valid"):
        table.add_column(col, justify="right")
    with Progress(transient=True) as progress:
        for name in args.instances:
            instance = load_lorr_instance(DATA / f"{name}.json")
            for turning in (True, False):
                label = "turn on spot" if turning else "grid (no turning)"
                bar = progress.add_task(f"{name} {label}", total=instance.steps)

                def advance(step: int, bar: TaskID = bar) -> None:
                    progress.update(bar, completed=step)

                result = run_lorr(instance, seed=args.seed, turning=turning, progress=advance)
                progress.remove_task(bar)
                best = BEST_KNOWN[name]
                table.add_row(
                    name,
                    str(result.agents),
                    str(instance.steps),
                    label,
                    str(result.tasks_finished),
                    str(best),
                    f"{result.tasks_finished / best:.2f}",
                    f"{result.percentile(50) * 1000:.1f}",
                    f"{result.percentile(99) * 1000:.1f}",
                    "yes" if not result.problems else result.problems[0],
                )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
