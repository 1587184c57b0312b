"""The control-room page in Firefox (Debian's firefox-esr, headless), driven over Marionette,
Firefox's own remote protocol: Playwright drives only a Firefox build of its own, which comes
from a download host this machine cannot reach. The same demo process as the Chromium tests:
the page draws the plant and its vehicles, they move, an order made in the form reaches the
API, the layout fits 1920x1080 and 1366x768, and no script error is thrown."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from marionette_driver.marionette import Marionette

from tests.broker import free_port
from tests.browser.test_control_room import demo, get, run_demo  # noqa: F401  (the demo fixture)

# Everything that would reach out of the machine, off (the network is closed anyway).
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "extensions.update.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.newtabpage.enabled": False,
}
# Installed before the page's own scripts run would be better; Marionette has no such hook, so
# errors are collected from the first poll after load on (the page polls every 500 ms).
COLLECT_ERRORS = (
    "window.__errors = window.__errors || [];"
    "window.addEventListener('error', (e) => window.__errors.push(String(e.message)));"
    "window.addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));"
)


def in_page(client: Marionette, code: str) -> None:
    """Run `code` as a script element of the page, in the page's own scope (Marionette's scripts
    run apart from it, and errors of their callbacks never reach the page's handlers)."""
    client.execute_script(
        "const s = document.createElement('script'); s.textContent = arguments[0]; document.head.appendChild(s);",
        script_args=[code],
    )


def page_errors(client: Marionette) -> list[str]:
    errors: list[str] = client.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'document.body.dataset.errors = JSON.stringify(window.__errors || null)';"
        "document.head.appendChild(s); return JSON.parse(document.body.dataset.errors);"
    )
    return errors


@pytest.fixture(scope="module")
def firefox() -> Iterator[Marionette]:
    binary = shutil.which("firefox-esr") or shutil.which("firefox")
    if binary is None:
        pytest.fail("firefox-esr is not installed: run `make test`, which installs Debian's firefox-esr")
    profile = Path(tempfile.mkdtemp(prefix="fleet-firefox-"))
    port = free_port()
    prefs = {**PREFS, "marionette.port": port}
    (profile / "user.js").write_text(
        "".join(
            f"user_pref({k!r}, {str(v).lower() if isinstance(v, bool) else repr(v)});\n" for k, v in prefs.items()
        ).replace("'", '"')
    )
    env = {**os.environ, "MOZ_HEADLESS": "1"}
    process = subprocess.Popen(
        [binary, "--headless", "--marionette", "--no-remote", "--profile", str(profile)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = Marionette(host="127.0.0.1", port=port, startup_timeout=60)
    try:
        client.start_session()
        yield client
    finally:
        try:
            client.delete_session()
        finally:
            process.terminate()
            process.wait(timeout=20)
            shutil.rmtree(profile, ignore_errors=True)


def _wait(client: Marionette, script: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"not true within {timeout} s: {script}")


def _positions(client: Marionette) -> dict[str, str]:
    found: dict[str, str] = client.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('rect[data-vehicle]')]"
        ".map(e => [e.dataset.vehicle, e.style.transform]))"
    )
    return found


def test_the_page_works_in_firefox(firefox: Marionette, demo: str) -> None:  # noqa: F811
    firefox.set_window_rect(width=1920, height=1080)
    firefox.navigate(f"{demo}/")
    in_page(firefox, COLLECT_ERRORS)
    assert _wait(firefox, "return document.querySelectorAll('rect[data-vehicle]').length") == 12
    assert firefox.execute_script("return document.querySelectorAll('line.lane').length") > 300
    _wait(firefox, "return document.querySelectorAll('rect.vehicle.order').length > 0", 30)
    before = _positions(firefox)
    time.sleep(1.5)
    assert sum(before[k] != v for k, v in _positions(firefox).items()) >= 1, "vehicles moved between two looks"
    # An order from the form: the page's own script sends it; the API has it.
    firefox.execute_script(
        "document.getElementById('order-from').value = 'RMW-WAFER';"
        "document.getElementById('order-to').value = 'PECVD-1-IN';"
        "document.querySelector('#order-form button[type=submit]').click();"
    )
    order_id = _wait(firefox, "return document.getElementById('order-result').dataset.order")
    stored = get(demo, f"/api/v1/orders/{order_id}")
    assert isinstance(stored, dict) and stored["pickup"] == "RMW-WAFER" and stored["dropoff"] == "PECVD-1-IN"
    _wait(firefox, "return document.querySelectorAll('#kpi-chart rect.bar').length === 16")
    assert page_errors(firefox) == []


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1366, 768)])
def test_the_layout_fits_in_firefox(firefox: Marionette, demo: str, width: int, height: int) -> None:  # noqa: F811
    firefox.set_window_rect(width=width, height=height)
    firefox.navigate(f"{demo}/")
    _wait(firefox, "return document.querySelectorAll('#orders tbody tr').length > 0", 30)
    inner = firefox.execute_script("return window.innerWidth")
    assert firefox.execute_script("return document.documentElement.scrollWidth") <= inner
    assert firefox.execute_script("return document.getElementById('estop').getBoundingClientRect().right") <= inner
    right = firefox.execute_script(
        "return Math.max(...[...document.querySelectorAll('#orders th')].map(e => e.getBoundingClientRect().right))"
    )
    assert right <= inner
