"""A robot cell's failed transfer in the control room: the alarm row offers retry and abort; retry
asks the cell again (it fails again: this demo's cell always fails, and the one alarm counts
two), abort fails the order with
the load left where it is. Its own demo (`fleet-sim demo --cells ... --cell-failure-rate 1`), so the
other browser tests' plant has no failing cell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser.test_control_room import browser, get, post, run_demo  # noqa: F401  (fixtures)

CELL = "RMW-WAFER"


@pytest.fixture(scope="module")
def cell_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    extra = ["--open-api", "--cells", CELL, "--cell-failure-rate", "1", "--orders-per-hour", "0", "--vehicles", "3"]
    yield from run_demo(tmp_path_factory.mktemp("cells") / "fleet.db", keys="", extra=extra)


def _transfer_alarms(base: str) -> list[dict[str, object]]:
    alarms = get(base, "/api/v1/alarms?open_only=true")
    assert isinstance(alarms, list)
    return [a for a in alarms if a["code"] == "transfer-failed"]


def test_a_failed_transfer_is_retried_and_aborted_from_the_page(browser: Browser, cell_demo: str) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{cell_demo}/")
    order = post(cell_demo, "/api/v1/orders", {"from": CELL, "to": "PECVD-1-IN"})
    retry = "#alarms tr.transfer-failed button[data-alarm-action='retry']"
    page.wait_for_selector(retry, timeout=60000)
    station = get(cell_demo, f"/api/v1/stations/{CELL}")
    assert isinstance(station, dict) and station["cell"]["waiting_for_operator"] is True
    held = get(cell_demo, f"/api/v1/orders/{order['id']}")
    assert isinstance(held, dict) and held["state"] == "loading", "the vehicle waits at the cell"
    page.click(retry)
    page.wait_for_function(
        f"fetch('/api/v1/stations/{CELL}').then(r => r.json()).then(s => !s.cell.waiting_for_operator)", timeout=10000
    )
    page.wait_for_function(  # the cell fails again: the same alarm, raised twice, buttons again
        "document.querySelectorAll(\"#alarms tr.transfer-failed button[data-alarm-action='abort']\").length === 1"
        " && document.querySelector('#alarms tr.transfer-failed td.what').textContent.includes('\u00d72')",
        timeout=60000,
    )
    alarms = _transfer_alarms(cell_demo)
    assert len(alarms) == 1 and alarms[0]["count"] == 2, "one alarm per condition, counted"
    page.click("#alarms tr.transfer-failed button[data-alarm-action='abort']")
    for _ in range(100):
        failed = get(cell_demo, f"/api/v1/orders/{order['id']}")
        assert isinstance(failed, dict)
        if failed["state"] == "failed":
            break
        page.wait_for_timeout(100)
    assert failed["state"] == "failed", failed
    page.wait_for_function(
        "document.querySelectorAll(\"#alarms button[data-alarm-action='retry']\").length === 0", timeout=10000
    )
    page.close()
    assert errors == [], errors
