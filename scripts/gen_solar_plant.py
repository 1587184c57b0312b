"""Write the bundled `solar_module_plant` map (maps/data/solar_module_plant.yaml).

The YAML is the source of truth the package loads; this script records how its layout was laid
out, so the plant can be re-drawn consistently. Run: `python scripts/gen_solar_plant.py`.

Layout (metres): a 160 x 80 m hall ringed by a one-way counter-clockwise aisle with nodes every
8 m; two one-way cross aisles (x=56 northbound, x=104 southbound) that hold parking and charging
bays; a vehicle depot aisle west of the hall with more parking. Every station sits in a
drive-through bay outside the ring: aisle node -> queue node -> station node -> next aisle node,
so a cart waiting for a busy station waits in the bay, not in the aisle. Material flows
raw-material warehouse -> PECVD -> stringers -> lamination -> EL test -> packing -> finished
goods, as the stations' load types say.
"""

from __future__ import annotations

import itertools
from typing import Any

from layout import Layout, write_map

STEP = 8.0
BAY = 4.0
AISLE_SPEED = 1.5
BAY_SPEED = 0.8

# (bay id, station kind, load types, service time s) placed along each ring side, by segment index.
BOTTOM = {  # y = 0, eastward, segment i runs from x=8i to x=8(i+1)
    1: ("RMW-WAFER", "pickup", ["wafer_cassette"], 25),
    2: ("RMW-GLASS", "pickup", ["glass_rack"], 30),
    3: ("RMW-FRAME", "pickup", ["frame_rack"], 25),
    4: ("RMW-EMPTY", "dropoff", ["empty_rack"], 20),
    6: ("PECVD-1-IN", "dropoff", ["wafer_cassette"], 30),
    7: ("PECVD-1-OUT", "pickup", ["cell_box"], 30),
    8: ("PECVD-2-IN", "dropoff", ["wafer_cassette"], 30),
    9: ("PECVD-2-OUT", "pickup", ["cell_box"], 30),
    10: ("PECVD-3-IN", "dropoff", ["wafer_cassette"], 30),
    11: ("PECVD-3-OUT", "pickup", ["cell_box"], 30),
    # segments 14-16 are the fire door between the cell shop and the module shop: no bays.
    18: ("CELL-BUFFER", "both", ["cell_box"], 20),
}
RIGHT = {  # x = 160, northward, segment i runs from y=8i to y=8(i+1)
    1: ("STR-1-IN", "dropoff", ["cell_box"], 25),
    2: ("STR-1-OUT", "pickup", ["string_rack", "empty_rack"], 25),
    3: ("STR-2-IN", "dropoff", ["cell_box"], 25),
    4: ("STR-2-OUT", "pickup", ["string_rack", "empty_rack"], 25),
    5: ("STR-3-IN", "dropoff", ["cell_box"], 25),
    6: ("STR-3-OUT", "pickup", ["string_rack", "empty_rack"], 25),
    7: ("STR-4-IN", "dropoff", ["cell_box"], 25),
    8: ("STR-4-OUT", "pickup", ["string_rack", "empty_rack"], 25),
}
TOP = {  # y = 80, westward, segment i runs from x=160-8i to x=160-8(i+1)
    2: ("LAM-1-IN", "dropoff", ["string_rack", "glass_rack"], 35),
    3: ("LAM-1-OUT", "pickup", ["laminate_rack"], 35),
    5: ("LAM-2-IN", "dropoff", ["string_rack", "glass_rack"], 35),
    6: ("LAM-2-OUT", "pickup", ["laminate_rack"], 35),
    9: ("EL-TEST-IN", "dropoff", ["laminate_rack"], 20),
    10: ("EL-TEST-OUT", "pickup", ["tested_rack"], 20),
    13: ("PACK-IN", "dropoff", ["tested_rack", "frame_rack"], 30),
    14: ("PACK-OUT", "pickup", ["module_pallet", "empty_rack"], 30),
}
LEFT = {  # x = 0, southward, segment i runs from y=80-8i to y=80-8(i+1)
    2: ("FGS-1", "dropoff", ["module_pallet"], 30),
    3: ("FGS-2", "dropoff", ["module_pallet"], 30),
    5: ("FGS-3", "dropoff", ["module_pallet"], 30),
}


def _ring() -> list[tuple[str, float, float]]:
    """Ring aisle nodes in driving order, counter-clockwise from the origin."""
    pts: list[tuple[str, float, float]] = []
    pts += [(f"B{i:02d}", STEP * i, 0.0) for i in range(20)]
    pts += [(f"R{i:02d}", 160.0, STEP * i) for i in range(10)]
    pts += [(f"T{i:02d}", 160.0 - STEP * i, 80.0) for i in range(20)]
    pts += [(f"L{i:02d}", 0.0, 80.0 - STEP * i) for i in range(10)]
    return pts


