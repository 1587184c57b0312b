"""The factsheet's string limits against what this plant sends: each limit named when broken,
none when left out or 0 (VDA 5050: no explicit limit)."""

from __future__ import annotations

from typing import Any

from fleet.vda5050.limits import sent_ids, size_of, unmet_string_limits
from fleet.vda5050.messages import Factsheet
from fleet.vda5050.profiles import VehicleProfile
from maps import FacilityMap


def factsheet(**body: Any) -> Factsheet:
    header = {"headerId": 1, "timestamp": "2026-01-01T00:00:00Z", "version": "2.0.0"}
    return Factsheet.model_validate({**header, "manufacturer": "M", "serialNumber": "S", **body})


def test_each_broken_string_limit_is_named(small_map: FacilityMap) -> None:
    """idLen, idNumericalOnly, enumLen (action types and profile keys) and loadIdLen each give
    one problem naming the limit and the longest value sent."""
    ids = sent_ids(small_map, small_map.name, "AGV-01", "r1")
    profile = VehicleProfile.model_validate(
        {"actions": {"pick": {"stationTypeForThisVendor": "RACK", "loadId": "L-0000001"}}}
    )
    lens = {"idLen": 10, "idNumericalOnly": True, "enumLen": 20, "loadIdLen": 4}
    problems = unmet_string_limits(factsheet(protocolLimits={"maxStringLens": lens}), ids, profile)
    assert [p.split(" up to")[0].split(",")[0] for p in problems] == [
        "ids",
        "numerical ids only",
        "enums and keys",
        "load ids",
    ]
    assert "'AGV-01-ia-r19999999999'" in problems[0]
    assert "'stationTypeForThisVendor' (24)" in problems[2]


def test_limits_left_out_or_zero_limit_nothing(small_map: FacilityMap) -> None:
    """No maxStringLens, or every limit 0, and no problem; a size is read only when stated whole."""
    ids = sent_ids(small_map, small_map.name, "AGV-01", "")
    assert unmet_string_limits(factsheet(), ids, None) == ()
    zero = {"idLen": 0, "enumLen": 0, "loadIdLen": 0, "msgLen": 0}
    assert unmet_string_limits(factsheet(protocolLimits={"maxStringLens": zero}), ids, None) == ()
    assert size_of(factsheet(physicalParameters={"width": 0.8, "length": 1.2})) == (0.8, 1.2)
    assert size_of(factsheet(physicalParameters={"width": 0.8})) is None
