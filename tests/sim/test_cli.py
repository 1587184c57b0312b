"""The `fleet-sim` command: a short shift prints its KPIs and writes them; the demo is closed with
a key of its own."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sim.cli import app

runner = CliRunner()


def test_sim_prints_kpis_and_writes_json_and_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "kpi.json", tmp_path / "shift.png"
    result = runner.invoke(
        app,
        ["shift", "--map", "small_test", "--vehicles", "2", "--hours", "0.25", "--json", str(out), "--plot", str(png)],
    )
    assert result.exit_code == 0, result.output
    assert "orders finished per hour" in result.output and "collisions" in result.output
    kpis = json.loads(out.read_text())
    assert kpis["collisions"] == 0 and kpis["orders_finished"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_demo_makes_a_key_when_none_is_configured() -> None:
    """A newcomer's demo is closed with a fresh admin key printed for it; configured keys are kept
    as they are; `--open-api` leaves it open."""
    from fleet.api.security import ApiKeys, Role
    from sim.cli import demo_keys

    keys, printed = demo_keys(ApiKeys(), open_api=False)
    assert printed and not keys.open
    assert keys.role_of(printed) is Role.ADMIN and keys.role_of(None) is None and keys.role_of("guess") is None
    assert demo_keys(ApiKeys(), open_api=False)[1] != printed, "a new key every run"
    configured = ApiKeys.parse("viewer:v")
    assert demo_keys(configured, open_api=False) == (configured, None)
    assert demo_keys(ApiKeys(), open_api=True) == (ApiKeys(), None)


def test_sim_takes_opportunity_charging_and_refuses_a_bound_outside_0_1() -> None:
    from sim.runner import SimConfig, simulation_controller_config

    assert simulation_controller_config(SimConfig(opportunity_below=0.8)).dispatch.opportunity_below == 0.8
    assert simulation_controller_config(SimConfig()).dispatch.opportunity_below == 0.0, "off by default"
    assert simulation_controller_config(SimConfig(max_working_vehicles=5)).dispatch.max_working_vehicles == 5
    result = runner.invoke(app, ["shift", "--map", "small_test", "--vehicles", "1", "--opportunity-charging", "1.5"])
    assert result.exit_code == 2 and "opportunity-charging" in result.output
