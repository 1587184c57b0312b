"""Databases the storage tests run against: a SQLite file, and PostgreSQL: the run's own server
(`tests/postgres.py`), or the one FLEET_TEST_POSTGRES_URL names; each test gets a schema of its
own there, dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from fleet.storage import database_url
from tests.postgres import postgres_url

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own, dropped afterwards."""
    url = postgres_url()
    schema = f"fleet_test_{secrets.token_hex(4)}"
    admin = create_engine(database_url(url))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Where an `OrderStore` of `backend` keeps its data for one test."""
    if backend == "sqlite":
        yield str(tmp_path / "fleet.db")
    else:
        with postgres_schema() as url:
            yield url
