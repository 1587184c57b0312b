"""League of Robot Runners (LoRR) 2024 instances: lifelong multi-agent path finding.

An instance is a JSON file naming a Moving AI map, an agents file and a tasks file; both files
start with a comment line and a count, then one entry per line as linear cell indices
(`row * width + col`). A task line is a comma-separated list of errand cells, visited in order.
`numTasksReveal` is how many tasks per agent are open at any time. The number of steps of each
instance is in `simulation_time.json` beside the instance folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from maps.movingai import Cell, GridMap, load_grid_map


@dataclass(frozen=True)
class LorrInstance:
    name: str
    grid: GridMap
    starts: tuple[Cell, ...]
    tasks: tuple[tuple[Cell, ...], ...]
    reveal_per_agent: float
    steps: int


def _entries(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a comment line and a count")
    try:
        count = int(lines[1])
    except ValueError:
        raise ValueError(f"{path}: line 2 must be the number of entries, not {lines[1]!r}") from None
    entries = [line.strip() for line in lines[2:] if line.strip()]
    if len(entries) < count:
        raise ValueError(f"{path}: says {count} entries, holds {len(entries)}")
    return entries[:count]


def load_lorr_instance(path: str | Path) -> LorrInstance:
    path = Path(path)
    spec = json.loads(path.read_text())
    folder = path.parent
    grid = load_grid_map(folder / spec["mapFile"])

    def cell(index: str) -> Cell:
        row, col = divmod(int(index), grid.width)
        if not grid.passable[row, col]:
            raise ValueError(f"{path.name}: cell {index} ({row}, {col}) is blocked")
        return row, col

    starts = tuple(cell(e) for e in _entries(folder / spec["agentFile"]))
    if len(starts) != spec["teamSize"]:
        raise ValueError(f"{path.name}: teamSize {spec['teamSize']} but {len(starts)} agents")
    tasks = tuple(tuple(cell(i) for i in e.split(",")) for e in _entries(folder / spec["taskFile"]))
    times = json.loads((folder.parent / "simulation_time.json").read_text())
    return LorrInstance(path.stem, grid, starts, tasks, float(spec["numTasksReveal"]), int(times[path.stem]))
