"""Hostile VDA 5050 messages at the master control: non-finite and extreme numbers, long and
non-ASCII strings, other vehicles' identities. None raises, none reaches the core, each is
counted by its reason."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.vda5050.master import MasterConfig, MasterControl, VehicleAppeared, VehicleSettings
from maps import FacilityMap


def _state(**fields: Any) -> dict[str, Any]:
    state = {
        "headerId": 10,
        "timestamp": "2026-12-06T00:00:00Z",
        "version": "2.0.0",
        "manufacturer": "acme",
        "serialNumber": "AGV-01",
        "orderId": "",
        "orderUpdateId": 0,
        "lastNodeId": "A1",
        "lastNodeSequenceId": 0,
        "nodeStates": [],
        "edgeStates": [],
        "driving": False,
        "actionStates": [],
        "batteryState": {"batteryCharge": 80.0, "charging": False},
        "operatingMode": "AUTOMATIC",
        "errors": [],
        "safetyState": {"eStop": "NONE", "fieldViolation": False},
        "agvPosition": {"x": 0.0, "y": 0.0, "theta": 0.0, "mapId": "small_test", "positionInitialized": True},
    }
    return state | fields


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**40), 10**40), st.sampled_from([1e308, -0.0])
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    charge=_numbers,
    x=_numbers,
    theta=_numbers,
    node=st.text(max_size=2000),
    header=st.one_of(st.integers(-5, 10**20), st.floats(allow_nan=True)),
)
def test_any_state_is_taken_finite_or_dropped_by_reason(
    small_map: FacilityMap, charge: float, x: float, theta: float, node: str, header: float
) -> None:
    """A state with any numbers and any node id: the vehicle appears with a battery in 0..1 and a
    node of the map, or the message is dropped and counted; nothing raises."""
    master = MasterControl(small_map, MasterConfig())
    state = _state(
        headerId=header,
        lastNodeId=node,
        batteryState={"batteryCharge": charge, "charging": False},
        agvPosition={"x": x, "y": 0.0, "theta": theta, "mapId": "small_test", "positionInitialized": True},
    )
    payload = json.dumps(state).encode()  # json writes NaN and Infinity, as a hostile sender may
    out = master.on_message("uagv/v2/acme/AGV-01/state", payload, 0.0)
    appeared = [e for e in out if isinstance(e, VehicleAppeared)]
    if appeared:
        assert 0.0 <= appeared[0].battery <= 1.0 and appeared[0].node in small_map.node_by_id
    else:
        assert sum(master.dropped.values()) == 1, master.dropped
    # The same numbers from a vehicle already on the map: taken or dropped, never raising.
    placed = MasterControl(small_map, MasterConfig())
    placed.on_message("uagv/v2/acme/AGV-01/state", json.dumps(_state(headerId=5)).encode(), 0.0)
    assert "AGV-01" in placed.links
    placed.on_message("uagv/v2/acme/AGV-01/state", payload, 1.0)


def test_identity_impersonation_and_stale_headers_are_dropped_by_reason(small_map: FacilityMap) -> None:
    """Each way a message can claim another vehicle is refused and counted under its own reason;
    a closed fleet lists the stranger as pending and admits it on request."""
    config = MasterConfig(vehicles={"AGV-01": VehicleSettings(manufacturer="acme")}, admit_unknown=False)
    master = MasterControl(small_map, config)
    topic = "uagv/v2/acme/AGV-01/state"
    assert any(isinstance(e, VehicleAppeared) for e in master.on_message(topic, json.dumps(_state()).encode(), 0.0))
    cases = [
        ("uagv/v2/EVIL/AGV-01/state", _state(manufacturer="EVIL"), "impersonation"),
        (topic, _state(manufacturer="EVIL", headerId=11), "identity"),
        (topic, _state(serialNumber="AGV-02", headerId=12), "identity"),
        (topic, _state(headerId=9), "stale_header"),
        ("uagv/v2/rogue/ROGUE-1/state", _state(manufacturer="rogue", serialNumber="ROGUE-1"), "unknown_vehicle"),
    ]
    for where, body, reason in cases:
        before = master.dropped[reason]
        assert master.on_message(where, json.dumps(body).encode(), 1.0) == [], reason
        assert master.dropped[reason] == before + 1, (reason, master.dropped)
    assert master.on_message(topic, json.dumps(_state(headerId=2)).encode(), 2.0) != [], "a restart counts anew"
    assert list(master.pending) == ["ROGUE-1"]
    master.admit("ROGUE-1", 3.0)
    assert not master.pending and b"stateRequest" in master.take_outbox()[-1].payload


def test_a_flood_on_one_topic_is_cut_to_the_rate(small_map: FacilityMap) -> None:
    """1,000 states in one second on one topic: about the burst allowance is taken, the rest is
    dropped as a flood; a second later the vehicle is heard again."""
    master = MasterControl(small_map, MasterConfig())
    topic = "uagv/v2/acme/AGV-01/state"
    for k in range(1000):
        master.on_message(topic, json.dumps(_state(headerId=10 + k)).encode(), k / 1000)
    assert 900 <= master.dropped["flood"] <= 960, master.dropped
    assert master.on_message(topic, json.dumps(_state(headerId=5000)).encode(), 2.0) != []
