"""Map loading and validation: every problem is found and named."""

from __future__ import annotations

from typing import Any

import pytest

from maps import FacilityMap, MapValidationError, StationKind, bundled_map_names, load_map, parse_map
from maps.schema import MapFile, map_from_wire, map_to_wire


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(MapValidationError) as info:
        parse_map(data, source="test")
    return info.value.problems


def test_bundled_maps_are_valid_and_sized_as_promised(small_map: FacilityMap, plant_map: FacilityMap) -> None:
    """The small map has about 20 nodes; the plant 150-300, with every area the issue names."""
    assert set(bundled_map_names()) >= {"small_test", "solar_module_plant"}
    assert 15 <= len(small_map.nodes) <= 25
    assert 150 <= len(plant_map.nodes) <= 300
    ids = {s.id for s in plant_map.stations}
    for area in ("RMW-", "PECVD-", "STR-1", "STR-4", "LAM-1", "LAM-2", "EL-TEST", "PACK-", "FGS-"):
        assert any(i.startswith(area) for i in ids), area
    assert plant_map.chargers and plant_map.parking
    assert any(z.kind.value == "single_vehicle" for z in plant_map.zones)
    assert not any(lane.two_way for lane in plant_map.lanes), "plant aisles are one-way"


def test_the_buffered_warehouse_is_the_warehouse_with_78_more_parking_spots() -> None:
    """`warehouse_buffer` keeps every station, charger and parking spot of `warehouse` where it
    is and adds 78 parking spots (that every place reaches every other is what loading the map
    validated)."""
    plain, buffered = load_map("warehouse"), load_map("warehouse_buffer")
    assert {(s.id, s.node) for s in buffered.stations} == {(s.id, s.node) for s in plain.stations}
    assert {(c.id, c.node) for c in buffered.chargers} == {(c.id, c.node) for c in plain.chargers}
    assert {(p.id, p.node) for p in plain.parking} < {(p.id, p.node) for p in buffered.parking}
    assert len(buffered.parking) == len(plain.parking) + 78


def test_unknown_node_on_lane_is_named(small_map_data: dict[str, Any]) -> None:
    """A lane to a node that does not exist is reported with the lane and the node."""
    small_map_data["lanes"].append({"id": "BAD", "from": "A1", "to": "GHOST", "max_speed": 1.0})
    assert "lane BAD: unknown node 'GHOST' (to)" in problems_of(small_map_data)


def test_duplicate_ids_are_named(small_map_data: dict[str, Any]) -> None:
    """Two nodes or two stations with the same id are each reported."""
    small_map_data["nodes"].append({"id": "A1", "x": 50, "y": 50})
    small_map_data["stations"].append(dict(small_map_data["stations"][0]))
    found = problems_of(small_map_data)
    assert "duplicate node id 'A1' (2 times)" in found
    assert "duplicate station id 'ST-A' (2 times)" in found


def test_zero_length_lane_is_named(small_map_data: dict[str, Any]) -> None:
    """A lane from a node to itself has zero length."""
    small_map_data["lanes"].append({"id": "LOOP", "from": "A1", "to": "A1", "max_speed": 1.0})
    assert any(p.startswith("lane LOOP: zero length") for p in problems_of(small_map_data))


def test_station_on_missing_node_is_named(small_map_data: dict[str, Any]) -> None:
    small_map_data["stations"][0]["node"] = "NOWHERE"
    assert "station ST-A: on missing node 'NOWHERE'" in problems_of(small_map_data)


def test_node_inside_keep_out_zone_is_named(small_map_data: dict[str, Any]) -> None:
    """Moving the pillar over M1 puts a node (and its lanes) inside a keep-out zone."""
    pillar = next(z for z in small_map_data["zones"] if z["id"] == "PILLAR")
    pillar["polygon"] = [[11, 3], [13, 3], [13, 5], [11, 5]]
    found = problems_of(small_map_data)
    assert "node M1: inside keep-out zone PILLAR" in found
    assert "lane A3-M1: crosses keep-out zone PILLAR" in found


