"""One MQTT client of the controller (`MqttEndpoint`) against a real mosquitto started by the
test: a publish the broker never answers ends the connection and the queue goes out after it
is made again; of a burst of snapshots on one topic only the newest is handled, while every
other message is handled in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from fleet.vda5050.master import Outgoing
from fleet.vda5050.mqtt import MqttEndpoint, MqttSettings
from tests.broker import Broker
from tests.waiting import until


@pytest.fixture
async def listener(mosquitto: Broker) -> AsyncIterator[list[tuple[str, bytes]]]:
    """What a plain aiomqtt client subscribed to `out/#` receives."""
    got: list[tuple[str, bytes]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="listener", timeout=1) as c:
                    await c.subscribe("out/#", qos=1)
                    ready.set()
                    async for m in c.messages:
                        got.append((str(m.topic), bytes(m.payload)))  # type: ignore[arg-type]
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield got
    finally:
        task.cancel()


async def test_a_publish_the_broker_never_answers_reconnects_and_the_queue_goes_out(
    mosquitto: Broker, listener: list[tuple[str, bytes]]
) -> None:
    # keepalive far beyond the freeze: only the publish timeout can notice the hung broker.
    settings = MqttSettings(url=mosquitto.url, keepalive_s=30, reconnect_s=0.2, timeout_s=0.5)
    endpoint = MqttEndpoint(settings, "controller")
    endpoint.start()
    try:
        await asyncio.wait_for(endpoint.connected.wait(), 10)
        mosquitto.freeze()
        try:
            endpoint.send(Outgoing("out/a", b"during", 1))
            await asyncio.sleep(1.5)  # the PUBACK does not come within 0.5 s
        finally:
            mosquitto.thaw()
        endpoint.send(Outgoing("out/a", b"after", 1))
        await until(lambda: ("out/a", b"after") in listener, 15, "the message sent after the freeze")
        assert ("out/a", b"during") in listener, "the unanswered message went out again"
        assert endpoint.connections >= 2
    finally:
        await endpoint.stop()


async def test_a_burst_of_snapshots_is_handled_newest_only_and_the_rest_in_order(mosquitto: Broker) -> None:
    handled: list[tuple[str, bytes]] = []
    blocked = False

    def handler(topic: str, payload: bytes) -> None:
        nonlocal blocked
        if not blocked:  # the first message finds the loop busy for a while (a solve, say)
            blocked = True
            time.sleep(1.0)
        handled.append((topic, payload))

    endpoint = MqttEndpoint(MqttSettings(url=mosquitto.url), "controller")
    endpoint.subscriptions += [("snap/+", handler, True), ("event/+", handler, False)]
    endpoint.start()
    try:
        await asyncio.wait_for(endpoint.connected.wait(), 10)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="vehicle") as vehicle:
            await vehicle.publish("event/x", b"first", qos=1)
            await until(lambda: blocked, 10, "the first message")
            for k in range(50):
                await vehicle.publish("snap/a", f"a{k}".encode(), qos=0)
                await vehicle.publish("snap/b", f"b{k}".encode(), qos=0)
                if k % 10 == 0:
                    await vehicle.publish("event/x", f"e{k}".encode(), qos=1)
        await until(lambda: ("snap/a", b"a49") in handled and ("snap/b", b"b49") in handled, 10, "the newest")
        await asyncio.sleep(0.3)
    finally:
        await endpoint.stop()
    events = [p for t, p in handled if t == "event/x"]
    assert events == [b"first", b"e0", b"e10", b"e20", b"e30", b"e40"], "every other message, in order"
    snaps_a = [p for t, p in handled if t == "snap/a"]
    assert snaps_a[-1] == b"a49" and snaps_a == sorted(snaps_a, key=lambda p: int(p[1:])), "newest last, in order"
    assert len(snaps_a) < 25 and endpoint.superseded >= 50, (len(snaps_a), endpoint.superseded)


def test_an_order_update_sent_again_while_queued_is_queued_once() -> None:
    endpoint = MqttEndpoint(MqttSettings(), "controller")  # never started: the queue only
    update = Outgoing("uagv/v2/m/AGV-01/order", b"{}", 1, key="order:O-1:3")
    for _ in range(3):
        endpoint.send(update)
    endpoint.send(Outgoing("uagv/v2/m/AGV-01/order", b"{}", 1, key="order:O-1:4"))
    endpoint.send(Outgoing("uagv/v2/m/AGV-01/instantActions", b"{}", 1))
    endpoint.send(Outgoing("uagv/v2/m/AGV-01/instantActions", b"{}", 1))
    assert [m.key for m in endpoint._queue] == ["order:O-1:3", "order:O-1:4", None, None]
