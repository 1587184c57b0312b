"""Bad input at the API: every number finite and in range, one error shape naming the field,
nothing stored, never a 500, and nothing a client sends echoed back whole."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.service import FleetService
from sim.runner import Simulation

POISON_BODIES = [
    ('{"from": "ST-A", "to": "ST-B", "due_at": Infinity}', "due_at"),
    ('{"from": "ST-A", "to": "ST-B", "due_at": 1e300}', "due_at"),
    ('{"from": "ST-A", "to": "ST-B", "due_at": 1e308}', "due_at"),
    ('{"from": "ST-A", "to": "ST-B", "due_at": NaN}', "due_at"),
    ('{"from": "ST-A", "to": "ST-B", "ready_at": -Infinity}', "ready_at"),
    ('{"from": "ST-A", "to": "ST-B", "priority": NaN}', "priority"),
    ('{"from": "ST-A", "to": "ST-B", "priority": 1e400}', "priority"),
]


@pytest.mark.parametrize(("raw", "field"), POISON_BODIES)
async def test_non_finite_and_huge_numbers_are_refused_naming_the_field(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService], raw: str, field: str
) -> None:
    """A non-finite or out-of-range number gets a 422 problem naming its field; nothing is stored."""
    response = await client.post("/api/v1/orders", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field and problem["status"] == 422 and problem["title"] == "Unprocessable Entity"
    assert response.headers["content-type"] == "application/problem+json"
    assert plant[1].store.count() == 0 and not plant[1].controller.orders


@pytest.mark.parametrize("raw", ['{"max_working_vehicles": Infinity}', '{"max_working_vehicles": 1e12}'])
async def test_an_unbounded_admission_limit_is_refused(client: httpx.AsyncClient, raw: str) -> None:
    """The admission limit is an integer up to 10,000: infinity and 1e12 are 422s naming it."""
    response = await client.put("/api/v1/fleet/admission", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == "max_working_vehicles"


@pytest.mark.parametrize("last_event_id", ["9" * 5000, "١٢٣", "²", "-1", "1.5"])
async def test_a_malformed_last_event_id_is_a_422(client: httpx.AsyncClient, last_event_id: str) -> None:
    """Last-Event-ID is up to 18 ASCII digits: anything else is refused, never a 500 or a reset."""
    response = await client.get("/api/v1/events?wait=false", headers={"last-event-id": last_event_id.encode("utf-8")})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "header.last-event-id"


async def test_a_good_last_event_id_resumes_the_stream(client: httpx.AsyncClient) -> None:
    """A numeric Last-Event-ID still resumes where the client left off."""
    assert (await client.post("/api/v1/lanes/A1-A2/close")).status_code == 200
    response = await client.get("/api/v1/events?wait=false", headers={"last-event-id": "0"})
    assert response.status_code == 200 and "id: 1" in response.text


async def test_unicode_and_long_ids_are_answered_and_cut(client: httpx.AsyncClient) -> None:
    """An emoji order id is a plain 404; a 10,000-character station is refused without its echo."""
    emoji = await client.get("/api/v1/orders/\U0001f4a5")
    assert emoji.status_code == 404 and "\U0001f4a5" in emoji.json()["detail"]
    long = await client.post("/api/v1/orders", json={"from": "X" * 10_000, "to": "ST-B"})
    assert long.status_code == 422 and long.json()["field"] == "from"
    assert len(long.text) < 1_000
    long_path = await client.get("/api/v1/orders/" + "Y" * 10_000)
    assert long_path.status_code == 404 and len(long_path.text) < 1_000


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([1e300, -1e300, 4_102_444_800.0, 4_102_444_801.0]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(due_at=_numbers, ready_at=_numbers, priority=_numbers)
def test_any_number_is_stored_finite_or_refused(
    plant: tuple[Simulation, FleetService], due_at: float, ready_at: float, priority: float
) -> None:
    """Whatever numbers a body carries, the answer is 201 or 422, never 500, and a stored order
    holds finite times only."""
    _, service = plant
    body = json.dumps({"from": "ST-A", "to": "ST-B", "due_at": due_at, "ready_at": ready_at, "priority": priority})
    with TestClient(create_app(service, keys=ApiKeys())) as client:
        response = client.post("/api/v1/orders", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        stored = service.store.get(response.json()["id"])
        assert stored is not None and stored.due_at is not None and math.isfinite(stored.due_at)
    else:
        assert response.json()["field"] in {"due_at", "ready_at", "priority"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(station=st.text(min_size=0, max_size=3000), need=st.text(max_size=30))
def test_any_text_in_a_call_is_answered_without_a_500(
    plant: tuple[Simulation, FleetService], station: str, need: str
) -> None:
    """Unicode, control characters and long strings in a PLC call get a short 4xx problem."""
    _, service = plant
    with TestClient(create_app(service, keys=ApiKeys())) as client:
        response = client.post("/api/v1/calls", json={"station": station, "need": need})
    assert response.status_code == 422, response.text
    assert response.json()["field"] in {"station", "need"} and len(response.text) < 2_000
