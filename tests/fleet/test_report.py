"""Shift reports from storage: an hour of a simulated plant stored, then `fleet report` writes
the HTML page, the PDF and the CSVs with the figures storage gives; the API serves the page."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from starlette.testclient import TestClient
from typer.testing import CliRunner

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.cli import app
from fleet.model import OrderState
from fleet.report import shift_report
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from sim.runner import SimConfig, Simulation


def test_a_stored_hour_is_reported(small_map: FacilityMap, tmp_path: Path) -> None:
    sim = Simulation(small_map, SimConfig(vehicles=2, seed=3, orders_per_hour=30))
    sim.run_for(3600)
    store = OrderStore(tmp_path / "fleet.db")
    orders = list(sim.controller.orders.values())
    finished = [o for o in orders if o.state is OrderState.FINISHED]
    assert len(finished) >= 10
    late = replace(finished[0], id="TO-900001", due_at=finished[0].entered(OrderState.FINISHED) - 300)  # type: ignore[operator]
    for order in [*orders, late]:
        store.save(order, order.history[-1].at)

    made = shift_report(store.orders_touched_since(0), 0, 3600, "test")
    assert made.kpis()["finished"] == len(finished) + 1 and len(made.orders) == len(orders) + 1
    assert [(o.id, o.late_s) for o in made.late] == [("TO-900001", 300.0)]
    assert sum(n for _, n in made.finished_by_hour) == len(finished) + 1
    assert all(0 < v.utilisation <= 1 for v in made.vehicles) and {v.vehicle_id for v in made.vehicles} == {
        "AGV-01",
        "AGV-02",
    }

    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["report", "--db", str(tmp_path / "fleet.db"), "--end", "3600", "--hours", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert f"<th>finished</th><td>{len(finished) + 1}</td>" in page and "data:image/png;base64," in page
    assert "TO-900001" in page, "the late order is listed"
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    rows = list(csv.DictReader(io.StringIO((out / "orders.csv").read_text())))
    assert len(rows) == len(orders) + 1 and rows[0].keys() >= {"id", "state", "lead_s", "late_s"}
    kpis = dict(csv.reader(io.StringIO((out / "kpis.csv").read_text())))
    assert kpis["finished"] == str(len(finished) + 1)
    bad = CliRunner().invoke(app, ["report", "--db", str(tmp_path / "fleet.db"), "--end", "yesterday"])
    assert bad.exit_code == 2 and "--end" in bad.output

    service = FleetService(sim.controller, store)
    with TestClient(create_app(service, keys=ApiKeys())) as client:
        answer = client.get("/api/v1/report", params={"hours": 1})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        assert f"<th>finished</th><td>{len(finished) + 1}</td>" in answer.text
        assert client.get("/api/v1/report", params={"hours": 0}).json()["field"] == "query.hours"
