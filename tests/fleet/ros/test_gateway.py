"""The ROS gateway through roslibpy against the in-process fake rosbridge (real rosbridge v2
JSON over a real WebSocket; `tests/rosbridge_fake.py`): a robot driven node by node picks at a
robot cell and delivers at another; a cell failure waits for the operator; a lost bridge takes
the robot offline and back; malformed messages are dropped without effect."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.clock import ScaledClock
from fleet.core import Controller
from fleet.model import OrderState
from fleet.ros.config import RosCellConfig, RosConfig, RosRobotConfig, Transform2D
from fleet.ros.convert import quaternion, to_robot
from fleet.ros.gateway import RosGateway
from fleet.server import Server
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from tests.rosbridge_fake import FakeRosbridge

SPEED = 50.0
FRAME = Transform2D(x=-5.0, y=2.0, theta=0.5)


class FakeRobot:
    """What a Nav2 robot does, seen through the bridge: it goes to each goal it gets and
    publishes its odometry (in its own frame) ten times a second."""

    def __init__(self, bridge: FakeRosbridge, x: float, y: float) -> None:
        self.bridge = bridge
        self.at = to_robot(FRAME, x, y, 0.0)
        self.goals: list[tuple[float, float]] = []
        bridge.on_publish = self._on_publish

    def _on_publish(self, topic: str, msg: dict[str, Any]) -> None:
        if topic == "/amr1/goal_pose":
            self._go(msg)

    def _go(self, pose: dict[str, Any]) -> None:
        p = pose["pose"]["position"]
        self.at = (p["x"], p["y"], 0.0)
        self.goals.append((p["x"], p["y"]))

    def navigate(self, goal: dict[str, Any], finish: Callable[[int], None]) -> None:
        """Nav2's NavigateToPose through the bridge: there, then succeeded."""
        self._go(goal["pose"])
        asyncio.get_running_loop().call_later(0.2, finish, 4)

    async def run(self) -> None:
        while True:
            x, y, yaw = self.at
            self.bridge.publish(
                "/amr1/odom",
                {
                    "pose": {"pose": {"position": {"x": x, "y": y, "z": 0.0}, "orientation": quaternion(yaw)}},
                    "twist": {"twist": {"linear": {"x": 0.0, "y": 0.0, "z": 0.0}}},
                },
            )
            self.bridge.publish("/amr1/battery_state", {"percentage": 0.8})
            await asyncio.sleep(0.1)


def cell_service(bridge: FakeRosbridge, status_topic: str, outcomes: list[str]) -> Callable[[Any], Any]:
    """A cell's Trigger service: accepts with a transfer id and reports the next outcome on its
    status topic shortly after."""
    count = 0

    def handle(_args: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        nonlocal count
        count += 1
        transfer = f"T-{count}"
        outcome = outcomes.pop(0) if outcomes else "done"
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, bridge.publish, status_topic, {"data": f"{transfer} running"})
        loop.call_later(0.15, bridge.publish, status_topic, {"data": f"{transfer} {outcome}"})
        return True, {"success": True, "message": transfer}

    return handle


