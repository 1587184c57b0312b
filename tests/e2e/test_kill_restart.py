"""The controller process SIGKILLed in the middle of a run and started again: every order it
accepted before the kill finishes exactly once.

Three real processes, as in a plant (`tests.e2e.plant`). 60 transports are accepted through the HTTP API
(45 orders and 15 PLC calls with idempotency keys); when a quarter have finished the controller
is killed with SIGKILL, started again on the same database, and must take every open order and
every vehicle back (vehicles mid-base included). Both processes run a clock 50 times faster than
real time on one shared anchor.
"""

from __future__ import annotations

import json
import time

from tests.e2e.plant import CALL_STATIONS, CALLS, ORDERS, ROUTES, Plant, finished_count, request, stored_orders


def test_sigkill_mid_run_loses_no_order_and_finishes_each_once(plant: Plant) -> None:
    plant.start_controller()
    accepted: list[str] = []
    calls: dict[str, str] = {}
    for k in range(ORDERS + CALLS):
        if k % 4 == 3 and len(calls) < CALLS:
            station, need = CALL_STATIONS[len(calls) % len(CALL_STATIONS)]
            key = f"plc-call-{len(calls)}"
            order = request(
                plant.base, "POST", "/api/v1/calls", {"station": station, "need": need}, {"Idempotency-Key": key}
            )
            calls[key] = order["id"]  # type: ignore[index]
        else:
            pickup, dropoff = ROUTES[k % len(ROUTES)]
            order = request(plant.base, "POST", "/api/v1/orders", {"from": pickup, "to": dropoff})
        accepted.append(order["id"])  # type: ignore[index]
    assert len(set(accepted)) == ORDERS + CALLS

    # Generous deadlines: a slow run is no lost order. (Runs that stalled here had a dead MQTT
    # sender: a publish timed out while the controller read its backlog of states, and it
    # never sent again; see `MqttEndpoint._run`.)
    deadline = time.monotonic() + 400
    while finished_count(plant.db) < 0.25 * len(accepted):
        assert time.monotonic() < deadline, f"only {finished_count(plant.db)} finished before the kill"
        time.sleep(0.5)
    plant.kill_controller()
    finished_at_kill = finished_count(plant.db)
    open_at_kill = len(accepted) - finished_at_kill
    plant.start_controller()

    # A PLC that retries its calls after the crash gets the orders it got before, nothing new.
    for key in list(calls)[:10]:
        station, need = CALL_STATIONS[list(calls).index(key) % len(CALL_STATIONS)]
        again = request(
            plant.base, "POST", "/api/v1/calls", {"station": station, "need": need}, {"Idempotency-Key": key}
        )
        assert again["id"] == calls[key]  # type: ignore[index]

    deadline = time.monotonic() + 480
    while finished_count(plant.db) < len(accepted):
        assert time.monotonic() < deadline, f"{finished_count(plant.db)} of {len(accepted)} finished after the restart"
        time.sleep(0.5)

    stored = stored_orders(plant.db)
    assert sorted(stored) == sorted(accepted), "nothing lost, nothing created twice"
    for oid, order in stored.items():
        states = [t[1] for t in order["history"]]  # type: ignore[union-attr]
        assert states.count("finished") == 1, f"{oid}: {states}"
        assert states.count("loading") >= 1 and states[-1] == "finished", f"{oid}: {states}"
    assert 0 < finished_at_kill < len(accepted) and open_at_kill > 0
    plant.stop()
    report = json.loads(plant.report.read_text())
    assert report["collisions"] == [], report["collisions"]
