"""The `fleet` command: run the controller for a plant, manage its API keys, check a map.

These are the plant's commands and need nothing of the simulator; the simulator's own commands
(`fleet-sim shift`, `fleet-sim demo`, `fleet-sim vehicles`) live in `sim/cli.py`.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleet.api.security import DEFAULT_KEY_FILE, ApiKeys, KeyFile, Role
from fleet.core import ControllerConfig
from fleet.dispatcher import DispatchConfig
from fleet.lease import Lease, LeaseState, wait_until_held
from fleet.storage import OrderStore
from fleet.vda5050.master import MasterConfig, VehicleSettings, fleet_from_profiles
from fleet.vda5050.mqtt import MqttSettings
from fleet.vda5050.topics import VehicleKey
from maps import FacilityMap, MapValidationError, bundled_map_names, load_map

app = typer.Typer(help="Fleet orchestration controller for smart factories.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys in the key file (only a salted hash of each key is kept).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()
KeyFileOption = Annotated[
    Path, typer.Option("--file", envvar="FLEET_API_KEY_FILE", help="the key file the controller reads")
]
CLOSED = (
    "no API keys configured: the API would answer anybody as an admin. Add a key "
    "(fleet keys add --role admin, or FLEET_API_KEYS) or start with --open-api to run it open on purpose"
)


@keys_app.command("add")
def keys_add(
    role: Annotated[str, typer.Option(help="plc, viewer, operator or admin")],
    station: Annotated[str | None, typer.Option(help="the one station a plc key calls for")] = None,
    file: KeyFileOption = DEFAULT_KEY_FILE,
) -> None:
    """Make a new random key; it is printed once and only its hash is stored."""
    try:
        stored, key = KeyFile(file).add(Role.named(role), time.time(), station)
    except ValueError as exc:
        console.print(f"[red]{exc} (a plc key needs --station; other roles take none)")
        raise typer.Exit(2) from None
    console.print(f"{stored.id} ({stored.role.label}{' ' + station if station else ''}): {key}")
    console.print("Keep the key now: only its hash is in " + str(file))


@keys_app.command("list")
def keys_list(file: KeyFileOption = DEFAULT_KEY_FILE) -> None:
    """The keys in the key file, without the keys."""
    for stored in KeyFile(file).load():
        where = stored.station or ""
        console.print(f"{stored.id}  {stored.role.label:9} {where:12} created {time.ctime(stored.created_at)}")


@keys_app.command("remove")
def keys_remove(key_id: str, file: KeyFileOption = DEFAULT_KEY_FILE) -> None:
    """Remove a key by its id (a running controller refuses it from its next request on)."""
    if not KeyFile(file).remove(key_id):
        console.print(f"[red]no key {key_id} in {file}")
        raise typer.Exit(1)
    console.print(f"removed {key_id}")


def plant_controller_config(max_working: int | None) -> ControllerConfig:
    """The controller's settings for `fleet serve`."""
    return ControllerConfig(dispatch=DispatchConfig(max_working_vehicles=max_working))


def fleet_vehicles(items: list[str], admit_unknown: bool) -> MasterConfig:
    """The VDA 5050 fleet from `--vehicle MANUFACTURER/SERIAL` items (comma-separated ones too)."""
    config = MasterConfig(admit_unknown=admit_unknown)
    for item in (part.strip() for entry in items for part in entry.split(",")):
        if not item:
            continue
        manufacturer, _, serial = item.rpartition("/")
        VehicleKey(manufacturer or "any", serial)  # refuses what cannot be part of a topic
        config.vehicles[serial] = VehicleSettings(manufacturer=manufacturer or None)
    return config


def serve_keys(open_api: bool) -> ApiKeys:
    """The keys `fleet serve` runs with; with none configured it refuses to start (exit 2), since
    an API with no keys answers anybody as an admin, unless `open_api` says that is meant."""
    keys = ApiKeys.from_env()
    if keys.open and not open_api:
        console.print(f"[red]{CLOSED}[/red]")
        raise typer.Exit(2)
    if keys.open:
        console.print("[yellow]the API is open (--open-api): anybody reaching this port is an admin")
    return keys