class Plant:
    def __init__(self, fmap: FacilityMap, tmp_path: Path, bridge: FakeRosbridge, action: str | None = None) -> None:
        self.bridge = bridge
        controller = Controller(fmap, ScaledClock(SPEED))
        self.service = FleetService(controller, OrderStore(tmp_path / "fleet.db"))
        robot = RosRobotConfig(
            id="AMR-1", url=bridge.url, namespace="amr1", transform=FRAME, status_topic=None, navigate_action=action
        )
        cells = [
            RosCellConfig(
                station=s,
                url=bridge.url,
                load_service=f"/{c}/load",
                unload_service=f"/{c}/unload",
                status_topic=f"/{c}/status",
            )
            for s, c in (("ST-A", "cell_a"), ("ST-B", "cell_b"))
        ]
        self.ros = RosGateway(controller, RosConfig(robots=[robot], cells=cells))
        self.service.cells = self.ros
        self.server = Server(self.service, [self.ros])
        self.robot = FakeRobot(bridge, *(lambda n: (n.x, n.y))(fmap.node_by_id["PA1"]))

    async def until(self, check: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not check():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running_plant(
    fmap: FacilityMap, tmp_path: Path, action: str | None, aborts: bool = False
) -> AsyncIterator[Plant]:
    """The fake bridge, the fake robot and the controller's loop, until the robot is on the map."""
    bridge = FakeRosbridge()
    await bridge.start()
    running = Plant(fmap, tmp_path, bridge, action=action)
    bridge.actions["/amr1/navigate_to_pose"] = (lambda goal, finish: finish(6)) if aborts else running.robot.navigate
    running.ros.start()
    tasks = [asyncio.create_task(running.robot.run()), asyncio.create_task(running.server.run())]
    core = running.service.controller
    try:
        await running.until(lambda: "AMR-1" in core.vehicles and core.vehicles["AMR-1"].placed)
        yield running
    finally:
        running.server.stop()
        running.ros.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bridge.stop()
        await running.service.close()


@pytest.fixture(params=[None, "navigate_to_pose"], ids=["topic-goals", "action-goals"])
async def plant(small_map: FacilityMap, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Plant]:
    async with running_plant(small_map, tmp_path, request.param) as running:
        yield running


async def test_a_ros_robot_picks_at_a_cell_and_delivers_at_another(plant: Plant) -> None:
    bridge, core = plant.bridge, plant.service.controller
    bridge.services["/cell_a/load"] = cell_service(bridge, "/cell_a/status", [])
    bridge.services["/cell_b/unload"] = cell_service(bridge, "/cell_b/status", [])
    order = await plant.service.submit_order("ST-A", "ST-B")
    await plant.until(lambda: core.orders[order.id].state is OrderState.FINISHED)
    states = [t.state for t in core.orders[order.id].history]
    assert OrderState.LOADING in states and OrderState.UNLOADING in states
    assert [name for name, _ in bridge.service_calls] == ["/cell_a/load", "/cell_b/unload"]
    # Every goal was one map node, in the robot's own frame.
    nodes = {to_robot(FRAME, n.x, n.y, 0.0)[:2] for n in core.map.nodes}
    assert plant.robot.goals and all(any(math.dist(g, n) < 1e-6 for n in nodes) for g in plant.robot.goals)
    if plant.ros.robots["AMR-1"].config.navigate_action is None:
        assert bridge.advertised["/amr1/goal_pose"] == "geometry_msgs/msg/PoseStamped" and not bridge.action_goals
    else:
        assert "/amr1/goal_pose" not in bridge.advertised and len(bridge.action_goals) == len(plant.robot.goals)
    assert core.vehicles["AMR-1"].battery == pytest.approx(0.8)


async def test_a_failed_transfer_waits_for_the_operator_who_retries(plant: Plant) -> None:
    bridge, core = plant.bridge, plant.service.controller
    bridge.services["/cell_a/load"] = cell_service(bridge, "/cell_a/status", ["failed: gripper jam"])
    bridge.services["/cell_b/unload"] = cell_service(bridge, "/cell_b/status", [])
    order = await plant.service.submit_order("ST-A", "ST-B")
    await plant.until(lambda: any(a.code == "transfer-failed" for a in core.alarms))
    assert core.orders[order.id].state is OrderState.LOADING, "the vehicle holds at the cell"
    why = core.wait_reason("AMR-1")
    assert why is not None and "gripper jam" in why and "retry or abort" in why
    await asyncio.sleep(0.5)
    assert core.orders[order.id].state is OrderState.LOADING
    transport = httpx.ASGITransport(app=create_app(plant.service, keys=ApiKeys()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        station = (await api.get("/api/v1/stations/ST-A")).json()
        assert station["cell"] == {"vehicle_id": "AMR-1", "state": "failed", "waiting_for_operator": True}
        retried = await api.post("/api/v1/stations/ST-A/transfer/retry")
        assert retried.status_code == 200 and retried.json()["state"] == "requested", retried.text
        assert (await api.post("/api/v1/stations/ST-C/transfer/retry")).status_code == 404
        assert (await api.post("/api/v1/stations/ST-A/transfer/later")).status_code == 422
    await plant.until(lambda: core.orders[order.id].state is OrderState.FINISHED)
    assert [name for name, _ in bridge.service_calls] == ["/cell_a/load", "/cell_a/load", "/cell_b/unload"]
    with pytest.raises(ValueError):
        plant.service.transfer("ST-A", retry=False, by="operator")
    with pytest.raises(KeyError):
        plant.service.transfer("ST-C", retry=True, by="operator")


async def test_abort_fails_the_order_and_leaves_the_load_at_the_station(plant: Plant) -> None:
    bridge, core = plant.bridge, plant.service.controller
    bridge.services["/cell_a/load"] = cell_service(bridge, "/cell_a/status", ["failed: no part"])
    order = await plant.service.submit_order("ST-A", "ST-B")
    await plant.until(lambda: any(a.code == "transfer-failed" for a in core.alarms))
    plant.service.transfer("ST-A", retry=False, by="operator")
    await plant.until(lambda: core.orders[order.id].state is OrderState.FAILED)
    assert core.vehicles["AMR-1"].loads == (), "nothing was loaded"
    assert "retry" not in (core.wait_reason("AMR-1") or ""), "no longer held by the cell"


async def test_a_lost_bridge_takes_the_robot_offline_and_back(plant: Plant) -> None:
    core = plant.service.controller
    assert core.vehicles["AMR-1"].online
    await plant.bridge.stop()
    await plant.until(lambda: not core.vehicles["AMR-1"].online)
    assert any(a.code == "vehicle-offline" for a in core.alarms)
    await plant.bridge.start()
    await plant.until(lambda: core.vehicles["AMR-1"].online, timeout_s=30)


async def test_malformed_messages_are_dropped_without_effect(plant: Plant) -> None:
    core = plant.service.controller
    before = core.vehicles["AMR-1"]
    for junk in ({"pose": "nowhere"}, {"pose": {"pose": {"position": {"x": "NaN?"}}}}, {}):
        plant.bridge.publish("/amr1/odom", junk)
    plant.bridge.publish("/cell_a/status", {"data": 17})
    plant.bridge.status("error", "a status message roslibpy has no handler for")
    await plant.until(lambda: plant.ros.dropped >= 3)
    after = core.vehicles["AMR-1"]
    assert (after.node, after.online, after.in_service) == (before.node, before.online, before.in_service)


async def test_an_aborted_navigation_goal_rejects_the_drive(small_map: FacilityMap, tmp_path: Path) -> None:
    """Action goals: the navigator aborts one (result status 6): the robot is taken out of
    service with an alarm and its order goes back to the dispatcher, as for a VDA 5050 refusal."""
    async with running_plant(small_map, tmp_path, "navigate_to_pose", aborts=True) as plant:
        core = plant.service.controller
        order = await plant.service.submit_order("ST-A", "ST-B")
        await plant.until(lambda: any(a.code == "drive-rejected" for a in core.alarms))
        assert not core.vehicles["AMR-1"].in_service
        assert core.orders[order.id].state is OrderState.ACCEPTED
        assert plant.bridge.action_goals[0][:2] == ("/amr1/navigate_to_pose", "nav2_msgs/action/NavigateToPose")
