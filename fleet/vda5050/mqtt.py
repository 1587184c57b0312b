"""MQTT transport on aiomqtt: settings for a real plant, reconnecting clients, and a bus with the
same surface as the simulator's in-process one (connect, subscribe, publish, pump).

Each MQTT client (`MqttEndpoint`) stays connected on its own: after a broker loss it reconnects
with back-off, subscribes again and sends what was queued meanwhile, in order. A client's last
will is registered at connect, so the broker publishes it when the client dies.

Concurrency contract: everything runs on one asyncio loop. Message handlers are plain functions
called on that loop as messages arrive; they must not block and must not await.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiomqtt
from pydantic import BaseModel, Field, field_validator

from fleet.metrics import Sample
from fleet.vda5050.master import Outgoing

log = logging.getLogger(__name__)
Handler = Callable[[str, bytes], None]


class MqttSettings(BaseModel):
    """Broker connection. `url` is mqtt://host:port or mqtts://host:port (TLS), or several of
    them separated by commas: a client whose connection fails or drops tries the next one in the
    list (brokers of a redundant pair, say)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str = "fleet-controller"
    interface_name: str = "uagv"
    keepalive_s: int = Field(default=5, ge=1)
    reconnect_s: float = Field(default=0.5, gt=0)
    # How long a connect, subscribe or QoS 1 publish may wait for the broker's answer; past it
    # the connection is dropped and made again, and the queue is sent from where it stopped.
    timeout_s: float = Field(default=10.0, gt=0)

    @classmethod
    def from_env(cls) -> MqttSettings | None:
        """From FLEET_MQTT_URL (required), FLEET_MQTT_USERNAME/PASSWORD, FLEET_MQTT_CA_FILE,
        FLEET_MQTT_CERT_FILE, FLEET_MQTT_KEY_FILE, FLEET_MQTT_CLIENT_ID; None without a URL."""
        url = os.environ.get("FLEET_MQTT_URL")
        if not url:
            return None
        env = {
            "username": "FLEET_MQTT_USERNAME",
            "password": "FLEET_MQTT_PASSWORD",
            "ca_file": "FLEET_MQTT_CA_FILE",
            "cert_file": "FLEET_MQTT_CERT_FILE",
            "key_file": "FLEET_MQTT_KEY_FILE",
            "client_id": "FLEET_MQTT_CLIENT_ID",
        }
        values: dict[str, object] = {k: os.environ[v] for k, v in env.items() if os.environ.get(v)}
        return cls.model_validate({"url": url, **values})

    @field_validator("url")
    @classmethod
    def _urls(cls, url: str) -> str:
        for one in (part.strip() for part in url.split(",")):
            parsed = urlparse(one)
            if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
                raise ValueError(f"expected mqtt://host:port or mqtts://host:port, got '{one[:120]}'")
        return url

    @property
    def urls(self) -> list[str]:
        return [part.strip() for part in self.url.split(",")]

    def client(self, identifier: str, will: Outgoing | None, attempt: int = 0) -> aiomqtt.Client:
        """A client of the broker `attempt` picks from the list (round robin)."""
        parsed = urlparse(self.urls[attempt % len(self.urls)])
        assert parsed.hostname is not None  # checked by `_urls`
        tls = parsed.scheme == "mqtts"
        return aiomqtt.Client(
            parsed.hostname,
            parsed.port or (8883 if tls else 1883),
            identifier=identifier,
            username=self.username,
            password=self.password,
            will=aiomqtt.Will(will.topic, will.payload, will.qos, will.retain) if will else None,
            keepalive=self.keepalive_s,
            timeout=self.timeout_s,
            tls_params=aiomqtt.TLSParameters(self.ca_file, self.cert_file, self.key_file) if tls else None,
            clean_session=True,
            # paho leaves Nagle's algorithm on: with delayed ACKs, a command and its answer then
            # took about 88 ms instead of 3 (bench/ros_bridge.py, 10 clients, QoS 1).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )


@dataclass
class MqttEndpoint:
    """One reconnecting MQTT client with its subscriptions and an outgoing queue."""

    settings: MqttSettings
    identifier: str
    will: Outgoing | None = None
    on_connect: Callable[[], list[Outgoing]] | None = None  # sent first on every (re)connection
    on_published: Callable[[Outgoing], None] | None = None  # told when the broker client took a message
    # (pattern, handler, snapshot): on a snapshot subscription every message replaces the one
    # before (VDA 5050 state and visualization), so of several waiting at once only the newest
    # on each topic is handled. A controller busy for a while (a solve) otherwise fell behind a
    # fleet's states and never caught up.
    subscriptions: list[tuple[str, Handler, bool]] = field(default_factory=list)
    superseded: int = 0  # snapshots skipped for a newer one
    # Asked before every publish; False drops the message (counted in `fenced`): a controller
    # that lost its site's lease must send nothing more (`fleet.lease`).
    gate: Callable[[], bool] | None = None
    fenced: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    broker: int = 0  # the index in `settings.urls` of the broker tried or connected to
    _queue: deque[Outgoing] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _client: aiomqtt.Client | None = None
    _task: asyncio.Task[None] | None = None

    def send(self, message: Outgoing) -> None:
        """Queue a message; one saying what a queued one already says (the same key: an order
        update sent again while the first copy still waits for its turn) is not queued twice."""
        if message.key is not None and any(queued.key == message.key for queued in self._queue):
            return
        self._queue.append(message)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mqtt-{self.identifier}")

    async def stop(self) -> None:
        """Disconnect cleanly (no last will)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def crash(self) -> None:
        """Test hook: drop the TCP connection without an MQTT DISCONNECT, as a dead process would,
        so the broker publishes the last will."""
        if self._client is not None:
            sock = self._client._client.socket()  # the paho socket under aiomqtt
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with self.settings.client(self.identifier, self.will, self.broker) as client:
                    self._client = client
                    for pattern, _, _ in self.subscriptions:
                        await client.subscribe(pattern, qos=1)
                    for greeting in (self.on_connect() if self.on_connect else [])[::-1]:
                        self._queue.appendleft(greeting)
                    self.connections += 1
                    self.connected.set()
                    # Either half failing ends the connection: a sender that died alone (a
                    # publish that timed out) left a client that read on and never sent again.
                    tasks = {
                        asyncio.create_task(self._send_loop(client)),
                        asyncio.create_task(self._receive_loop(client)),
                    }
                    try:
                        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            task.result()
                    finally:
                        for task in tasks:
                            task.cancel()
                        # Not `suppress(CancelledError)` around each: that would swallow a
                        # cancellation of this task (stop) arriving meanwhile.
                        await asyncio.gather(*tasks, return_exceptions=True)
            except aiomqtt.MqttError as exc:
                if _cancelling():
                    # Stopped, and the disconnect on the way out failed (a dead socket): the
                    # error must not turn the stop into a reconnection.
                    raise asyncio.CancelledError from exc
                log.info("mqtt client %s disconnected: %s", self.identifier, exc)
                self.broker += 1  # that broker failed: the next one in the list (if there are several)
            finally:
                self.connected.clear()
                self._client = None
            await asyncio.sleep(self.settings.reconnect_s)

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        while True:
            while self._queue:
                message = self._queue[0]
                if self.gate is not None and not self.gate():
                    self._queue.popleft()
                    self.fenced += 1
                    continue
                await client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
                self._queue.popleft()  # only once the client took it: a failed publish is retried
                if self.on_published is not None:
                    self.on_published(message)
                # Python 3.11's asyncio.wait_for, under aiomqtt's publish, drops a cancellation
                # that comes as the PUBACK does (CPython gh-86296): the sender then waited for
                # the next message forever and stopping the client hung (1 in 7 test runs
                # with both cores loaded).
                if _cancelling():
                    raise asyncio.CancelledError
            self._wake.clear()
            await self._wake.wait()

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            batch = [message]
            # What has arrived meanwhile is taken at once (a get from a queue that holds
            # something does not wait), so that superseded snapshots are skipped, not handled.
            while len(client.messages) > 0:
                batch.append(await anext(client.messages))
            for topic, payload in self._conflated(batch):
                self._deliver(topic, payload)

    def _conflated(self, batch: list[aiomqtt.Message]) -> list[tuple[str, object]]:
        """The batch in order, less each snapshot that a later message on the same topic in the
        batch supersedes."""
        if len(batch) == 1:  # the usual case: nothing waited behind it
            return [(str(batch[0].topic), batch[0].payload)]
        snapshots = [pattern for pattern, _, snapshot in self.subscriptions if snapshot]
        out: list[tuple[str, object]] = []
        newest: dict[str, int | None] = {}  # topic -> highest headerId kept so far (from the back)
        for message in reversed(batch):
            topic = str(message.topic)
            if any(message.topic.matches(pattern) for pattern in snapshots):
                # A message with a headerId is superseded only by a later one that counts further:
                # a flood with older headerIds (a second sender) or none (not VDA 5050, dropped
                # later) must not hide the vehicle's newest state.
                header = _header_id(message.payload)
                if topic in newest:
                    later = newest[topic]
                    if header is None or (later is not None and header <= later):
                        self.superseded += 1
                        continue
                newest[topic] = header  # kept: it counts furthest of what was kept after it
            out.append((topic, message.payload))
        return out[::-1]

    def _deliver(self, topic: str, payload: object) -> None:
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        for pattern, handler, _ in self.subscriptions:
            if aiomqtt.Topic(topic).matches(pattern):
                try:
                    handler(topic, data)
                except Exception:  # a handler bug must not kill the connection loop
                    log.exception("handler for %s failed on %s", self.identifier, topic)


def _cancelling() -> bool:
    """Whether the running task has been asked to stop (even if an await swallowed the request)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


class MqttBus:
    """The bus surface of `sim.bus.InProcessBus` over a real broker: one MQTT client per
    connected party, so each vehicle has its own connection and last will."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.endpoints: dict[str, MqttEndpoint] = {}
        self._running = False
        self.on_published: Callable[[str, Outgoing], None] | None = None  # (client id, message) taken by the client
        self.gate: Callable[[], bool] | None = None  # asked by every client before each publish

    def connect(
        self, client_id: str, will: Outgoing | None = None, on_connect: Callable[[], list[Outgoing]] | None = None
    ) -> None:
        endpoint = MqttEndpoint(self.settings, client_id, will, on_connect)
        endpoint.on_published = lambda message: self.on_published(client_id, message) if self.on_published else None
        endpoint.gate = lambda: self.gate is None or self.gate()
        self.endpoints[client_id] = endpoint
        if self._running:
            endpoint.start()

    def disconnect(self, client_id: str, clean: bool = True) -> None:
        endpoint = self.endpoints.pop(client_id, None)
        if endpoint is not None:
            coro = endpoint.stop() if clean else endpoint.crash()
            asyncio.get_running_loop().create_task(coro)

    def subscribe(self, client_id: str, pattern: str, handler: Handler, snapshot: bool = False) -> None:
        self.endpoints[client_id].subscriptions.append((pattern, handler, snapshot))

    def publish(self, message: Outgoing, client_id: str = "controller") -> None:
        endpoint = self.endpoints.get(client_id)
        if endpoint is not None:
            endpoint.send(message)

    def pump(self) -> None:
        """Nothing to do: the broker delivers asynchronously to the handlers."""

    def metrics(self) -> list[Sample]:
        """Snapshots skipped for a newer one on their topic, and reconnections, per client."""
        out = []
        for client_id, e in sorted(self.endpoints.items()):
            labels = (("client", client_id),)
            out.append(
                Sample(
                    "fleet_mqtt_superseded_total",
                    "counter",
                    "MQTT snapshot messages (state, visualization) skipped for a newer one on their topic.",
                    e.superseded,
                    labels,
                )
            )
            out.append(
                Sample("fleet_mqtt_connections_total", "counter", "MQTT connections made.", e.connections, labels)
            )
            fenced = "Messages not sent because this controller no longer held its site's lease."
            out.append(Sample("fleet_mqtt_fenced_total", "counter", fenced, e.fenced, labels))
        return out

    async def start(self) -> None:
        self._running = True
        for endpoint in self.endpoints.values():
            endpoint.start()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(e.connected.wait() for e in self.endpoints.values())), timeout)

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*(e.stop() for e in self.endpoints.values()))


_HEADER_ID = re.compile(rb'"headerId"\s*:\s*(\d{1,18})')


def _header_id(payload: object) -> int | None:
    """The headerId of a VDA 5050 message, read without parsing it (None: not found)."""
    found = _HEADER_ID.search(payload) if isinstance(payload, bytes | bytearray) else None
    return int(found.group(1)) if found else None
