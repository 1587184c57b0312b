"""Moving AI grid maps and scenarios, the standard multi-agent path-finding benchmarks.

Formats (movingai.com/benchmarks): a `.map` is `type octile / height H / width W / map` then H rows,
with `.` and `G` passable and `@ O T W` blocked; a `.scen` (`version 1`) has one tab-separated
row per agent: `bucket map W H start_x start_y goal_x goal_y optimal_length`, x the column and
y the row, (0, 0) top-left. An N-agent instance takes the first N rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

_PASSABLE = frozenset(".G")
Cell = tuple[int, int]  # (row, column)


@dataclass(frozen=True, eq=False)
class GridMap:
    name: str
    passable: npt.NDArray[np.bool_]  # height x width

    @property
    def height(self) -> int:
        return int(self.passable.shape[0])

    @property
    def width(self) -> int:
        return int(self.passable.shape[1])


def parse_grid_map(text: str, name: str = "<grid>") -> GridMap:
    lines = text.splitlines()
    header: dict[str, str] = {}
    row = 0
    while row < len(lines) and lines[row].strip() != "map":
        key, _, value = lines[row].strip().partition(" ")
        header[key] = value
        row += 1
    try:
        height, width = int(header["height"]), int(header["width"])
    except (KeyError, ValueError):
        raise ValueError(f"{name}: header needs 'height H' and 'width W' before 'map'") from None
    rows = lines[row + 1 : row + 1 + height]
    if len(rows) != height or any(len(r) < width for r in rows):
        raise ValueError(f"{name}: expected {height} rows of {width} cells")
    grid = np.array([[c in _PASSABLE for c in r[:width]] for r in rows], dtype=bool)
    return GridMap(name, grid)


def load_grid_map(path: str | Path) -> GridMap:
    path = Path(path)
    return parse_grid_map(path.read_text(), path.stem)


def load_scenario(path: str | Path, agents: int | None = None) -> list[tuple[Cell, Cell]]:
    """(start, goal) cells of the first `agents` rows (all rows when None)."""
    pairs: list[tuple[Cell, Cell]] = []
    for line in Path(path).read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 8:
            continue
        sx, sy, gx, gy = (int(p) for p in parts[4:8])
        pairs.append(((sy, sx), (gy, gx)))
        if agents is not None and len(pairs) == agents:
            break
    if agents is not None and len(pairs) < agents:
        raise ValueError(f"{path}: has {len(pairs)} agents, {agents} asked for")
    return pairs
