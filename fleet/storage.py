"""Durable storage of transport orders, PLC calls and the audit log: SQLite (WAL) through the
standard library.

An order is acknowledged to a caller only after `save` has committed it. Each order is kept as
one row with its full state and history as JSON, plus its state as a column for queries.
Concurrency: one `OrderStore` per process, used from the controller's single writer.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from fleet.model import OrderState, Transition, TransportOrder, order_number

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transport_orders (
    id TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transport_orders_state ON transport_orders(state);
CREATE TABLE IF NOT EXISTS calls (
    idempotency_key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    key_id TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL
);
"""


_UPSERT_ORDER = (
    "INSERT INTO transport_orders (id, number, state, body, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET state=excluded.state, body=excluded.body, updated_at=excluded.updated_at"
)


def _order_params(order: TransportOrder, now: float) -> tuple[str, int, str, str, float]:
    return (order.id, order_number(order.id), order.state.value, json.dumps(order_to_row(order)), now)


def order_to_row(order: TransportOrder) -> dict[str, Any]:
    """JSON-ready form of an order, history included; `order_from_row` inverts it."""
    return {
        "id": order.id,
        "pickup": order.pickup,
        "dropoff": order.dropoff,
        "load_type": order.load_type,
        "priority": order.priority,
        "created_at": order.created_at,
        "due_at": order.due_at,
        "state": order.state.value,
        "vehicle_id": order.vehicle_id,
        "reason": order.reason,
        "history": [[t.at, t.state.value, t.vehicle_id, t.reason] for t in order.history],
    }


def order_from_row(row: dict[str, Any]) -> TransportOrder:
    return TransportOrder(
        id=row["id"],
        pickup=row["pickup"],
        dropoff=row["dropoff"],
        load_type=row["load_type"],
        priority=row["priority"],
        created_at=row["created_at"],
        due_at=row["due_at"],
        state=OrderState(row["state"]),
        vehicle_id=row["vehicle_id"],
        reason=row["reason"],
        history=tuple(Transition(at, OrderState(s), v, r) for at, s, v, r in row["history"]),
    )


class OrderStore:
    """Orders in a SQLite file (`:memory:` for throwaway runs)."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def save(self, order: TransportOrder, now: float) -> None:
        """Insert or update the order and commit before returning."""
        self._db.execute(_UPSERT_ORDER, _order_params(order, now))

    def call(self, key: str) -> tuple[str, str] | None:
        """(request, order id) of an earlier call with this idempotency key."""
        row = self._db.execute("SELECT request, order_id FROM calls WHERE idempotency_key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def save_call(self, key: str, request: str, order: TransportOrder, now: float) -> None:
        """The call and the order it created, committed together."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO calls (idempotency_key, request, order_id, created_at) VALUES (?, ?, ?, ?)",
                (key, request, order.id, now),
            )
            self._db.execute(_UPSERT_ORDER, _order_params(order, now))

    def get(self, order_id: str) -> TransportOrder | None:
        row = self._db.execute("SELECT body FROM transport_orders WHERE id = ?", (order_id,)).fetchone()
        return order_from_row(json.loads(row[0])) if row else None

    def load_open(self) -> list[TransportOrder]:
        terminal = [s.value for s in OrderState if s.terminal]
        marks = ",".join("?" * len(terminal))
        rows = self._db.execute(
            f"SELECT body FROM transport_orders WHERE state NOT IN ({marks}) ORDER BY number", terminal
        ).fetchall()
        return [order_from_row(json.loads(r[0])) for r in rows]

    def last_number(self) -> int:
        row = self._db.execute("SELECT MAX(number) FROM transport_orders").fetchone()
        return int(row[0] or 0)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM transport_orders").fetchone()[0])

    def audit(self, at: float, who: str, key_id: str | None, method: str, path: str, status: int) -> None:
        """Record a state-changing request (committed before returning)."""
        self._db.execute(
            "INSERT INTO audit_log (at, who, key_id, method, path, status) VALUES (?, ?, ?, ?, ?, ?)",
            (at, who, key_id, method, path, status),
        )

    def audit_entries(self, limit: int) -> list[dict[str, Any]]:
        """The newest audit entries first."""
        rows = self._db.execute(
            "SELECT id, at, who, key_id, method, path, status FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        names = ("id", "at", "who", "key_id", "method", "path", "status")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._db.close()
