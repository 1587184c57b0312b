"""Order storage on SQLite and PostgreSQL: what is saved is what comes back across reopening,
calls and orders commit together, migrations bring any older database to the newest schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from fleet.migrations import LATEST
from fleet.model import OrderState, Transition, TransportOrder
from fleet.storage import OrderStore, database_url
from tests.storage_targets import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as where:
        yield where


def _order(number: int, state: OrderState = OrderState.ACCEPTED) -> TransportOrder:
    order = TransportOrder(
        f"TO-{number:06d}", "ST-A", "ST-B", "rack", 2, 10.0, history=(Transition(10.0, OrderState.ACCEPTED),)
    )
    return order if state is OrderState.ACCEPTED else order.transition(state, 11.0, vehicle_id="AGV-01")


def test_round_trip_across_reopen(target: str) -> None:
    """An order saved, the store closed and opened again: the same order, history and all."""
    order = _order(7, OrderState.ASSIGNED)
    store = OrderStore(target)
    assert store.migrations_applied == list(range(1, LATEST + 1))
    store.save(order, 11.0)
    store.close()
    again = OrderStore(target)
    assert again.migrations_applied == []  # nothing to do the second time
    assert again.get("TO-000007") == order
    assert again.last_number() == 7
    assert [o.id for o in again.load_open()] == ["TO-000007"]
    again.save(order.transition(OrderState.CANCELLED, 12.0, reason="test"), 12.0)
    assert again.load_open() == []
    assert again.count() == 1
    again.close()


def test_a_decision_is_kept_with_its_order(target: str) -> None:
    from dataclasses import replace

    from fleet.model import Decision

    order = replace(_order(8, OrderState.ASSIGNED), decision=Decision("AGV-01", 11.0, 90.5, 2, 0.0, 4, 362.0, "AGV-02"))
    store = OrderStore(target)
    store.save(order, 11.0)
    assert store.get(order.id) == order
    store.close()


def test_call_and_order_commit_together(target: str) -> None:
    """A second call with the same key is refused by the database and leaves no second order."""
    store = OrderStore(target)
    store.save_call("k-1", '{"station": "LAM-01"}', "LAM-01", _order(1), 5.0)
    assert store.call("k-1") == ('{"station": "LAM-01"}', "TO-000001")
    with pytest.raises(IntegrityError):
        store.save_call("k-1", '{"station": "LAM-01"}', "LAM-01", _order(2), 6.0)
    assert store.count() == 1  # the order of the refused call was rolled back with it
    assert [c.order_id for c in store.calls_of("LAM-01")] == ["TO-000001"]
    assert store.calls_of("LAM-02") == []
    store.close()


def test_one_write_of_several_changes_keeps_the_newest_state(target: str) -> None:
    store = OrderStore(target)
    first = _order(3)
    changes = [first, first.transition(OrderState.ASSIGNED, 12.0, vehicle_id="AGV-02")]
    store.transaction([store.orders_write(changes, 12.0)])
    saved = store.get("TO-000003")
    assert saved is not None and saved.state is OrderState.ASSIGNED and saved.vehicle_id == "AGV-02"
    store.close()


def test_maps_are_kept_and_one_is_active(target: str) -> None:
    store = OrderStore(target)
    assert store.active_map() is None
    first = store.save_map("plant", {"name": "plant", "nodes": []}, "admin", 1.0)
    second = store.save_map("plant", {"name": "plant", "nodes": [1]}, "admin", 2.0)
    store.activate_map(first, 3.0)
    store.activate_map(second, 4.0)
    active = store.active_map()
    assert active is not None and active.id == second and active.body == {"name": "plant", "nodes": [1]}
    assert [m.active for m in store.maps()] == [True, False]
    store.close()


def test_audit_entries_newest_first(target: str) -> None:
    store = OrderStore(target)
    store.audit(1.0, "operator", "abc", "POST", "/api/v1/orders", 201)
    store.audit(2.0, "no key", None, "POST", "/api/v1/fleet/pause", 401)
    assert [(e["who"], e["status"]) for e in store.audit_entries(10)] == [("no key", 401), ("operator", 201)]
    store.close()


def test_a_database_from_before_migrations_is_taken_over(tmp_path: Path) -> None:
    """The first releases created their tables without a version table: their orders and calls
    survive, and the calls get their station from the stored request."""
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.executescript(
        """
        CREATE TABLE transport_orders (id TEXT PRIMARY KEY, number INTEGER NOT NULL, state TEXT NOT NULL,
            body TEXT NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE calls (idempotency_key TEXT PRIMARY KEY, request TEXT NOT NULL, order_id TEXT NOT NULL,
            created_at REAL NOT NULL);
        CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
            key_id TEXT, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL);
        INSERT INTO calls VALUES ('k-9', '{"need": "material", "station": "LAM-02"}', 'TO-000009', 3.0);
        """
    )
    old.commit()
    old.close()
    store = OrderStore(db)
    assert store.migrations_applied == list(range(1, LATEST + 1))
    assert [c.order_id for c in store.calls_of("LAM-02")] == ["TO-000009"]
    store.close()


def test_database_urls() -> None:
    assert database_url(":memory:") == "sqlite://"
    assert database_url("var/fleet.db") == "sqlite:///var/fleet.db"
    assert database_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
