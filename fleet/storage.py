"""Durable storage of transport orders, PLC calls, uploaded maps and the audit log, through
SQLAlchemy 2 (Core): SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

An order is acknowledged to a caller only after `save` has committed it. Each order is kept as
one row with its full state and history as JSON, plus its state as a column for queries. The
schema is created and upgraded by `fleet.migrations` when the store opens.

Where: a file path (SQLite), `:memory:` for throwaway runs, or a URL: `sqlite:///var/fleet.db`,
`postgresql://user@host:5432/db` (driven by psycopg 3; `postgresql+psycopg://` works too).
Concurrency: one `OrderStore` per process, used from the controller's single writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from fleet.migrations import AUDIT, CALLS, MAPS, ORDERS, VEHICLES, migrate
from fleet.model import Decision, OrderState, Transition, TransportOrder, order_number

Write = Callable[[Connection], None]  # one write, run inside a transaction


def database_url(target: str | Path) -> str:
    """The SQLAlchemy URL for a file path, `:memory:` or a URL as users write it."""
    text = str(target)
    if text == ":memory:":
        return "sqlite://"
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    return f"sqlite:///{text}"


IDLE_IN_TRANSACTION_MS = 2000  # our transactions never wait between statements


def _engine(target: str | Path) -> Engine:
    url = database_url(target)
    if not url.startswith("sqlite"):
        pg = create_engine(url, pool_pre_ping=True)

        @event.listens_for(pg, "connect")
        def _session(dbapi_connection: Any, _: Any) -> None:
            # A controller frozen (SIGSTOP) or cut off inside a transaction would hold its locks,
            # the site's lease row among them, for good: the server ends such a session instead.
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
            cursor.close()
            dbapi_connection.commit()

        return pg
    if url == "sqlite://":
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut, not just a crash
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return engine


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
        "ready_at": order.ready_at,
        "state": order.state.value,
        "vehicle_id": order.vehicle_id,
        "reason": order.reason,
        "history": [[t.at, t.state.value, t.vehicle_id, t.reason] for t in order.history],
        "decision": order.decision.as_dict() if order.decision else None,
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
        ready_at=row.get("ready_at"),  # rows before ready times: ready at once
        state=OrderState(row["state"]),
        vehicle_id=row["vehicle_id"],
        reason=row["reason"],
        history=tuple(Transition(at, OrderState(s), v, r) for at, s, v, r in row["history"]),
        decision=Decision(**row["decision"]) if row.get("decision") else None,  # rows before decisions: none
    )


@dataclass(frozen=True, slots=True)
class StoredCall:
    idempotency_key: str
    station: str | None
    order_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class StoredMap:
    id: int
    name: str
    body: dict[str, Any]
    uploaded_at: float
    uploaded_by: str
    active: bool
    activated_at: float | None


class OrderStore:
    """The controller's database (see the module docstring for `target`)."""

    def __init__(self, target: str | Path) -> None:
        self.url = database_url(target)
        self._engine = _engine(target)
        self.migrations_applied = migrate(self._engine)
        self._upsert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        # Run first in every write transaction: an active controller's lease check (`fleet.lease`),
        # so a controller that lost its site's lease cannot write.
        self.fence: Write | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            if self.fence is not None:
                self.fence(conn)
            yield conn

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def _order_values(self, order: TransportOrder, now: float) -> dict[str, Any]:
        body = json.dumps(order_to_row(order))
        return {
            "id": order.id,
            "number": order_number(order.id),
            "state": order.state.value,
            "body": body,
            "updated_at": now,
        }

    def _upsert_order(self, order: TransportOrder, now: float) -> Any:
        stmt = self._upsert(ORDERS).values(**self._order_values(order, now))
        return stmt.on_conflict_do_update(
            index_elements=[ORDERS.c.id],
            set_={"state": stmt.excluded.state, "body": stmt.excluded.body, "updated_at": stmt.excluded.updated_at},
        )

    @property
    def in_memory(self) -> bool:
        return self.url == "sqlite://"

    def transaction(self, writes: list[Write]) -> None:
        """Run writes (see the `*_write` methods) in one transaction, in order, and commit."""
        with self._begin() as conn:
            for write in writes:
                write(conn)

    def orders_write(self, orders: list[TransportOrder], now: float) -> Write:
        """Insert or update orders (a later one of the same id wins)."""
        statements = [self._upsert_order(order, now) for order in orders]

        def write(conn: Connection) -> None:
            for statement in statements:
                conn.execute(statement)

        return write

    def call_write(self, key: str, request: str, station: str, order: TransportOrder, now: float) -> Write:
        """A PLC call and the order it created (put them in one transaction)."""
        values = {"idempotency_key": key, "request": request, "order_id": order.id, "created_at": now}
        call = CALLS.insert().values(**values, station=station)
        upsert = self._upsert_order(order, now)

        def write(conn: Connection) -> None:
            conn.execute(call)
            conn.execute(upsert)

        return write

    def audit_write(self, at: float, who: str, key_id: str | None, method: str, path: str, status: int) -> Write:
        entry = AUDIT.insert().values(at=at, who=who, key_id=key_id, method=method, path=path, status=status)

        def write(conn: Connection) -> None:
            conn.execute(entry)

        return write

    def save(self, order: TransportOrder, now: float) -> None:
        """Insert or update the order and commit before returning."""
        self.transaction([self.orders_write([order], now)])

    def call(self, key: str) -> tuple[str, str] | None:
        """(request, order id) of an earlier call with this idempotency key."""
        with self._engine.connect() as conn:
            row = conn.execute(select(CALLS.c.request, CALLS.c.order_id).where(CALLS.c.idempotency_key == key)).first()
        return (row[0], row[1]) if row else None

    def save_call(self, key: str, request: str, station: str, order: TransportOrder, now: float) -> None:
        """The call and the order it created, committed together."""
        self.transaction([self.call_write(key, request, station, order, now)])

    def calls_of(self, station: str, limit: int = 100) -> list[StoredCall]:
        """The newest calls (with an idempotency key) made by a station."""
        query = (
            select(CALLS.c.idempotency_key, CALLS.c.station, CALLS.c.order_id, CALLS.c.created_at)
            .where(CALLS.c.station == station)
            .order_by(CALLS.c.created_at.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [StoredCall(*row) for row in conn.execute(query).all()]

    def get(self, order_id: str) -> TransportOrder | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(ORDERS.c.body).where(ORDERS.c.id == order_id)).first()
        return order_from_row(json.loads(row[0])) if row else None

    def orders_touched_since(self, since: float) -> list[TransportOrder]:
        """Every order written at or after `since` (created, moved on or ended then or later)."""
        query = select(ORDERS.c.body).where(ORDERS.c.updated_at >= since).order_by(ORDERS.c.number)
        with self._engine.connect() as conn:
            return [order_from_row(json.loads(row[0])) for row in conn.execute(query).all()]

    def load_open(self) -> list[TransportOrder]:
        terminal = [s.value for s in OrderState if s.terminal]
        query = select(ORDERS.c.body).where(ORDERS.c.state.not_in(terminal)).order_by(ORDERS.c.number)
        with self._engine.connect() as conn:
            return [order_from_row(json.loads(r[0])) for r in conn.execute(query).all()]

    def last_number(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(ORDERS.c.number))).scalar() or 0)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ORDERS)).scalar() or 0)

    def audit(self, at: float, who: str, key_id: str | None, method: str, path: str, status: int) -> None:
        """Record a state-changing request (committed before returning)."""
        self.transaction([self.audit_write(at, who, key_id, method, path, status)])

    def audit_prune_write(self, older_than: float, keep_rows: int) -> Write:
        """Delete audit rows recorded before `older_than` and all but the newest `keep_rows`."""
        newest = select(AUDIT.c.id).order_by(AUDIT.c.id.desc()).offset(keep_rows).limit(1).scalar_subquery()
        by_age = AUDIT.delete().where(AUDIT.c.at < older_than)
        by_size = AUDIT.delete().where(AUDIT.c.id <= newest)

        def write(conn: Connection) -> None:
            conn.execute(by_age)
            conn.execute(by_size)

        return write

    def admitted_write(self, serial_number: str, manufacturer: str, at: float, by: str) -> Write:
        """A vehicle an operator admitted to the fleet (kept across restarts)."""
        values = {"serial_number": serial_number, "manufacturer": manufacturer, "admitted_at": at, "admitted_by": by}
        stmt = self._upsert(VEHICLES).values(**values)
        upsert = stmt.on_conflict_do_update(index_elements=[VEHICLES.c.serial_number], set_=values)

        def write(conn: Connection) -> None:
            conn.execute(upsert)

        return write

    def admitted_vehicles(self) -> dict[str, str]:
        """Serial number -> manufacturer of every vehicle an operator admitted."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(VEHICLES.c.serial_number, VEHICLES.c.manufacturer)).all()
        return {serial: manufacturer for serial, manufacturer in rows}

    def audit_count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AUDIT)).scalar() or 0)

    def audit_entries(self, limit: int) -> list[dict[str, Any]]:
        """The newest audit entries first."""
        cols = (AUDIT.c.id, AUDIT.c.at, AUDIT.c.who, AUDIT.c.key_id, AUDIT.c.method, AUDIT.c.path, AUDIT.c.status)
        with self._engine.connect() as conn:
            rows = conn.execute(select(*cols).order_by(AUDIT.c.id.desc()).limit(limit)).all()
        return [dict(row._mapping) for row in rows]

    def save_map(self, name: str, body: dict[str, Any], by: str, now: float) -> int:
        """Keep an uploaded (validated) map, not yet active; its id."""
        with self._begin() as conn:
            result = conn.execute(
                MAPS.insert().values(name=name, body=json.dumps(body), uploaded_at=now, uploaded_by=by, active=False)
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def activate_map(self, map_id: int, now: float) -> None:
        """Make a stored map the active one (the one the controller loads at start)."""
        with self._begin() as conn:
            conn.execute(update(MAPS).where(MAPS.c.active).values(active=False))
            conn.execute(update(MAPS).where(MAPS.c.id == map_id).values(active=True, activated_at=now))

    def stored_map(self, map_id: int) -> StoredMap | None:
        return next(iter(self._maps(MAPS.c.id == map_id)), None)

    def active_map(self) -> StoredMap | None:
        """The map activated last through the API, or None: then the configured map is used."""
        return next(iter(self._maps(MAPS.c.active)), None)

    def maps(self) -> list[StoredMap]:
        return self._maps(None)

    def _maps(self, where: Any) -> list[StoredMap]:
        query = select(*MAPS.c).order_by(MAPS.c.id.desc())
        if where is not None:
            query = query.where(where)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredMap(r.id, r.name, json.loads(r.body), r.uploaded_at, r.uploaded_by, bool(r.active), r.activated_at)
            for r in rows
        ]

    def ping(self) -> str | None:
        """None when the database answers, else what went wrong."""
        try:
            with self._engine.connect() as conn:
                conn.execute(select(1))
        except Exception as exc:  # any driver error means: not ready
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    def close(self) -> None:
        self._engine.dispose()
