"""Fixtures of the end-to-end tests: a plant of real processes per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.e2e.plant import Plant


@pytest.fixture
def plant(tmp_path: Path, mosquitto: Broker) -> Iterator[Plant]:
    running = Plant(tmp_path, mosquitto)
    try:
        yield running
    finally:
        running.stop()
