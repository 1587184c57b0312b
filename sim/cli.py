"""The `fleet-sim` command: simulate a shift, run the demo plant, run simulated vehicles.

It lives in `sim/` because it composes the controller with the simulator; the plant's own
commands (`fleet serve`, `fleet keys`, `fleet validate-map`) are in `fleet/cli.py`, and `fleet/`
never imports `sim/`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleet.api.security import ApiKeys
from fleet.cli import console, load_or_exit, mqtt_or_exit
from sim.kpi import KpiReport
from sim.runner import SimConfig, run_simulation
from sim.vda_vehicle import BEHAVIOURS

app = typer.Typer(
    help="The plant simulator: shifts faster than real time, the demo, simulated vehicles.", no_args_is_help=True
)


@app.command()
def shift(
    map_name: Annotated[str, typer.Option("--map", help="bundled map name or map file")] = "solar_module_plant",
    vehicles: Annotated[int, typer.Option(min=1)] = 12,
    hours: Annotated[float, typer.Option(min=0.01)] = 8.0,
    seed: int = 1,
    orders_per_hour: Annotated[float | None, typer.Option(help="PLC calls per hour (default 8 per vehicle)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the KPIs as JSON here")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of throughput and lead times here")] = None,
    faults: Annotated[float, typer.Option(help="random slow-downs, pauses, stops per vehicle-hour")] = 0.0,
    protocol: Annotated[str, typer.Option(help="direct, or vda5050 (every command as a VDA 5050 message)")] = "direct",
    vda_vehicles: Annotated[
        str,
        typer.Option(
            help="spec, or vendor: VDA 5050 vehicles that stop at once on a cancel, report every 30 s, refuse "
            "state and factsheet requests, and (with --faults) restart and have calls withdrawn"
        ),
    ] = "spec",
    claims_only: Annotated[bool, typer.Option(help="traffic without planned turns (vehicles only claim)")] = False,
    opportunity_charging: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="idle vehicles below this battery charge in idle time (0: off)")
    ] = 0.0,
    max_working: Annotated[
        int | None, typer.Option(min=1, help="at most this many vehicles work on orders at once (default: all)")
    ] = None,
) -> None:
    """Simulate a shift faster than real time and print its KPIs."""
    if protocol not in ("direct", "vda5050"):
        raise typer.BadParameter(f"'{protocol}': direct or vda5050", param_hint="--protocol")
    if vda_vehicles not in BEHAVIOURS or (vda_vehicles != "spec" and protocol != "vda5050"):
        hint = "--vda-vehicles"
        raise typer.BadParameter(f"'{vda_vehicles}': spec, or vendor with --protocol vda5050", param_hint=hint)
    fmap = load_or_exit(map_name)
    config = SimConfig(
        vehicles=vehicles,
        hours=hours,
        seed=seed,
        orders_per_hour=orders_per_hour,
        faults_per_vehicle_hour=faults,
        protocol=protocol,
        vda_vehicles=vda_vehicles,
        planned_traffic=not claims_only,
        opportunity_below=opportunity_charging,
        max_working_vehicles=max_working,
    )
    columns = (TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.fields[clock]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("sim", total=hours * 3600, clock="0:00 h")

        def on_progress(t: float) -> None:
            progress.update(task, completed=t, clock=f"{int(t // 3600)}:{int(t % 3600 // 60):02d} h")

        report, simulation = run_simulation(fmap, config, on_progress)
    _print_report(report, fmap.name, seed)
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2))
    if plot is not None:
        from sim.plots import plot_shift

        plot_shift(simulation, plot)
        console.print(f"plot written to {plot}")
    if report.collisions or report.claim_violations:
        raise typer.Exit(code=2)


@app.command()
def demo(
    map_name: Annotated[str, typer.Option("--map")] = "solar_module_plant",
    vehicles: int = 12,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 1.0,
    orders_per_hour: Annotated[float | None, typer.Option(help="PLC calls per hour (default 8 per vehicle)")] = None,
    seed: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    db: Annotated[
        str, typer.Option(envvar="FLEET_DATABASE_URL", help="SQLite file or database URL (postgresql://...)")
    ] = "var/fleet.db",
    protocol: Annotated[str, typer.Option(help="direct, or vda5050 (in-process bus)")] = "direct",
    open_api: Annotated[bool, typer.Option(help="no key needed at all (local experiments only)")] = False,
    cells: Annotated[str, typer.Option(help="stations served by a simulated robot cell, comma-separated")] = "",
    cell_failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of cell transfers that fail")] = 0.0,
) -> None:
    """Run the controller API with the simulated plant in real time (x speed).

    With no keys configured (FLEET_API_KEYS, key file) the demo makes an admin key for this run
    and prints it, with the control-room address that carries it; `--open-api` needs none.

    With FLEET_MQTT_URL set (e.g. mqtt://127.0.0.1:1883) every vehicle speaks VDA 5050 through
    that broker with its own client; FLEET_MQTT_USERNAME/PASSWORD and FLEET_MQTT_CA_FILE/
    CERT_FILE/KEY_FILE (with mqtts://) configure access.
    """
    import uvicorn

    from fleet.server import tune_garbage_collection
    from sim.live import create_demo_app

    fmap = load_or_exit(map_name)
    cell_stations = tuple(s.strip() for s in cells.split(",") if s.strip())
    unknown = [s for s in cell_stations if s not in fmap.station_by_id]
    if unknown:
        console.print(f"[red]--cells: no station {', '.join(unknown)} on {fmap.name}[/red]")
        raise typer.Exit(2)
    mqtt = mqtt_or_exit()
    keys, demo_key = demo_keys(ApiKeys.from_env(), open_api)
    api = create_demo_app(
        map_name, vehicles, speed, orders_per_hour, seed, db, protocol, mqtt, keys, cell_stations, cell_failure_rate
    )
    via = f"VDA 5050 over MQTT at {mqtt.url}" if mqtt else protocol
    console.print(f"controller on http://{host}:{port}  (vehicles: {via}; API docs: /docs)")
    if demo_key is not None:
        console.print(f"demo admin key for this run: {demo_key}  (header X-API-Key)")
        console.print(f"control room: http://{host}:{port}/?key={demo_key}", soft_wrap=True)
    elif keys.open:
        console.print("[yellow]the API is open: anybody reaching this port is an admin")
    tune_garbage_collection()
    uvicorn.run(api, host=host, port=port, log_level="info")


def demo_keys(configured: ApiKeys, open_api: bool) -> tuple[ApiKeys, str | None]:
    """The demo's keys: those configured; with none, a fresh admin key for this run (returned to
    be printed), unless `open_api`."""
    if not configured.open or open_api:
        return configured, None
    key = secrets.token_urlsafe(18)
    return replace(configured, keys=ApiKeys.parse(f"admin:{key}").keys), key


@app.command()
def vehicles(
    map_name: Annotated[str, typer.Option("--map", help="bundled map name or map file")] = "solar_module_plant",
    count: Annotated[int, typer.Option(min=1)] = 12,
    seed: int = 1,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 1.0,
    clock_anchor: Annotated[float | None, typer.Option(help="Unix time where the sped-up clock starts")] = None,
    report: Annotated[Path | None, typer.Option(help="write collisions and distance as JSON here at exit")] = None,
) -> None:
    """Simulated VDA 5050 vehicles as their own process, talking to `fleet serve` through MQTT
    (FLEET_MQTT_URL); the controller may die and restart while they drive on."""
    import asyncio

    from fleet.clock import ScaledClock
    from fleet.vda5050.mqtt import MqttSettings
    from sim.vehicles_process import run_vehicles

    fmap = load_or_exit(map_name)
    mqtt = mqtt_or_exit() or MqttSettings()
    asyncio.run(run_vehicles(fmap, count, seed, mqtt, ScaledClock(speed, clock_anchor), report))


def _print_report(report: KpiReport, map_name: str, seed: int) -> None:
    table = Table(title=f"{map_name}: {report.vehicles} vehicles, {report.simulated_hours:g} h, seed {seed}")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    rows = [
        ("orders accepted", report.orders_accepted),
        ("orders finished", report.orders_finished),
        ("orders finished per hour", f"{report.finished_per_hour:.1f}"),
        ("lead time mean", f"{report.lead_time_mean_s:.0f} s"),
        ("lead time 95th percentile", f"{report.lead_time_p95_s:.0f} s"),
        ("vehicle utilisation", f"{report.utilisation:.1%}"),
        ("distance driven", f"{report.distance_km:.1f} km"),
        ("collisions", report.collisions),
        ("claim violations", report.claim_violations),
        ("orders moved between vehicles", report.reassignments),
        ("routes planned in time / of them no plan", f"{report.routes_planned} / {report.routes_unplanned}"),
        ("deadlocks detected", report.deadlocks),
        ("deadlocks resolved", report.deadlocks_resolved),
        ("deadlocks left unresolved", report.deadlocks_unresolved),
        *(
            (f"waiting for a {cause}", f"{seconds / 60:.0f} vehicle-min")
            for cause, seconds in report.waiting_s_by_cause.items()
        ),
        ("orders left open", report.orders_open),
        ("  of which open > 15 min", report.orders_stuck),
        ("orders failed", report.orders_failed),
        ("wall time", f"{report.wall_seconds:.1f} s ({report.speed_factor:.0f}x real time)"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


if __name__ == "__main__":
    app()
