"""Databases the storage tests run against: a SQLite file always, PostgreSQL when
FLEET_TEST_POSTGRES_URL names a server (each test then gets a schema of its own, dropped after)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fleet.storage import database_url

POSTGRES_URL = os.environ.get("FLEET_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason="FLEET_TEST_POSTGRES_URL is not set")),
]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own, dropped afterwards."""
    assert POSTGRES_URL
    schema = f"fleet_test_{secrets.token_hex(4)}"
    admin = create_engine(database_url(POSTGRES_URL))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
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
