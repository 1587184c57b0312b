"""Goals and state updates per second through the real rosbridge, and the round trip of the
bridge path against a VDA 5050 vehicle's path over mosquitto.

Run: `python bench/ros_bridge.py` (`--robots 10 50 --seconds 5`; needs `make ros-env`).

Protocol, all inside a loopback-only network namespace (as the integration test,
`tests/ros/stack.py`): the Rust rosbridge and N simulated rclpy robots in one process
(`sim/ros_nodes.py robots`), each publishing odometry and battery state at 20 Hz and echoing
every goal at once on `goal_echo`. The controller side is this process: roslibpy on its loop
(`fleet.ros.bridge.RosBridge`), as the ROS gateway uses it.
- state updates/s: odometry and battery messages received per second from all robots;
- goals/s: closed loop, every robot gets its next goal as soon as the echo of the previous one
  is back, for `--seconds`; round trip p50/p99 of those goals (under the state traffic);
- the same closed loop over MQTT: a mosquitto started here, N VDA 5050-shaped echo clients
  (aiomqtt) answering each `order` message on their `state` topic at once, QoS 1 as the
  controller's MQTT bus uses, once with paho's default sockets (Nagle on) and once with
  TCP_NODELAY as the controller's bus sets it; the difference of the medians is the latency the
  bridge path adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _bridge_run(n: int, seconds: float, workdir: Path) -> dict[str, float]:
    from fleet.ros.bridge import RosBridge
    from tests.broker import free_port
    from tests.ros.stack import RosStack

    stack = RosStack(workdir)
    port = free_port()
    try:
        stack.bridge(port)
        stack.node("robots", "robots", "--count", str(n))
        await asyncio.sleep(2.0 + n * 0.05)
        bridge = RosBridge(f"ws://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while not bridge.connected:
            assert time.monotonic() < deadline, "no bridge connection"
            await asyncio.sleep(0.05)
        states = 0
        sent_at: dict[int, float] = {}
        rtts: list[float] = []
        measuring = False

        def on_state(_msg: object) -> None:
            nonlocal states
            if measuring:
                states += 1

        def send(k: int) -> None:
            sent_at[k] = time.monotonic()
            goal = {"header": {"frame_id": "map"}, "pose": {"position": {"x": float(k), "y": 1.0, "z": 0.0}}}
            bridge.publish(f"/amr{k}/goal_pose", "geometry_msgs/msg/PoseStamped", goal)

        def on_echo(k: int) -> None:
            if measuring and k in sent_at:
                rtts.append(time.monotonic() - sent_at.pop(k))
            if measuring:
                send(k)

        for k in range(n):
            bridge.subscribe(f"/amr{k}/odom", "nav_msgs/msg/Odometry", on_state)
            bridge.subscribe(f"/amr{k}/battery_state", "sensor_msgs/msg/BatteryState", on_state)
            bridge.subscribe(f"/amr{k}/goal_echo", "geometry_msgs/msg/PoseStamped", lambda _m, k=k: on_echo(k))
        await asyncio.sleep(2.0)  # subscriptions and publishers matched
        for k in range(n):  # warm-up: one goal each, unmeasured
            send(k)
        await asyncio.sleep(1.0)
        sent_at.clear()
        measuring = True
        t0 = time.monotonic()
        for k in range(n):
            send(k)
        await asyncio.sleep(seconds)
        measuring = False
        elapsed = time.monotonic() - t0
        bridge.close()
        return {
            "states_per_s": states / elapsed,
            "goals_per_s": len(rtts) / elapsed,
            "p50_ms": 1000 * statistics.median(rtts) if rtts else float("nan"),
            "p99_ms": 1000 * _pct(rtts, 0.99),
        }
    finally:
        stack.stop()


async def _mqtt_run(n: int, seconds: float, workdir: Path, nodelay: bool) -> dict[str, float]:
    import socket

    import aiomqtt

    from tests.broker import Broker

    broker = Broker(workdir, nodelay=True)  # as bench/vda5050_throughput.py and the README advise
    broker.start()
    try:
        options = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),) if nodelay else ()
        state = json.dumps({"headerId": 0, "orderId": "o", "orderUpdateId": 0, "lastNodeId": "A1"}).encode()

        async def vehicle(k: int) -> None:
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"bench-v{k}", socket_options=options) as c:
                await c.subscribe(f"uagv/v2/bench/V{k}/order", qos=1)
                async for _message in c.messages:
                    # Not awaited one by one: a QoS 1 publish waits for its PUBACK.
                    pending.add(asyncio.create_task(c.publish(f"uagv/v2/bench/V{k}/state", state, qos=1)))

        pending: set[asyncio.Task[None]] = set()
        vehicles = [asyncio.create_task(vehicle(k)) for k in range(n)]
        await asyncio.sleep(1.0)
        rtts: list[float] = []
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="bench-controller", socket_options=options) as c:
            await c.subscribe("uagv/v2/bench/+/state", qos=1)
            order = json.dumps({"headerId": 0, "orderId": "o", "orderUpdateId": 0, "nodes": [], "edges": []}).encode()
            sent_at: dict[int, float] = {}

            def send(k: int) -> None:
                sent_at[k] = time.monotonic()
                pending.add(asyncio.create_task(c.publish(f"uagv/v2/bench/V{k}/order", order, qos=1)))

            t0 = time.monotonic()
            for k in range(n):
                send(k)
            async for message in c.messages:
                k = int(str(message.topic).split("/")[3][1:])
                rtts.append(time.monotonic() - sent_at.pop(k))
                if time.monotonic() - t0 >= seconds:
                    break
                send(k)
            elapsed = time.monotonic() - t0
        for task in vehicles:
            task.cancel()
        await asyncio.gather(*vehicles, return_exceptions=True)
        return {
            "goals_per_s": len(rtts) / elapsed,
            "p50_ms": 1000 * statistics.median(rtts),
            "p99_ms": 1000 * _pct(rtts, 0.99),
        }
    finally:
        broker.stop()


async def _inside(counts: list[int], seconds: float) -> list[dict[str, float]]:
    rows = []
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            ros = await _bridge_run(n, seconds, Path(tmp))
        row: dict[str, float] = {"robots": n, **{f"ros_{k}": v for k, v in ros.items()}}
        for nodelay in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                mqtt = await _mqtt_run(n, seconds, Path(tmp), nodelay)
            row |= {f"mqtt{'_nd' if nodelay else ''}_{k}": v for k, v in mqtt.items()}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--robots", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(asyncio.run(_inside(args.robots, args.seconds))))
        return
    from tests.ros import stack

    why = stack.missing()
    if why is not None:
        raise SystemExit(why)
    extra = ["--robots", *map(str, args.robots), "--seconds", str(args.seconds)]
    done = stack.in_private_network("bench.ros_bridge", "--inside", *extra, timeout_s=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    print("| robots | path | state updates/s | goals/s | round trip p50 / p99 ms | bridge p50 minus this p50 ms |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        n = r["robots"]
        print(
            f"| {n} | rosbridge + DDS | {r['ros_states_per_s']:.0f} | {r['ros_goals_per_s']:.0f} "
            f"| {r['ros_p50_ms']:.1f} / {r['ros_p99_ms']:.1f} | |"
        )
        paths = (("mqtt", "mosquitto, Nagle on (paho's default)"), ("mqtt_nd", "mosquitto, TCP_NODELAY (our bus)"))
        for key, name in paths:
            goals, p50, p99 = r[key + "_goals_per_s"], r[key + "_p50_ms"], r[key + "_p99_ms"]
            print(f"| {n} | {name} | | {goals:.0f} | {p50:.1f} / {p99:.1f} | {r['ros_p50_ms'] - p50:.1f} |")


if __name__ == "__main__":
    main()
