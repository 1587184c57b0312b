"""Write the bundled `warehouse` and `warehouse_buffer` maps (maps/data/): a dense pallet warehouse.

The YAML is the source of truth the package loads; this script records how it was laid out.
Run: `python scripts/gen_warehouse.py`.

Layout (metres): nine storage aisles 12 m apart (x = 0 ... 96), one-way and alternating
(even aisles northbound, odd southbound), nodes every 8 m from y = 0 to y = 80; three one-way
cross aisles join them (south y = 0 eastbound, middle y = 40 eastbound, north y = 80 westbound),
a Manhattan grid. Rack locations are drive-through bays on both sides of each aisle (stations
that take and give pallets); goods-in docks below the south cross aisle, goods-out docks above
the north one; a depot aisle west of the racks with chargers and parking. Every station, charger
and parking spot is a bay off its aisle, so nobody stops in an aisle to work.

`warehouse_buffer` is the same warehouse with a buffer south of the docks where carts without
work wait: three westbound roads (y = -16, -32, -48) from the south-east corner back to the
depot, each with 26 parking bays: 90 parking spots with the depot's 12 (with those 12 alone,
100 carts on `warehouse` stand in the rack bays and block them).
"""

from __future__ import annotations

import itertools
from typing import Any

from layout import Layout, write_map

AISLES = 9  # odd, so both outer aisles run north and the grid is strongly connected
PITCH = 12.0  # between aisles
STEP = 8.0  # between nodes along an aisle
HEIGHT = 80.0
BAY = 4.0
AISLE_SPEED = 1.5
BAY_SPEED = 0.8
RACK_SEGMENTS = (1, 2, 3, 6, 7, 8)  # segments near the cross aisles stay free of bays
DEPOT_X = -16.0  # the depot aisle, west of the racks
BUFFER_ROADS = 3
BUFFER_PITCH = 16.0  # between buffer roads, and from the south cross aisle to the first


def build(buffer_roads: int = 0) -> dict[str, Any]:
    lay = Layout(BAY, BAY_SPEED)
    node, lane, bay = lay.node, lay.lane, lay.bay
    stations, chargers, parking = lay.stations, lay.chargers, lay.parking

    rows = int(HEIGHT / STEP) + 1
    grid = [[node(f"A{k}-{r:02d}", PITCH * k, STEP * r) for r in range(rows)] for k in range(AISLES)]
    for k, column in enumerate(grid):
        chain = column if k % 2 == 0 else column[::-1]
        for a, b in itertools.pairwise(chain):
            lane(a, b, AISLE_SPEED)
        for seg in RACK_SEGMENTS:
            a, b = (column[seg], column[seg + 1]) if k % 2 == 0 else (column[seg + 1], column[seg])
            for side, normal in (("W", (-1.0, 0.0)), ("E", (1.0, 0.0))):
                name = f"RACK-{k}{side}-{seg}"
                stations.append(
                    {
                        "id": name,
                        "node": bay(name, a, b, normal),
                        "kind": "both",
                        "load_types": ["pallet"],
                        "service_time_s": 20,
                    }
                )
    middle = rows // 2
    for row, eastbound in ((0, True), (middle, True), (rows - 1, False)):
        chain = [grid[k][row] for k in range(AISLES)]
        for a, b in itertools.pairwise(chain if eastbound else chain[::-1]):
            lane(a, b, AISLE_SPEED)
    for k in range(AISLES - 1):
        a, b = grid[k][0], grid[k + 1][0]
        name = f"DOCK-IN-{k + 1}"
        stations.append(
            {
                "id": name,
                "node": bay(name, a, b, (0.0, -1.0)),
                "kind": "pickup",
                "load_types": ["pallet"],
                "service_time_s": 30,
            }
        )
        a, b = grid[k + 1][rows - 1], grid[k][rows - 1]
        name = f"DOCK-OUT-{k + 1}"
        stations.append(
            {
                "id": name,
                "node": bay(name, a, b, (0.0, 1.0)),
                "kind": "dropoff",
                "load_types": ["pallet"],
                "service_time_s": 30,
            }
        )

    # Depot aisle west of the racks, southbound from the north-west corner to the south-west one.
    depot = [node(f"DP{r:02d}", DEPOT_X, HEIGHT - STEP * r) for r in range(rows)]
    for a, b in itertools.pairwise([grid[0][rows - 1], *depot, grid[0][0]]):
        lane(a, b, AISLE_SPEED)
    spots = 0
    for r, (a, b) in enumerate(itertools.pairwise(depot)):
        if r in (0, rows - 2):
            continue  # the corners, where the depot joins the cross aisles
        for normal in ((-1.0, 0.0), (1.0, 0.0)):
            if normal[0] < 0 and r in (3, 4, 5, 6):
                name = f"CHG-{r - 2}"
                chargers.append({"id": name, "node": bay(name, a, b, normal), "power_w": 3000})
            else:
                spots += 1
                name = f"PARK-{spots:02d}"
                parking.append({"id": name, "node": bay(name, a, b, normal)})

    # Buffer roads: each leaves the east end of the one above (the first the south-east corner),
    # runs west and joins the one above at its west end (the first the depot's south end).
    east, west = grid[AISLES - 1][0], depot[-1]
    xs = [PITCH * (AISLES - 1) - STEP * k for k in range(int((PITCH * (AISLES - 1) - DEPOT_X) / STEP) + 1)]
    for r in range(buffer_roads):
        road = [node(f"BUF{r}-{k:02d}", x, -BUFFER_PITCH * (r + 1)) for k, x in enumerate(xs)]
        lane(east, road[0], AISLE_SPEED)
        for seg, (a, b) in enumerate(itertools.pairwise(road)):
            lane(a, b, AISLE_SPEED)
            if seg == 0:
                continue  # beside the road down from the one above
            for normal in ((0.0, 1.0), (0.0, -1.0)):
                spots += 1
                name = f"PARK-{spots:02d}"
                parking.append({"id": name, "node": bay(name, a, b, normal)})
        lane(road[-1], west, AISLE_SPEED)
        east, west = road[0], road[-1]

    vehicle_types = [
        {
            "id": "pallet-amr",
            "length": 1.4,
            "width": 0.9,
            "max_speed": 1.5,
            "acceleration": 0.5,
            "battery_capacity_wh": 4800,
            "consumption_wh_per_m": 0.15,
            "load_capacity": 1,
            "idle_power_w": 60,
            "load_consumption_wh_per_m": 0.05,
            "load_types": ["pallet"],
        }
    ]
    return lay.as_map("warehouse_buffer" if buffer_roads else "warehouse", vehicle_types, [])


def main() -> None:
    header = (
        "# Story: a dense pallet warehouse, nine one-way storage aisles in a Manhattan grid with\n"
        "# rack bays on both sides, goods-in docks south, goods-out docks north, a depot with\n"
        "# chargers and parking west. For traffic and fleet-size studies.\n"
    )
    written = "# Written by scripts/gen_warehouse.py.\n"
    buffer = "# South of the docks, a buffer of 78 more parking spots for carts without work.\n"
    write_map(build(), header + written)
    write_map(build(BUFFER_ROADS), header + buffer + written)


if __name__ == "__main__":
    main()