@app.command()
def serve(
    map_name: Annotated[str, typer.Option("--map", help="bundled map name or map file")] = "solar_module_plant",
    db: Annotated[
        str, typer.Option(envvar="FLEET_DATABASE_URL", help="SQLite file or database URL (postgresql://...)")
    ] = "var/fleet.db",
    host: str = "127.0.0.1",
    port: int = 8000,
    speed: Annotated[float, typer.Option(help="clock speed, for plants simulated in other processes")] = 1.0,
    clock_anchor: Annotated[float | None, typer.Option(help="Unix time where a sped-up clock starts")] = None,
    settle_s: Annotated[float, typer.Option(help="wall seconds after start with no path released")] = 5.0,
    ros_config: Annotated[
        Path | None, typer.Option(help="YAML file of ROS 2 robots and robot cells reached through rosbridge")
    ] = None,
    max_working: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="FLEET_MAX_WORKING",
            help="at most this many vehicles work on orders at once (default: all; PUT /api/v1/fleet/admission)",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(envvar="FLEET_LOG_LEVEL", help="warning, or info for the access log (keys redacted)")
    ] = "warning",
    vehicle: Annotated[
        list[str] | None,
        typer.Option(
            envvar="FLEET_VEHICLES",
            help="a VDA 5050 vehicle of the fleet, as MANUFACTURER/SERIAL (or SERIAL: any manufacturer at"
            " first sight); repeat for each. Others are listed as pending until an operator admits them",
        ),
    ] = None,
    admit_unknown: Annotated[
        bool, typer.Option(help="let any vehicle on the broker join when it reports (a lab, never a plant)")
    ] = False,
    vehicles: Annotated[
        Path | None,
        typer.Option(
            envvar="FLEET_VEHICLE_PROFILES",
            help="vehicle profiles and the fleet (YAML): version, map ids, action parameters, quirks per vendor",
        ),
    ] = None,
    open_api: Annotated[
        bool, typer.Option(help="run with no API keys: anybody reaching the port is an admin (a lab, never a plant)")
    ] = False,
    site: Annotated[
        str | None,
        typer.Option(
            envvar="FLEET_SITE",
            help="the site this controller runs, with a lease in the database: start a second one on the same"
            " database and site as its hot standby",
        ),
    ] = None,
    lease_ttl_s: Annotated[
        float, typer.Option(min=1.0, max=60.0, envvar="FLEET_LEASE_TTL_S", help="seconds a site lease lasts unrenewed")
    ] = 3.0,
) -> None:
    """Run the controller for a plant: VDA 5050 vehicles over MQTT (FLEET_MQTT_URL, default
    mqtt://127.0.0.1:1883), ROS 2 robots and cells through rosbridge (--ros-config), orders in
    the database, the API and control room on HTTP. It needs API keys (FLEET_API_KEYS or the key
    file) unless started with --open-api."""
    import uvicorn

    from fleet.clock import ScaledClock, WallClock
    from fleet.server import active_map, build_server, create_server_app, tune_garbage_collection

    keys = serve_keys(open_api)
    fmap = load_or_exit(map_name)
    mqtt = mqtt_or_exit() or MqttSettings()
    clock = WallClock() if speed == 1.0 and clock_anchor is None else ScaledClock(speed, clock_anchor)
    settle = speed * settle_s  # the hold is in wall seconds, the core counts in its own
    ros = None
    if ros_config is not None:
        from pydantic import ValidationError

        from fleet.ros.config import load_ros_config

        try:
            ros = load_ros_config(ros_config)
        except (OSError, ValidationError) as exc:
            console.print(f"[red]{ros_config}: {exc}[/red]")
            raise typer.Exit(2) from None
    try:
        master = fleet_vehicles(vehicle or [], admit_unknown)
    except ValueError as exc:
        console.print(f"[red]--vehicle: {exc}[/red]")
        raise typer.Exit(2) from None
    profiles = None
    if vehicles is not None:
        from fleet.vda5050.profiles import ProfileError, load_profiles

        try:
            profiles = load_profiles(vehicles)
        except ProfileError as exc:
            console.print(f"[red]{vehicles}: {len(exc.problems)} problem(s)[/red]")
            for problem in exc.problems:
                console.print(f"  {problem}")
            raise typer.Exit(2) from None
        fleet_from_profiles(profiles, master)
    store = OrderStore(db)
    lease = hold_site(store, site, lease_ttl_s) if site else None
    fmap = active_map(store, fmap)
    server = build_server(
        fmap, store, mqtt, clock, plant_controller_config(max_working), master, settle_s=settle, ros=ros, lease=lease
    )
    server.on_lease_lost = step_down
    server.service.vehicle_profiles = profiles
    restored = len(server.service.controller.open_orders())
    console.print(
        f"controller for {fmap.name} on http://{host}:{port}; MQTT {mqtt.url}; {restored} open orders restored"
    )
    tune_garbage_collection()
    uvicorn.run(create_server_app(server, keys), host=host, port=port, log_level=log_level)


