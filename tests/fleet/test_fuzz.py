"""The API under a fuzzing run: schemathesis generates requests from the live OpenAPI spec, valid
and invalid, for every operation (the event stream excepted: it never ends), and none may get a
5xx answer. Deterministic (derandomized hypothesis), at least 1000 requests."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from fleet.api.app import create_app
from fleet.api.security import ApiKeys
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from sim.runner import SimConfig, Simulation

PER_OPERATION_AND_MODE = 20
STREAMS = ("/api/v1/events", "/api/v1/ws")


def test_no_server_error_under_fuzzing(small_map: FacilityMap, tmp_path: Path) -> None:
    sim = Simulation(small_map, SimConfig(vehicles=2, seed=3), demand_enabled=False)
    service = FleetService(sim.controller, OrderStore(tmp_path / "fleet.db"))
    sim.listeners.append(service.record)
    sim.run_for(30)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service, keys=ApiKeys()))
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if not op.path.startswith(STREAMS)]
    sent: list[tuple[str, int]] = []
    server_errors: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(operation.as_strategy(generation_mode=mode))
            def send(case: schemathesis.Case) -> None:
                response = case.call()
                sent.append((case.operation.label, response.status_code))
                if response.status_code >= 500:
                    server_errors.append(f"{case.operation.label} -> {response.status_code}: {response.text[:200]}")
                sim.run_for(0.5)  # the plant moves on between requests

            try:
                send()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise  # an operation without parameters has no invalid request to make
    assert len(sent) >= 1000, f"only {len(sent)} requests generated"
    assert server_errors == []
    assert {label for label, _ in sent} >= {op.label for op in operations}, "every operation was exercised"
