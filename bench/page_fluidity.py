"""How fluid the control-room page stays with many vehicles: frames per second and long script
tasks in headless Chromium, against a real `fleet-sim demo`.

Run: `python bench/page_fluidity.py` (`--vehicles 200 --map warehouse --seconds 5`).

Protocol: `fleet-sim demo` with the map and fleet given (PLC calls at 15 per vehicle-hour, clock at
10x, so that many vehicles move), Debian's chromium headless at 1920x1080 through Playwright;
after every vehicle is drawn and 1 s more, for `--seconds`: frames drawn (requestAnimationFrame
callbacks) and script tasks over 50 ms (the browser's long-task entries), and how many vehicles
moved. Run it on an otherwise idle machine: the demo, Chromium and this script share its cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser.test_control_room import CHROMIUM_FLAGS, positions, run_demo

MEASURE = (
    "window.__long = []; new PerformanceObserver((l) => { for (const e of l.getEntries())"
    " window.__long.push(e.duration); }).observe({type: 'longtask', buffered: true});"
    "window.__frames = 0; const tick = () => { window.__frames++; requestAnimationFrame(tick); };"
    " requestAnimationFrame(tick);"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--map", default="warehouse")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    extra = ["--open-api", "--map", args.map, "--vehicles", str(args.vehicles)]
    extra += ["--orders-per-hour", str(15 * args.vehicles)]
    demo = run_demo(Path(tempfile.mkdtemp()) / "fleet.db", keys="", extra=extra, speed=10)
    base = next(demo)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.add_init_script(MEASURE)
            page.goto(f"{base}/")
            page.wait_for_function(
                f"document.querySelectorAll('rect.vehicle').length === {args.vehicles}", timeout=60000
            )
            page.wait_for_timeout(1000)
            page.evaluate("window.__long = []; window.__frames = 0")
            before = positions(page)
            page.wait_for_timeout(args.seconds * 1000)
            frames, long_tasks = page.evaluate("window.__frames"), page.evaluate("window.__long")
            moved = sum(1 for vid, at in positions(page).items() if before.get(vid) != at)
            browser.close()
    finally:
        demo.close()
    print("| map | vehicles | moved | frames/s | long tasks (> 50 ms) | longest ms |")
    print("|---|---:|---:|---:|---:|---:|")
    longest = max(long_tasks, default=0.0)
    print(
        f"| {args.map} | {args.vehicles} | {moved} | {frames / args.seconds:.0f} | {len(long_tasks)} | {longest:.0f} |"
    )


if __name__ == "__main__":
    main()