def test_unreachable_station_is_named(small_map_data: dict[str, Any]) -> None:
    """Dropping the lane out of bay SB strands station ST-B: nothing comes back from it."""
    small_map_data["lanes"] = [ln for ln in small_map_data["lanes"] if ln["from"] != "SB"]
    found = problems_of(small_map_data)
    assert "station ST-A cannot be reached from station ST-B (node SB)" in found


def test_every_problem_is_listed_at_once(small_map_data: dict[str, Any]) -> None:
    """Several independent problems are all reported by one validation."""
    small_map_data["lanes"].append({"id": "BAD", "from": "A1", "to": "GHOST", "max_speed": 1.0})
    small_map_data["stations"][0]["node"] = "NOWHERE"
    small_map_data["nodes"].append({"id": "A2", "x": 40, "y": 40})
    found = problems_of(small_map_data)
    assert len(found) >= 3
    assert "ST-A" in " ".join(found) and "GHOST" in " ".join(found) and "'A2'" in " ".join(found)


def test_clearance_between_unconnected_elements(small_map_data: dict[str, Any]) -> None:
    """A node squeezed next to an aisle it is not on would let two carts touch."""
    small_map_data["nodes"].append({"id": "TIGHT", "x": 9, "y": 0.5})
    small_map_data["lanes"] += [
        {"from": "A2", "to": "TIGHT", "max_speed": 1.0, "two_way": True},
    ]
    found = problems_of(small_map_data)
    assert any("node TIGHT and lane A2-A3" in p for p in found)


def test_schema_errors_name_the_field(small_map_data: dict[str, Any]) -> None:
    """Wrong types and unknown keys are reported with their path in the file."""
    small_map_data["lanes"][0]["max_speed"] = -1
    small_map_data["nodes"][0]["colour"] = "red"
    found = problems_of(small_map_data)
    assert any(p.startswith("lanes.0.max_speed:") for p in found)
    assert any(p.startswith("nodes.0.colour:") for p in found)


def test_wire_round_trip(plant_map: FacilityMap) -> None:
    """map_to_wire then map_from_wire gives back the same map."""
    again = map_from_wire(MapFile.model_validate(map_to_wire(plant_map)))
    assert again.nodes == plant_map.nodes
    assert again.lanes == plant_map.lanes
    assert again.stations == plant_map.stations
    assert again.vehicle_types == plant_map.vehicle_types
    assert all(z.polygon.equals(w.polygon) for z, w in zip(again.zones, plant_map.zones, strict=True))


def test_station_kinds(small_map: FacilityMap) -> None:
    kinds = {s.id: s.kind for s in small_map.stations}
    assert kinds["ST-A"] is StationKind.PICKUP and kinds["ST-A"].can_pick and not kinds["ST-A"].can_drop
    assert kinds["ST-C"].can_pick and kinds["ST-C"].can_drop


def test_node_heading_and_deviation_round_trip_and_are_checked(small_map_data: dict[str, Any]) -> None:
    """A node's heading and allowed deviations survive map_to_wire and back; a heading beyond pi
    and a negative deviation are refused, naming the field."""
    small_map_data["nodes"][0].update(theta=-3.0, allowed_deviation_xy=0.05, allowed_deviation_theta=0.2)
    fmap = parse_map(small_map_data, source="test")
    assert map_from_wire(MapFile.model_validate(map_to_wire(fmap))).nodes == fmap.nodes
    assert (fmap.nodes[0].theta, fmap.nodes[0].deviation_xy, fmap.nodes[0].deviation_theta) == (-3.0, 0.05, 0.2)
    small_map_data["nodes"][0].update(theta=4.0, allowed_deviation_xy=-1)
    found = problems_of(small_map_data)
    assert any(p.startswith("nodes.0.theta:") for p in found) and any(
        p.startswith("nodes.0.allowed_deviation_xy:") for p in found
    )
