"""Vehicle profiles: what the controller must know of each vendor's VDA 5050 vehicles, in one file
(`fleet serve --vehicles FILE`).

A profile describes a kind of vehicle: the exact header version it accepts, the mapId it uses
for each controller map, the parameters its pick and drop actions need (per station too:
`stationType`, `loadType`, `loadId`, a height), and named compatibility quirks, each with the
reason it is needed. The file then lists the fleet: each vehicle by manufacturer and serial
number, with its profile and its vehicle type on the facility map. Example:
`examples/vehicles-vda-5050-lib.yaml`.

Validated whole: every problem is named (a quirk nobody knows, a vehicle with an unknown profile,
a serial number listed twice), never only the first.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from fleet.vda5050.topics import VehicleKey

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
ParameterValue = str | int | float | bool


class Quirk(StrEnum):
    """A way a vendor's vehicle reads VDA 5050 otherwise than the standard, and what the
    controller does for it."""

    # The vehicle reads an instantActions message's array under `instantActions` (the VDA 5050
    # 1.1 key) instead of `actions`: both keys are sent, which the official schemas allow.
    INSTANT_ACTIONS_KEY = "instant-actions-key"
    # The vehicle reads a node position's allowed deviation under `allowedDeviationXy` (the 1.1
    # spelling) instead of `allowedDeviationXY`: both are sent, which the schemas allow.
    DEVIATION_XY_KEY = "allowed-deviation-xy-key"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class QuirkIn(_Strict):
    name: Quirk
    reason: str = Field(min_length=1, max_length=500, description="why this vendor needs it")


class ActionParameters(_Strict):
    """Action parameters sent with pick and drop (besides `stationId`, always sent)."""

    pick: dict[str, ParameterValue] = Field(default_factory=dict)
    drop: dict[str, ParameterValue] = Field(default_factory=dict)


class VehicleProfile(_Strict):
    """One kind of vehicle: a vendor's model, as the controller must speak to it."""

    version: str = Field(default="2.0.0", pattern=r"^\d+\.\d+\.\d+$", description="exact header version it accepts")
    map_ids: dict[str, Name] = Field(
        default_factory=dict, description="controller map name -> the mapId the vehicle uses for it"
    )
    actions: ActionParameters = Field(default_factory=ActionParameters)
    stations: dict[Name, ActionParameters] = Field(
        default_factory=dict, description="station id -> parameters that differ there (they win)"
    )
    quirks: list[QuirkIn] = Field(default_factory=list)

    def map_id(self, map_name: str) -> str:
        return self.map_ids.get(map_name, map_name)

    def parameters(self, action: str, station_id: str) -> dict[str, ParameterValue]:
        """The parameters of a pick or drop at `station_id`."""
        here = self.stations.get(station_id)
        return {**getattr(self.actions, action), **(getattr(here, action) if here else {})}

    def has(self, quirk: Quirk) -> bool:
        return any(q.name is quirk for q in self.quirks)


class FleetVehicle(_Strict):
    manufacturer: Name
    serial_number: Name
    profile: Name
    vehicle_type: Name | None = Field(default=None, description="its type on the facility map; default the first")


class ProfileFile(_Strict):
    interface_name: Name = "uagv"
    profiles: dict[Name, VehicleProfile] = Field(min_length=1)
    vehicles: list[FleetVehicle] = Field(min_length=1)


class ProfileError(ValueError):
    """A profile file with problems; `problems` names every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))


def parse_profiles(data: Any, source: str = "<profiles>") -> ProfileFile:
    """A profile file's data, checked whole (ProfileError lists every problem)."""
    try:
        parsed = ProfileFile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(
            source, [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems = []
    seen: set[str] = set()
    for k, v in enumerate(parsed.vehicles):
        if v.profile not in parsed.profiles:
            problems.append(f"vehicles.{k}: unknown profile '{v.profile}' (profiles: {', '.join(parsed.profiles)})")
        if v.serial_number in seen:
            problems.append(f"vehicles.{k}: serial number '{v.serial_number}' listed twice")
        seen.add(v.serial_number)
        try:
            VehicleKey(v.manufacturer, v.serial_number)
        except ValueError as exc:
            problems.append(f"vehicles.{k}: {exc}")
    if problems:
        raise ProfileError(source, problems)
    return parsed


def load_profiles(path: str | Path) -> ProfileFile:
    """Read and check a profile file (YAML or JSON)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(str(path), [f"cannot be read: {exc}"]) from None
    return parse_profiles(data, str(path))
