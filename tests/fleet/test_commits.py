"""Group commit: writes reach storage in the order they were made, many requests share one
transaction, nobody is answered before their data is committed, and a failed commit answers
503 instead of an acknowledgement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.commits import CommitQueue, StorageFailed
from fleet.model import OrderState, Transition, TransportOrder
from fleet.service import FleetService
from fleet.storage import OrderStore
from sim.runner import Simulation


def _order(state: OrderState, at: float) -> TransportOrder:
    order = TransportOrder("TO-000001", "ST-A", "ST-B", "rack", 0, 0.0, history=(Transition(0.0, OrderState.ACCEPTED),))
    return order if state is OrderState.ACCEPTED else order.transition(state, at, vehicle_id="AGV-01")


async def test_writes_keep_their_order_and_share_transactions(tmp_path: Path) -> None:
    """Fifty changes of one order queued at once: the last one is what storage holds, and they
    took far fewer transactions than writes."""
    store = OrderStore(tmp_path / "f.db")
    queue = CommitQueue(store)
    states = [OrderState.ACCEPTED, OrderState.ASSIGNED] * 25
    for k, state in enumerate(states):
        queue.later(store.orders_write([_order(state, float(k))], float(k)))
    await queue.committed()
    saved = store.get("TO-000001")
    assert saved is not None and saved.state is OrderState.ASSIGNED and saved.history[-1].at == 49.0
    assert queue.writes == 50 and queue.batches < 10
    await queue.close()


async def test_committed_waits_for_the_batch_in_flight(tmp_path: Path) -> None:
    store = OrderStore(tmp_path / "f.db")
    queue = CommitQueue(store)
    queue.later(store.orders_write([_order(OrderState.ACCEPTED, 0.0)], 0.0))
    await asyncio.sleep(0)  # the worker has taken the batch
    await queue.committed()
    assert store.get("TO-000001") is not None
    await queue.close()


def test_without_a_loop_writes_commit_at_once(tmp_path: Path) -> None:
    store = OrderStore(tmp_path / "f.db")
    queue = CommitQueue(store)
    queue.later(store.orders_write([_order(OrderState.ACCEPTED, 0.0)], 0.0))
    assert store.get("TO-000001") is not None and queue.batches == 1


async def test_concurrent_calls_share_commits_and_retries_find_their_order(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """Thirty PLC calls at once, ten of them the same call retried: 21 orders, every answer given
    only once its order is stored, the retries all answered with the first order."""
    _, service = plant

    async def call(key: str) -> httpx.Response:
        return await client.post(
            "/api/v1/calls", json={"station": "ST-B", "need": "material"}, headers={"Idempotency-Key": key}
        )

    answers = await asyncio.gather(*(call(f"k-{k}") for k in range(20)), *(call("same") for _ in range(10)))
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    retried = {a.json()["id"] for a in answers[20:]}
    assert len(retried) == 1
    assert service.store.count() == 21
    assert all(service.store.get(a.json()["id"]) is not None for a in answers)
    assert service.commits.batches < 40, "commits were shared"


async def test_a_failed_commit_acknowledges_nothing(
    plant: tuple[Simulation, FleetService], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, service = plant

    def broken(writes: list[object]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(service.store, "transaction", broken)
    transport = httpx.ASGITransport(app=create_app(service, keys=ApiKeys()))
    async with httpx.AsyncClient(transport=transport, base_url="http://plant") as c:
        answer = await c.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})
    assert answer.status_code == 503 and "nothing was done" in answer.json()["detail"]


async def test_while_storage_fails_changes_are_refused_and_commands_carried_out(
    plant: tuple[Simulation, FleetService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With storage failing: a cancellation and a priority change get 503 and change nothing, not
    even in memory; pausing a vehicle is carried out and answered 200 (an operator can always
    stop a cart). Once storage commits again, the cancellation is made and stored."""
    sim, service = plant
    order = await service.submit_order("ST-A", "ST-C")
    working = service.store.transaction

    def broken(writes: list[object]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(service.store, "transaction", broken)
    transport = httpx.ASGITransport(app=create_app(service, keys=ApiKeys()))
    async with httpx.AsyncClient(transport=transport, base_url="http://plant") as c:
        service.commits.later(service.store.orders_write([order], 0.0))  # a batch fails: storage failing
        with pytest.raises(StorageFailed):
            await service.committed()
        cancel = await c.post(f"/api/v1/orders/{order.id}/cancel")
        priority = await c.patch(f"/api/v1/orders/{order.id}", json={"priority": 5})
        pause = await c.post("/api/v1/vehicles/AGV-01/pause")
        assert cancel.status_code == 503 and "nothing was done" in cancel.json()["detail"]
        assert priority.status_code == 503
        kept = service.order(order.id)
        assert kept is not None and kept.state is not OrderState.CANCELLED and kept.priority == 0
        assert pause.status_code == 200 and pause.json()["paused"] is True
        assert sim.controller.vehicles["AGV-01"].paused

        monkeypatch.setattr(service.store, "transaction", working)
        service.commits.later(service.store.orders_write([], 0.0))
        await service.committed()
        assert service.commits.failing is None
        again = await c.post(f"/api/v1/orders/{order.id}/cancel")
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    stored = service.store.get(order.id)
    assert stored is not None and stored.state is OrderState.CANCELLED


async def test_a_clean_stop_commits_what_vehicle_events_queued(
    plant: tuple[Simulation, FleetService], tmp_path: Path
) -> None:
    """Order changes from vehicle events are queued, not awaited; closing the service on a
    clean stop commits them before storage closes."""
    sim, service = plant
    order = await service.submit_order("ST-A", "ST-B")
    await service.committed()  # as the API does before it answers
    sim.run_for(60.0)  # the order is assigned and driven; its changes wait in the queue
    newest = service.order(order.id)
    assert newest is not None and newest.state is not OrderState.ACCEPTED
    reader = OrderStore(tmp_path / "fleet.db")
    before = reader.get(order.id)
    assert before is not None and before.state is OrderState.ACCEPTED, "queued, not yet committed"
    reader.close()
    await service.close()
    reopened = OrderStore(tmp_path / "fleet.db")
    stored = reopened.get(order.id)
    assert stored is not None and stored.state is newest.state and stored.history == newest.history
    reopened.close()


async def test_a_write_storage_refuses_for_its_data_does_not_block_the_rest(tmp_path: Path) -> None:
    """A batch fails on a duplicate key (an integrity error no retry cures): its writes are
    committed one by one, the refused one is dropped and counted, the others land, and storage
    is not left failing."""
    store = OrderStore(tmp_path / "f.db")
    queue = CommitQueue(store)
    order = _order(OrderState.ACCEPTED, 0.0)
    store.save_call("k-1", "{}", "ST-B", order, 0.0)
    queue.later(store.call_write("k-1", "{}", "ST-B", order, 1.0))  # the same key again: refused
    queue.later(store.orders_write([_order(OrderState.ASSIGNED, 2.0)], 2.0))
    with pytest.raises(StorageFailed):
        await queue.committed()
    for _ in range(50):
        if queue.poisoned and queue.failing is None:
            break
        await asyncio.sleep(0.1)
    saved = store.get("TO-000001")
    assert saved is not None and saved.state is OrderState.ASSIGNED, "the good write landed"
    assert queue.poisoned == 1 and queue.failing is None
    await queue.close()
