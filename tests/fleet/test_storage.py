"""SQLite order storage: what is saved is what comes back, across connections."""

from __future__ import annotations

from pathlib import Path

from fleet.model import OrderState, Transition, TransportOrder
from fleet.storage import OrderStore


def test_round_trip_across_reopen(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    order = TransportOrder(
        "TO-000007", "ST-A", "ST-B", "rack", 2, 10.0, history=(Transition(10.0, OrderState.ACCEPTED),)
    )
    order = order.transition(OrderState.ASSIGNED, 11.0, vehicle_id="AGV-01")
    store = OrderStore(db)
    store.save(order, 11.0)
    store.close()
    again = OrderStore(db)
    assert again.get("TO-000007") == order
    assert again.last_number() == 7
    assert [o.id for o in again.load_open()] == ["TO-000007"]
    again.save(order.transition(OrderState.CANCELLED, 12.0, reason="test"), 12.0)
    assert again.load_open() == []
    assert again.count() == 1
