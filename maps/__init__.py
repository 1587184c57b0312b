"""Facility maps: nodes, lanes, stations, zones and vehicle types, with loading and validation."""

from maps.load import MapValidationError, bundled_map_names, load_map, load_map_file, parse_map
from maps.model import (
    Charger,
    FacilityMap,
    Lane,
    Node,
    ParkingSpot,
    Station,
    StationKind,
    VehicleType,
    Zone,
    ZoneKind,
)

__all__ = [
    "Charger",
    "FacilityMap",
    "Lane",
    "MapValidationError",
    "Node",
    "ParkingSpot",
    "Station",
    "StationKind",
    "VehicleType",
    "Zone",
    "ZoneKind",
    "bundled_map_names",
    "load_map",
    "load_map_file",
    "parse_map",
]
