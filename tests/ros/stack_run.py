"""One transport through a real ROS 2 graph, run inside a loopback-only network namespace by
`tests/ros/test_ros_stack.py` (`python -m tests.ros.stack_run WORKDIR`).

In the namespace: the Rust rosbridge, a simulated rclpy robot and two rclpy robot cells; in this
process, the controller core with the ROS gateway (roslibpy on the loop). The robot picks at
the cell of ST-A (whose first transfer fails: the operator retries) and delivers at the cell of
ST-B. Prints one JSON line with what the test checks.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from pathlib import Path

from fleet.clock import WallClock
from fleet.core import Controller
from fleet.ros.config import RosCellConfig, RosConfig, RosRobotConfig, Transform2D
from fleet.ros.convert import to_robot
from fleet.ros.gateway import RosGateway
from fleet.server import Server
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import load_map
from tests.broker import free_port
from tests.ros.stack import RosStack, interfaces

FRAME = Transform2D(x=-5.0, y=2.0, theta=0.5)  # the robot's map is not the plant's


async def _until(check: object, timeout_s: float, stack: RosStack) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        if not stack.alive():
            raise RuntimeError("a ROS process died")
        await asyncio.sleep(0.05)


async def run(workdir: Path) -> dict[str, object]:
    fmap = load_map("small_test")
    stack = RosStack(workdir)
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    result: dict[str, object] = {"own_interfaces": interfaces()}
    try:
        bridge = stack.bridge(port)
        start = fmap.node_by_id["PA1"]
        rx, ry, _ = to_robot(FRAME, start.x, start.y, 0.0)
        robot = stack.node("robot", "robot", "--ns", "amr1", "--x", str(rx), "--y", str(ry), "--speed", "4.0")
        cell_a = stack.node("cell_a", "cell", "--ns", "cell_a", "--transfer-s", "0.5", "--fail-first", "1")
        cell_b = stack.node("cell_b", "cell", "--ns", "cell_b", "--transfer-s", "0.5")
        await asyncio.sleep(1.0)
        result["ros_interfaces"] = {
            name: interfaces(p.pid)
            for name, p in (("bridge", bridge), ("robot", robot), ("cell_a", cell_a), ("cell_b", cell_b))
        }
        result["ros_domain_id"] = stack.env["ROS_DOMAIN_ID"]
        controller = Controller(fmap, WallClock())
        service = FleetService(controller, OrderStore(workdir / "fleet.db"))
        config = RosConfig(
            robots=[RosRobotConfig(id="AMR-1", url=url, namespace="amr1", transform=FRAME, status_topic=None)],
            cells=[
                RosCellConfig(
                    station=station,
                    url=url,
                    load_service=f"/{ns}/load",
                    unload_service=f"/{ns}/unload",
                    status_topic=f"/{ns}/status",
                    timeout_s=30,
                )
                for station, ns in (("ST-A", "cell_a"), ("ST-B", "cell_b"))
            ],
        )
        ros = RosGateway(controller, config)
        service.cells = ros
        server = Server(service, [ros])
        ros.start()
        loop_task = asyncio.create_task(server.run())
        try:
            await _until(lambda: controller.vehicles["AMR-1"].placed, 30, stack)
            order = await service.submit_order("ST-A", "ST-B")
            started = time.monotonic()
            await _until(lambda: any(a.code == "transfer-failed" for a in controller.alarms), 60, stack)
            result["held_at_cell"] = controller.orders[order.id].state.value
            service.transfer("ST-A", retry=True, by="integration test")
            await _until(lambda: controller.orders[order.id].state.terminal, 60, stack)
            result["seconds"] = round(time.monotonic() - started, 1)
            result["order"] = [t.state.value for t in controller.orders[order.id].history]
            v = controller.vehicles["AMR-1"]
            end = fmap.node_by_id[fmap.station_by_id["ST-B"].node]
            result["at_dropoff_m"] = round(math.hypot(v.x - end.x, v.y - end.y), 3)
            result["dropped"] = ros.dropped
        finally:
            server.stop()
            await loop_task
            ros.stop()
            await service.close()
    finally:
        stack.stop()
        result["logs"] = stack.logs()[-4000:]
    return result


def main() -> None:
    workdir = Path(sys.argv[1])
    try:
        result = asyncio.run(run(workdir))
    except Exception as exc:  # reported to the test with the logs, not as a bare traceback
        result = {"error": repr(exc), "logs": "\n".join(p.read_text()[-1500:] for p in workdir.glob("*.log"))}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
