"""What the map scripts share: nodes, lanes and drive-through bays, written as map-file entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class Layout:
    """Collects a map's entries as the YAML map file spells them."""

    def __init__(self, bay_depth: float, bay_speed: float) -> None:
        self.bay_depth = bay_depth
        self.bay_speed = bay_speed
        self.nodes: list[dict[str, Any]] = []
        self.lanes: list[dict[str, Any]] = []
        self.stations: list[dict[str, Any]] = []
        self.chargers: list[dict[str, Any]] = []
        self.parking: list[dict[str, Any]] = []
        self.pos: dict[str, tuple[float, float]] = {}

    def node(self, nid: str, x: float, y: float) -> str:
        self.nodes.append({"id": nid, "x": x, "y": y})
        self.pos[nid] = (x, y)
        return nid

    def lane(self, a: str, b: str, speed: float) -> None:
        self.lanes.append({"from": a, "to": b, "max_speed": speed})

    def bay(self, name: str, a: str, b: str, normal: tuple[float, float]) -> str:
        """A drive-through bay between consecutive aisle nodes a -> b on the side `normal` points
        to: a -> queue node -> working node -> b. Returns the working node."""
        (ax, ay), (bx, by) = self.pos[a], self.pos[b]
        length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
        tx, ty = (bx - ax) / length, (by - ay) / length
        nx, ny = normal
        d = self.bay_depth
        q = self.node(f"{name}.Q", ax + d * nx, ay + d * ny)
        s = self.node(f"{name}.S", ax + d * nx + d * tx, ay + d * ny + d * ty)
        self.lane(a, q, self.bay_speed)
        self.lane(q, s, self.bay_speed)
        self.lane(s, b, self.bay_speed)
        return s

    def as_map(self, name: str, vehicle_types: list[dict[str, Any]], zones: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": name,
            "vehicle_types": vehicle_types,
            "nodes": self.nodes,
            "lanes": self.lanes,
            "stations": self.stations,
            "chargers": self.chargers,
            "parking": self.parking,
            "zones": zones,
        }


def write_map(data: dict[str, Any], header: str) -> None:
    """Write maps/data/<name>.yaml with a comment header."""
    out = Path(__file__).resolve().parent.parent / "maps" / "data" / f"{data['name']}.yaml"
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    out.write_text(header + body, encoding="utf-8")
    print(f"wrote {out}")
