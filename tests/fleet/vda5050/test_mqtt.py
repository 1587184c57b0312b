"""The controller and simulated VDA 5050 vehicles through a real mosquitto broker started by the
test: transports finish, a dead vehicle's last will takes it out, a broker restart is survived,
everybody fails over to the second broker of a list when the first dies, and a rogue client's
garbage changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from pydantic import ValidationError

from fleet.model import OrderState
from fleet.vda5050.mqtt import MqttBus, MqttSettings
from maps import FacilityMap
from sim.fleets import VdaFleet
from sim.live import run_live
from sim.runner import SimConfig, Simulation
from tests.broker import Broker
from tests.waiting import until

SPEED = 20.0  # simulated seconds per wall second


class Plant:
    def __init__(self, sim: Simulation, bus: MqttBus) -> None:
        self.sim, self.bus = sim, bus
        assert isinstance(sim.fleet, VdaFleet)
        self.fleet: VdaFleet = sim.fleet


@pytest.fixture
async def plant(mosquitto: Broker, small_map: FacilityMap) -> AsyncIterator[Plant]:
    async with running_plant(mosquitto.url, small_map) as p:
        yield p


@contextlib.asynccontextmanager
async def running_plant(url: str, small_map: FacilityMap) -> AsyncIterator[Plant]:
    bus = MqttBus(MqttSettings(url=url, keepalive_s=2, reconnect_s=0.2))
    config = SimConfig(vehicles=3, seed=2, protocol="vda5050", offline_grace_s=5.0)
    sim = Simulation(small_map, config, demand_enabled=False, bus=bus)
    await bus.start()
    await bus.wait_connected()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_live(sim, SPEED, stop))
    p = Plant(sim, bus)
    await until(lambda: len(sim.controller.vehicles) == 3, 10, "three vehicles to report in")
    try:
        yield p
    finally:
        stop.set()
        await runner
        await bus.stop()


async def test_three_vehicles_finish_transports_through_the_broker(plant: Plant) -> None:
    c = plant.sim.controller
    orders = [c.submit_order("ST-A", "ST-B"), c.submit_order("ST-C", "ST-B"), c.submit_order("ST-SD", "ST-D1")]
    await until(lambda: all(c.orders[o.id].state is OrderState.FINISHED for o in orders), 30, "three transports")
    assert len({c.orders[o.id].vehicle_id for o in orders}) >= 2, "the work was shared"
    assert plant.fleet.master.received["state"] > 30
    assert sum(plant.fleet.master.dropped.values()) == 0
    assert plant.sim.oracle.collisions == [] and plant.sim.oracle.claim_violations == []


async def test_dead_vehicle_goes_connectionbroken_and_its_order_is_replanned(plant: Plant) -> None:
    c = plant.sim.controller
    order = c.submit_order("ST-A", "ST-B")
    await until(lambda: c.orders[order.id].state is OrderState.TO_PICKUP, 10, "a vehicle to take the order")
    victim_id = c.orders[order.id].vehicle_id
    assert victim_id is not None
    victim = next(v for v in plant.fleet.vehicles if v.key.serial_number == victim_id)
    plant.fleet.vehicles.remove(victim)  # its software stops ...
    await plant.bus.endpoints[victim_id].crash()  # ... and its connection drops without goodbye
    await until(lambda: not c.vehicles[victim_id].online, 10, "the last will to arrive")
    assert any(a.code == "vehicle-offline" and "CONNECTIONBROKEN" in a.message for a in c.alarms)
    await until(lambda: c.orders[order.id].vehicle_id not in (None, victim_id), 10, "the order to be re-planned")
    assert any(t.reason and "offline" in t.reason for t in c.orders[order.id].history)


async def test_broker_killed_and_restarted_mid_run(plant: Plant, mosquitto: Broker) -> None:
    c = plant.sim.controller
    orders = [c.submit_order("ST-A", "ST-B"), c.submit_order("ST-C", "ST-B")]
    await until(lambda: any(c.orders[o.id].state.started for o in orders), 10, "work to start")
    mosquitto.kill()
    await asyncio.sleep(1.0)
    mosquitto.start()
    await until(
        lambda: all(e.connections >= 2 and e.connected.is_set() for e in plant.bus.endpoints.values()),
        15,
        "every client to reconnect",
    )
    late = c.submit_order("ST-SD", "ST-D1")
    await until(
        lambda: all(c.orders[o.id].state is OrderState.FINISHED for o in [*orders, late]),
        40,
        "every accepted order to finish after the restart",
    )
    assert plant.sim.oracle.collisions == []


async def test_controller_and_vehicles_fail_over_to_the_second_broker(
    mosquitto: Broker, small_map: FacilityMap, tmp_path: Path
) -> None:
    """With two brokers in the URL list, the first killed for good: every client (the
    controller's and each vehicle's) connects to the second, and the transports accepted before
    and after finish there; a URL list with a broken entry is refused by field."""
    (tmp_path / "second").mkdir()
    second = Broker(tmp_path / "second")
    second.start()
    try:
        async with running_plant(f"{mosquitto.url}, {second.url}", small_map) as plant:
            c = plant.sim.controller
            orders = [c.submit_order("ST-A", "ST-B"), c.submit_order("ST-C", "ST-B")]
            await until(lambda: any(c.orders[o.id].state.started for o in orders), 10, "work to start")
            assert all(e.broker == 0 for e in plant.bus.endpoints.values()), "all on the first broker"
            mosquitto.kill()
            await until(
                lambda: all(e.broker % 2 == 1 and e.connected.is_set() for e in plant.bus.endpoints.values()),
                15,
                "every client on the second broker",
            )
            late = c.submit_order("ST-SD", "ST-D1")
            await until(
                lambda: all(c.orders[o.id].state is OrderState.FINISHED for o in [*orders, late]),
                40,
                "every order to finish on the second broker",
            )
            assert plant.sim.oracle.collisions == []
    finally:
        second.stop()
    with pytest.raises(ValidationError, match="url"):
        MqttSettings(url=f"{second.url},tcp://nowhere")


async def test_rogue_messages_are_dropped_and_change_nothing(plant: Plant, mosquitto: Broker) -> None:
    c = plant.sim.controller
    order = c.submit_order("ST-A", "ST-B")
    garbage = [
        ("uagv/v2/fleetsim/AGV-01/state", b'{"headerId": 1, "timest', "invalid"),
        ("uagv/v2/fleetsim/AGV-01/state", json.dumps({"headerId": "x", "driving": "yes"}).encode(), "invalid"),
        ("uagv/v2/fleetsim/AGV-01/state", b"{" + b" " * 400_000 + b"}", "too_large"),
        ("uagv/v2/fleetsim/AGV-02/connection", json.dumps({"connectionState": "MAYBE"}).encode(), "invalid"),
        ("uagv/v2/fleetsim/GHOST-7/state", b"{}", "invalid"),
    ]
    master = plant.fleet.master
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="rogue") as rogue:
        for topic, payload, reason in garbage:
            # Each to be seen dropped for its reason. A state that AGV-01's own next state
            # overtakes before it is read is skipped unread (`MqttEndpoint`: superseded
            # snapshots), so it goes again until it is read.
            before = master.dropped[reason]
            for _ in range(10):
                await rogue.publish(topic, payload, qos=1)
                with contextlib.suppress(AssertionError):
                    await until(lambda r=reason, b=before: master.dropped[r] > b, 1.0, f"{reason} drop")
                    break
            assert master.dropped[reason] > before, f"{topic} was never read and dropped"
    assert set(c.vehicles) == {"AGV-01", "AGV-02", "AGV-03"}
    assert all(v.online for v in c.vehicles.values())
    await until(lambda: c.orders[order.id].state is OrderState.FINISHED, 30, "the order to finish anyway")
