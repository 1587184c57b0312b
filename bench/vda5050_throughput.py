"""VDA 5050 state throughput: N vehicles reporting state at 1 Hz through a local mosquitto.

Run: `python bench/vda5050_throughput.py` (default N = 100, 500, 1000; `--seconds` per run).

Protocol: a private mosquitto on a free loopback port; a publisher process sends every vehicle's
state (a real `VdaSimVehicle` state message, timestamp set at send time) once a second, spread
evenly. In this process, one of two subscribers runs on the asyncio loop:
- bare: an aiomqtt client that only reads each payload's timestamp (the floor);
- controller: the real shell, `MqttEndpoint` -> `MasterControl` (parse, validate) -> core events
  -> `Controller.handle`, with the core ticking every 100 ms.
Per run it prints messages received per second, state-to-core latency (publisher's timestamp to
handled, median and p99, 1 ms resolution), CPU of this process per message, and the controller's
CPU as a ratio to the bare loop. A run "keeps up" when it receives >= 95 % of what was sent and its
p99 stays under 1 s. Vehicles stand on a generated grid map with one node per vehicle.
Aims from issue 3: 1000 vehicles at 1 Hz on one core, p99 < 50 ms, controller CPU within 3x the
bare loop, resident memory < 500 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet.clock import WallClock
from fleet.core import Controller
from fleet.events import Tick
from fleet.vda5050.master import MasterControl, VehicleAppeared
from fleet.vda5050.mqtt import MqttEndpoint, MqttSettings
from fleet.vda5050.topics import VehicleKey
from maps import FacilityMap, parse_map
from sim.vda_vehicle import VdaSimVehicle
from sim.vehicle import lane_geometry_for
from tests.broker import Broker

MARK = b'"timestamp":"'


def grid_map(count: int) -> FacilityMap:
    side = int(count**0.5) + 1
    nodes = [{"id": f"N{i}-{j}", "x": 4.0 * i, "y": 4.0 * j} for i in range(side) for j in range(side)]
    lanes = [
        {"from": f"N{i}-{j}", "to": f"N{i + 1}-{j}", "max_speed": 1.5, "two_way": True}
        for i in range(side - 1)
        for j in range(side)
    ]
    lanes += [
        {"from": f"N{i}-{j}", "to": f"N{i}-{j + 1}", "max_speed": 1.5, "two_way": True}
        for i in range(side)
        for j in range(side - 1)
    ]
    cart = {
        "id": "cart",
        "length": 1.2,
        "width": 0.8,
        "max_speed": 1.5,
        "acceleration": 0.5,
        "battery_capacity_wh": 2000,
        "load_types": ["rack"],
    }
    return parse_map({"name": "bench_grid", "vehicle_types": [cart], "nodes": nodes, "lanes": lanes})


def templates(fmap: FacilityMap, count: int) -> list[tuple[str, bytes]]:
    """(topic, state payload) per vehicle, from the simulated VDA 5050 vehicle itself."""
    vtype = fmap.vehicle_types[0]
    geo = lane_geometry_for(fmap, vtype.max_speed)
    out = []
    for k in range(count):
        v = VdaSimVehicle(VehicleKey("bench", f"V{k:04d}"), fmap, vtype, geo, fmap.nodes[k].id, 0.8)
        message = v.current_state(0.0)
        out.append((message.topic, message.payload))
    return out


def publisher(port: int, items: list[tuple[str, bytes]], seconds: float, sent: mp.Value) -> None:  # type: ignore[type-arg]
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    n = len(items)
    start = time.time()
    count = 0
    while (now := time.time()) - start < seconds:
        due = int((now - start) * n)  # n messages per second, evenly spread
        while count < due:
            topic, payload = items[count % n]
            stamp = datetime.fromtimestamp(time.time(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            i = payload.index(MARK) + len(MARK)
            client.publish(topic, payload[:i] + stamp.encode() + payload[i + 24 :], qos=0)
            count += 1
        time.sleep(0.001)
    sent.value = count
    client.loop_stop()
    client.disconnect()


def stamp_of(payload: bytes) -> float:
    i = payload.index(MARK) + len(MARK)
    return datetime.strptime(payload[i : i + 23].decode(), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


async def measure(port: int, mode: str, fmap: FacilityMap, items: list[tuple[str, bytes]], seconds: float) -> dict:
    latencies: list[float] = []
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", client_id=f"bench-{mode}")
    endpoint = MqttEndpoint(settings, f"bench-{mode}")
    controller = Controller(fmap, WallClock()) if mode == "controller" else None
    master = MasterControl(fmap) if mode == "controller" else None

    def bare(topic: str, payload: bytes) -> None:
        latencies.append(time.time() - stamp_of(payload))

    def full(topic: str, payload: bytes) -> None:
        assert master is not None and controller is not None
        now = time.time()
        for item in master.on_message(topic, payload, now):
            if isinstance(item, VehicleAppeared):
                controller.add_vehicle(item.vehicle_id, "cart", item.node, item.battery)
            else:
                controller.handle(item)
        master.take_outbox()  # requests to vehicles are not the subject here
        latencies.append(time.time() - stamp_of(payload))

    # Not a snapshot subscription: each message is to be read and timed, none skipped.
    endpoint.subscriptions.append(("uagv/v2/+/+/state", bare if mode == "bare" else full, False))
    endpoint.start()
    await endpoint.connected.wait()

    async def ticker() -> None:
        while True:
            if controller is not None:
                controller.handle(Tick())
            await asyncio.sleep(0.1)

    tick_task = asyncio.create_task(ticker())
    sent = mp.Value("q", 0)
    proc = mp.Process(target=publisher, args=(port, items, seconds + 2.0, sent))
    proc.start()
    await asyncio.sleep(2.0)  # warm-up: registration of every vehicle, caches
    latencies.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    received = len(latencies)
    window = sorted(latencies)
    await asyncio.get_running_loop().run_in_executor(None, proc.join)
    tick_task.cancel()
    await endpoint.stop()
    sent_rate = sent.value / (seconds + 2.0)
    return {
        "received_per_s": received / wall,
        "sent_per_s": sent_rate,
        "median_ms": 1000 * statistics.median(window) if window else float("nan"),
        "p99_ms": 1000 * window[int(0.99 * (len(window) - 1))] if window else float("nan"),
        "cpu_us_per_msg": 1e6 * cpu / received if received else float("nan"),
        "cpu_share": cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on in the broker")
    args = parser.parse_args()
    console = Console()
    workdir = Path("var/bench-broker")
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(workdir, nodelay=not args.nagle)
    broker.start()
    table = Table(title=f"VDA 5050 state at 1 Hz through mosquitto, {args.seconds:g} s per run")
    for col in ("N", "subscriber", "recv/s", "median ms", "p99 ms", "CPU us/msg", "CPU share", "keeps up", "vs bare"):
        table.add_column(col, justify="right")
    sustained = 0
    try:
        for n in args.vehicles:
            fmap = grid_map(n)
            items = templates(fmap, n)
            results = {}
            for mode in ("bare", "controller"):
                r = asyncio.run(measure(broker.port, mode, fmap, items, args.seconds))
                results[mode] = r
                keeps = r["received_per_s"] >= 0.95 * r["sent_per_s"] and r["p99_ms"] < 1000
                if mode == "controller" and keeps:
                    sustained = max(sustained, n)
                ratio = r["cpu_us_per_msg"] / results["bare"]["cpu_us_per_msg"]
                table.add_row(
                    str(n),
                    mode,
                    f"{r['received_per_s']:.0f}",
                    f"{r['median_ms']:.1f}",
                    f"{r['p99_ms']:.1f}",
                    f"{r['cpu_us_per_msg']:.0f}",
                    f"{r['cpu_share']:.0%}",
                    "yes" if keeps else "NO",
                    "1.0" if mode == "bare" else f"{ratio:.1f}x",
                )
    finally:
        broker.stop()
    console.print(table)
    console.print(f"highest N the controller kept up with: {sustained}")
    console.print(
        f"peak memory (ru_maxrss) of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
