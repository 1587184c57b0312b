"""Shared fixtures: the bundled maps, loaded once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from maps import FacilityMap, load_map
from tests.broker import Broker

MAP_DIR = Path(__file__).resolve().parent.parent / "maps" / "data"


@pytest.fixture(scope="session")
def small_map() -> FacilityMap:
    return load_map("small_test")


@pytest.fixture(scope="session")
def plant_map() -> FacilityMap:
    return load_map("solar_module_plant")


@pytest.fixture
def small_map_data() -> dict[str, Any]:
    """The small test map as raw file data, fresh per test so tests can break it."""
    data: dict[str, Any] = yaml.safe_load((MAP_DIR / "small_test.yaml").read_text())
    return data


@pytest.fixture(scope="session")
def vda5050_schemas() -> Path:
    """The official VDA 5050 JSON schemas (shared/vda5050/schemas beside the repository, or
    FLEET_VDA5050_SCHEMAS). Missing schemas fail the tests that need them, loudly."""
    from fleet.vda5050.schemas import default_schema_dir

    folder = default_schema_dir()
    if not (folder / "2.0.0" / "order.schema").exists():
        pytest.fail(f"official VDA 5050 schemas not found at {folder}; set FLEET_VDA5050_SCHEMAS")
    return folder


@pytest.fixture(scope="session")
def mapf_data() -> Path:
    """shared/benchmarks/mapf beside the repository; missing data fails the tests that need it."""
    folder = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mapf"
    if not (folder / "maps").is_dir():
        pytest.fail(f"MAPF benchmark data not found at {folder}")
    return folder


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A private mosquitto on a free loopback port for one test."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
