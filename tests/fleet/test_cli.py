"""The `fleet` command for a plant: a broken map is refused by name; `fleet serve` refuses to
start with no API keys unless told `--open-api`, and refuses a bad admission limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli import app, plant_controller_config, serve_keys

runner = CliRunner()


def test_validate_map_lists_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "vehicle_types: [{id: c, length: 1, width: 1, max_speed: 1, acceleration: 1, battery_capacity_wh: 1,"
        " load_types: [x]}]\n"
        "nodes: [{id: A, x: 0, y: 0}, {id: A, x: 5, y: 0}]\n"
        "lanes: [{from: A, to: B, max_speed: 1}]\n"
    )
    result = runner.invoke(app, ["validate-map", str(bad)])
    assert result.exit_code == 1
    assert "duplicate node id 'A'" in result.output
    assert "unknown node 'B'" in result.output


def test_validate_bundled_map() -> None:
    result = runner.invoke(app, ["validate-map", "solar_module_plant"])
    assert result.exit_code == 0
    assert "246 nodes" in result.output


def test_serve_takes_an_admission_limit_and_refuses_one_below_1() -> None:
    assert plant_controller_config(30).dispatch.max_working_vehicles == 30
    assert plant_controller_config(None).dispatch.max_working_vehicles is None
    for args, env in ((["--max-working", "0"], {}), ([], {"FLEET_MAX_WORKING": "0"})):
        result = runner.invoke(app, ["serve", "--map", "small_test", *args], env=env)
        assert result.exit_code == 2 and "max-working" in result.output, result.output


def test_serve_is_closed_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real `fleet serve` with no key configured exits 2 naming the way out, before it opens the
    database or the port; `--open-api` takes the open API on purpose; any key closes it."""
    env = {"PATH": "/usr/bin:/bin", "FLEET_API_KEYS": "", "FLEET_API_KEY_FILE": str(tmp_path / "none.json")}
    db = tmp_path / "fleet.db"
    cmd = [sys.executable, "-m", "fleet.cli", "serve", "--map", "small_test", "--db", str(db), "--port", "9"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no API keys configured" in done.stdout and "--open-api" in done.stdout
    assert not db.exists(), "nothing was opened"

    monkeypatch.setenv("FLEET_API_KEYS", "")
    monkeypatch.setenv("FLEET_API_KEY_FILE", str(tmp_path / "none.json"))
    assert serve_keys(open_api=True).open
    monkeypatch.setenv("FLEET_API_KEYS", "plc@ST-A:k")
    assert not serve_keys(open_api=False).open
    monkeypatch.setenv("FLEET_API_KEYS", "")
    (tmp_path / "none.json").write_text("[]")
    assert not serve_keys(open_api=False).open, "an empty key file is a closed API, not an open one"


def test_serve_refuses_a_broken_broker_list(tmp_path: Path) -> None:
    """Every broker of FLEET_MQTT_URL must be mqtt:// or mqtts://: otherwise exit 2 naming it."""
    env = {"FLEET_API_KEYS": "operator:k", "FLEET_MQTT_URL": "mqtt://127.0.0.1:1883,tcp://elsewhere:1883"}
    result = runner.invoke(app, ["serve", "--map", "small_test", "--db", str(tmp_path / "f.db")], env=env)
    assert result.exit_code == 2 and "FLEET_MQTT_URL" in result.output and "tcp://elsewhere" in result.output
    assert not (tmp_path / "f.db").exists()
