"""What a vehicle's factsheet rules out for this plant (VDA 5050 sec. 6.15).

`protocolLimits.maxStringLens`: the ids this controller sends (order, action, node, edge and map
ids), the enums and parameter keys (action types, `stationType`...) and load ids, each against
the length the vehicle reads, and ids that must be numerical. `physicalParameters`: a vehicle
larger than the footprint its map type plans for. A vehicle that could not read this plant's
orders, or that the traffic rules do not fit, gets no orders and the operator is told why; a
limit the factsheet leaves out or sets to 0 limits nothing (as the specification says).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fleet.vda5050.messages import Factsheet
from fleet.vda5050.order_parts import instant_action_id, node_action_id, order_id
from fleet.vda5050.profiles import VehicleProfile
from maps import FacilityMap

# The actions a vehicle must list to be given this plant's work; all the controller may send.
NEEDED_ACTIONS = frozenset({"pick", "drop", "startCharging", "stopCharging", "cancelOrder", "startPause", "stopPause"})
ACTION_TYPES = NEEDED_ACTIONS | {"initPosition", "stateRequest", "factsheetRequest"}
OWN_KEYS = ("stationId", "x", "y", "theta", "mapId", "lastNodeId")


def sent_ids(fmap: FacilityMap, map_id: str, vehicle_id: str, order_prefix: str) -> list[str]:
    """The ids this plant sends the vehicle: its order and action ids (as numbered at their
    longest, a million orders on), node, lane and map ids."""
    order = order_id(vehicle_id, order_prefix, 999_999)
    return [
        order,
        node_action_id(order, "pick"),
        instant_action_id(vehicle_id, order_prefix, 9_999_999_999),
        map_id,
        *(n.id for n in fmap.nodes),
        *(lane.id for lane in fmap.lanes),
    ]


def _limit(lens: dict[str, Any], name: str) -> int | None:
    value = lens.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _too_long(what: str, limit: int | None, values: Iterable[str]) -> list[str]:
    longest = max(values, key=len, default="")
    if limit is None or len(longest) <= limit:
        return []
    return [f"{what} up to {limit} characters, but this plant sends '{longest[:40]}' ({len(longest)})"]


def unmet_string_limits(factsheet: Factsheet, ids: list[str], profile: VehicleProfile | None) -> tuple[str, ...]:
    """The string limits of the factsheet that this plant's messages break, in words."""
    limits = factsheet.protocol_limits or {}
    lens = limits.get("maxStringLens") if isinstance(limits, dict) else None
    if not isinstance(lens, dict):
        return ()
    parameters: dict[str, Any] = {}
    if profile is not None:
        for kinds in (profile.actions, *profile.stations.values()):
            parameters |= kinds.pick | kinds.drop
    enums = [*ACTION_TYPES, *OWN_KEYS, *parameters]
    load_ids = [str(v) for k, v in parameters.items() if k == "loadId"]
    problems = _too_long("ids", _limit(lens, "idLen"), ids)
    if lens.get("idNumericalOnly") is True and (wordy := next((i for i in ids if not i.isdigit()), None)):
        problems.append(f"numerical ids only, but this plant sends '{wordy[:40]}'")
    problems += _too_long("enums and keys", _limit(lens, "enumLen"), enums)
    problems += _too_long("load ids", _limit(lens, "loadIdLen"), load_ids)
    return tuple(problems)


def size_of(factsheet: Factsheet) -> tuple[float, float] | None:
    """(width, length) in metres from its physicalParameters, when both are stated."""
    physical = factsheet.physical_parameters or {}
    width, length = physical.get("width"), physical.get("length")
    if isinstance(width, int | float) and isinstance(length, int | float) and width > 0 and length > 0:
        return float(width), float(length)
    return None