def build() -> dict[str, Any]:
    lay = Layout(BAY, BAY_SPEED)
    node, lane, bay = lay.node, lay.lane, lay.bay
    stations, chargers, parking = lay.stations, lay.chargers, lay.parking

    ring = _ring()
    for nid, x, y in ring:
        node(nid, x, y)
    ids = [nid for nid, _, _ in ring]
    for a, b in zip(ids, ids[1:] + ids[:1], strict=True):
        lane(a, b, AISLE_SPEED)

    sides = (
        ("B", BOTTOM, (0.0, -1.0)),
        ("R", RIGHT, (1.0, 0.0)),
        ("T", TOP, (0.0, 1.0)),
        ("L", LEFT, (-1.0, 0.0)),
    )
    for prefix, placements, normal in sides:
        side_ids = [i for i in ids if i.startswith(prefix)]
        nxt = {a: b for a, b in zip(ids, ids[1:] + ids[:1], strict=True)}
        for seg, (name, kind, loads, service) in placements.items():
            a = side_ids[seg]
            s = bay(name, a, nxt[a], normal)
            stations.append({"id": name, "node": s, "kind": kind, "load_types": loads, "service_time_s": service})

    # Cross aisles: x=56 northbound from B07 to T13, x=104 southbound from T07 to B13.
    north = [node(f"XN{i:02d}", 56.0, STEP * i) for i in range(1, 10)]
    south = [node(f"XS{i:02d}", 104.0, 80.0 - STEP * i) for i in range(1, 10)]
    for chain in (["B07", *north, "T13"], ["T07", *south, "B13"]):
        for a, b in itertools.pairwise(chain):
            lane(a, b, AISLE_SPEED)
    spots = 0
    for chain, sides_xy in ((north, ((-1.0, 0.0), (1.0, 0.0))), (south, ((1.0, 0.0), (-1.0, 0.0)))):
        for k, (a, b) in enumerate(itertools.pairwise(chain)):
            for side, normal in enumerate(sides_xy):
                if chain is north and k in (3, 4) and side == 0:
                    name = f"CHG-{k - 2}"
                    s = bay(name, a, b, normal)
                    chargers.append({"id": name, "node": s, "power_w": 3000})
                elif chain is south and k in (3, 4) and side == 0:
                    name = f"CHG-{k}"
                    s = bay(name, a, b, normal)
                    chargers.append({"id": name, "node": s, "power_w": 3000})
                else:
                    spots += 1
                    name = f"PARK-{spots:02d}"
                    parking.append({"id": name, "node": bay(name, a, b, normal)})

    # Vehicle depot west of the hall: a one-way aisle from L00 south to B00 with parking bays
    # on both sides, so a large fleet has somewhere to wait that is not an aisle or a station.
    depot = [node(f"DP{i:02d}", -24.0, 80.0 - STEP * i) for i in range(10)]
    for a, b in zip(["L00", *depot], [*depot, "B00"], strict=True):
        lane(a, b, AISLE_SPEED)
    for k, (a, b) in enumerate(itertools.pairwise(depot)):
        for normal in ((-1.0, 0.0), (1.0, 0.0)):
            if k == 0 and normal[0] > 0:
                continue  # the entry lane from L00 runs where this bay would be
            spots += 1
            name = f"PARK-{spots:02d}"
            parking.append({"id": name, "node": bay(name, a, b, normal)})

    zones = [
        {
            "id": "FIRE-DOOR-CELL-MODULE",
            "kind": "single_vehicle",
            "polygon": [[116.0, -2.0], [124.0, -2.0], [124.0, 2.0], [116.0, 2.0]],
        },
        {
            "id": "CLEANROOM-PECVD",
            "kind": "speed_limit",
            "speed_limit": 0.8,
            "polygon": [[44.0, -10.0], [100.0, -10.0], [100.0, -2.0], [44.0, -2.0]],
        },
        {"id": "PECVD-EQUIPMENT", "kind": "keep_out", "polygon": [[6.0, 6.0], [48.0, 6.0], [48.0, 74.0], [6.0, 74.0]]},
        {
            "id": "STRINGER-HALL",
            "kind": "keep_out",
            "polygon": [[112.0, 6.0], [154.0, 6.0], [154.0, 74.0], [112.0, 74.0]],
        },
        {"id": "LAYUP-AREA", "kind": "keep_out", "polygon": [[64.0, 6.0], [96.0, 6.0], [96.0, 74.0], [64.0, 74.0]]},
    ]
    vehicle_types = [
        {
            "id": "amr-rack",
            "length": 1.6,
            "width": 1.0,
            "max_speed": 1.5,
            "acceleration": 0.5,
            "battery_capacity_wh": 4800,
            "consumption_wh_per_m": 0.15,
            "load_capacity": 1,
            "idle_power_w": 60,
            "load_consumption_wh_per_m": 0.05,
            "load_types": sorted(
                {
                    "wafer_cassette",
                    "cell_box",
                    "string_rack",
                    "glass_rack",
                    "laminate_rack",
                    "tested_rack",
                    "frame_rack",
                    "module_pallet",
                    "empty_rack",
                }
            ),
        }
    ]
    return lay.as_map("solar_module_plant", vehicle_types, zones)


def main() -> None:
    header = (
        "# Story: a crystalline-silicon module plant, 160 x 80 m hall. Raw-material warehouse and\n"
        "# three PECVD lines on the south aisle, four stringer lines east, two laminators, EL test\n"
        "# and packing north, finished-goods store west; one-way ring aisle, two one-way cross aisles\n"
        "# with parking and chargers, a vehicle depot to the west, a single-vehicle fire door between\n"
        "# cell and module shop.\n"
        "# Written by scripts/gen_solar_plant.py.\n"
    )
    write_map(build(), header)


if __name__ == "__main__":
    main()
