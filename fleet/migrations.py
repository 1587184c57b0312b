"""Schema migrations of the controller's database, numbered and applied in order at start.

`schema_version` holds one row per migration applied. Each migration runs in its own
transaction (PostgreSQL and SQLite both run DDL in transactions), so a crash mid-way leaves the
database at the last whole version. Migration 1 takes over databases made before migrations
existed (same tables, created with IF NOT EXISTS), so a plant's old `var/fleet.db` keeps its
orders. Add a migration at the end; never edit one that has shipped.

The tables as they stand after the newest migration are `ORDERS`, `CALLS`, `AUDIT`, `MAPS`,
`VEHICLES`, `LEASES` below; `fleet.storage` and `fleet.lease` query through them. On PostgreSQL
migrations run under an advisory lock, so two controllers starting on one database (an active
and its standby) do not both apply one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
    update,
)

metadata = MetaData()

ORDERS = Table(
    "transport_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("state", String(20), nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)
CALLS = Table(
    "calls",
    metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("request", Text, nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("station", String(100)),  # migration 2
)
AUDIT = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("who", String(100), nullable=False),
    Column("key_id", String(40)),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
)
MAPS = Table(  # migration 3
    "facility_maps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("uploaded_at", Double, nullable=False),
    Column("uploaded_by", String(100), nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    Column("activated_at", Double),
)

VEHICLES = Table(  # migration 4
    "admitted_vehicles",
    metadata,
    Column("serial_number", String(100), primary_key=True),
    Column("manufacturer", String(100), nullable=False),
    Column("admitted_at", Double, nullable=False),
    Column("admitted_by", String(100), nullable=False),
)
LEASES = Table(  # migration 5
    "leases",
    metadata,
    Column("site", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("token", Integer, nullable=False),  # the fencing token: one more at every takeover
    Column("expires_at", Double, nullable=False),  # the database's clock, seconds since the epoch
    Column("acquired_at", Double, nullable=False),
)

_VERSIONS = Table(
    "schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=False),
)


def _v1_orders_calls_audit(conn: Connection) -> None:
    # The tables as the first releases made them, without the later columns.
    v1 = MetaData()
    orders = Table(
        "transport_orders",
        v1,
        Column("id", String(40), primary_key=True),
        Column("number", Integer, nullable=False),
        Column("state", String(20), nullable=False),
        Column("body", Text, nullable=False),
        Column("updated_at", Double, nullable=False),
    )
    Index("transport_orders_state", orders.c.state)
    Table(
        "calls",
        v1,
        Column("idempotency_key", String(200), primary_key=True),
        Column("request", Text, nullable=False),
        Column("order_id", String(40), nullable=False),
        Column("created_at", Double, nullable=False),
    )
    Table(
        "audit_log",
        v1,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", Double, nullable=False),
        Column("who", String(100), nullable=False),
        Column("key_id", String(40)),
        Column("method", String(10), nullable=False),
        Column("path", Text, nullable=False),
        Column("status", Integer, nullable=False),
    )
    v1.create_all(conn, checkfirst=True)


def _v2_call_station(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE calls ADD COLUMN station VARCHAR(100)"))
    conn.execute(text("CREATE INDEX calls_station ON calls (station)"))
    calls = Table("calls", MetaData(), Column("idempotency_key", String), Column("request", Text), Column("station"))
    for key, request in conn.execute(select(calls.c.idempotency_key, calls.c.request)).all():
        station = json.loads(request).get("station")
        conn.execute(update(calls).where(calls.c.idempotency_key == key).values(station=station))


def _v3_facility_maps(conn: Connection) -> None:
    MAPS.create(conn, checkfirst=True)


def _v4_admitted_vehicles(conn: Connection) -> None:
    VEHICLES.create(conn, checkfirst=True)


def _v5_leases(conn: Connection) -> None:
    LEASES.create(conn, checkfirst=True)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "transport orders, PLC calls, audit log", _v1_orders_calls_audit),
    Migration(2, "PLC calls remember their station", _v2_call_station),
    Migration(3, "facility maps uploaded through the API", _v3_facility_maps),
    Migration(4, "vehicles an operator admitted to the fleet", _v4_admitted_vehicles),
    Migration(5, "one active controller per site: leases with a fencing token", _v5_leases),
)
LATEST = MIGRATIONS[-1].version


def current_version(engine: Engine) -> int:
    """The newest migration applied (0 for an empty database)."""
    if not inspect(engine).has_table(_VERSIONS.name):
        return 0
    with engine.connect() as conn:
        found = conn.execute(select(_VERSIONS.c.version).order_by(_VERSIONS.c.version.desc())).first()
    return int(found[0]) if found else 0


def migrate(engine: Engine) -> list[int]:
    """Apply every migration not applied yet, each in its own transaction; the versions applied."""
    if engine.dialect.name != "postgresql":
        return _migrate(engine)
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            return _migrate(engine)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            lock.commit()


MIGRATION_LOCK = 505_005  # the advisory lock key migrations hold on PostgreSQL


def _migrate(engine: Engine) -> list[int]:
    _VERSIONS.create(engine, checkfirst=True)
    done = current_version(engine)
    if done > LATEST:
        raise RuntimeError(f"database schema is at version {done}, newer than this controller knows ({LATEST})")
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= done:
            continue
        with engine.begin() as conn:
            migration.apply(conn)
            conn.execute(_VERSIONS.insert().values(version=migration.version, description=migration.description))
        applied.append(migration.version)
    return applied