EXIT_LEASE_LOST = 3


def hold_site(store: OrderStore, site: str, ttl_s: float) -> Lease:
    """This process's lease on `site`, waited for as a standby while another controller holds it;
    from then on every storage write checks it."""
    lease = Lease(store.engine, site, f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}", ttl_s)

    def report(state: LeaseState | None) -> None:
        holder = f"{state.holder} (token {state.token})" if state is not None else "unknown (no database)"
        console.print(f"standby for site {site}: the active controller is {holder}; taking over when it stops")

    wait_until_held(lease, report, time.sleep)
    store.fence = lease.fence
    console.print(f"active for site {site} (lease token {lease.token}, {ttl_s:g} s)")
    return lease


def step_down(why: str) -> None:
    """The site's lease is lost: end the process at once (nothing more may reach any vehicle;
    whatever was acknowledged is committed). A supervisor restarts it, as a standby."""
    console.print(f"[red]{why}: stepping down[/red]")
    sys.stdout.flush()
    os._exit(EXIT_LEASE_LOST)


@app.command()
def report(
    db: Annotated[
        str, typer.Option(envvar="FLEET_DATABASE_URL", help="SQLite file or database URL (postgresql://...)")
    ] = "var/fleet.db",
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 366, help="the period's length")] = 8.0,
    end: Annotated[
        str | None,
        typer.Option(help="the period's end: ISO date-time (UTC if no zone) or Unix seconds; default now"),
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for report.html, report.pdf, orders.csv, kpis.csv")] = Path(
        "report"
    ),
    title: str = "Shift report",
) -> None:
    """A shift (or any period) from storage: an HTML page and a PDF with plots, and CSV exports."""
    from datetime import datetime

    from fleet.report import shift_report, write_report

    try:
        until = time.time() if end is None else float(end) if end.replace(".", "", 1).isdigit() else None
        if until is None:
            parsed = datetime.fromisoformat(end or "")
            until = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        console.print(f"[red]--end: not a date-time or Unix seconds: {end!r}[/red]")
        raise typer.Exit(2) from None
    start = until - hours * 3600
    store = OrderStore(db)
    made = shift_report(store.orders_touched_since(start), start, until, title)
    for path in write_report(made, out):
        console.print(f"written {path}")
    kpis = made.kpis()
    console.print(f"{kpis['finished']} finished ({kpis['finished_per_hour']} / h), {kpis['late']} late")


@app.command("validate-map")
def validate_map(path: Annotated[str, typer.Argument(help="map file or bundled map name")]) -> None:
    """Check a map and list every problem found."""
    fmap = load_or_exit(path)
    console.print(
        f"[green]ok[/green] {fmap.name}: {len(fmap.nodes)} nodes, {len(fmap.lanes)} lanes, "
        f"{len(fmap.stations)} stations, {len(fmap.chargers)} chargers, {len(fmap.parking)} parking spots"
    )


@app.command()
def maps() -> None:
    """List the bundled example maps."""
    for name in bundled_map_names():
        console.print(name)


def mqtt_or_exit() -> MqttSettings | None:
    """The broker settings of the environment (FLEET_MQTT_URL...); every problem printed and
    exit 2 when they are not valid."""
    from pydantic import ValidationError

    try:
        return MqttSettings.from_env()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            console.print(f"[red]FLEET_MQTT_{field.upper()}: {error['msg']}[/red]")
        raise typer.Exit(2) from None


def load_or_exit(name: str) -> FacilityMap:
    """A map by bundled name or file; every problem printed and exit 1 when it is not valid."""
    try:
        return load_map(name)
    except (MapValidationError, FileNotFoundError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None


if __name__ == "__main__":
    app()
