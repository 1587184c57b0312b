"""A rosbridge connection (rosbridge v2 JSON protocol over WebSocket) through roslibpy, on the
controller's own asyncio loop.

roslibpy's asyncio transport normally runs its own loop on a background thread; here its loop
manager is the controller's running loop, so every callback (a message, a service answer, the
connection going up or down) runs on the loop that owns the core, and the core keeps a single
writer. roslibpy has no handler for the bridge's `status` operation (the bridge reports
problems with it); it is logged here instead of raising inside the transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import roslibpy
from roslibpy.comm import comm_asyncio

log = logging.getLogger(__name__)

Message = dict[str, Any]


class _LoopManager(comm_asyncio.AsyncioEventLoopManager):  # type: ignore[misc]
    """roslibpy's loop manager, on the caller's running loop instead of a thread of its own."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop

    def run(self) -> None:  # the loop runs already: it is the controller's
        return None

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        assert self.loop is not None
        self.loop.call_later(delay, callback)

    def call_in_thread(self, callback: Callable[[], object]) -> None:
        # No threads: the callback runs on the loop, like every other.
        assert self.loop is not None
        self.loop.call_soon(callback)

    def terminate(self) -> None:  # the loop is not ours to stop
        return None


def _use_loop(loop: asyncio.AbstractEventLoop) -> None:
    manager = comm_asyncio._MANAGER_SINGLETON
    if not isinstance(manager, _LoopManager) or manager.loop is not loop:
        comm_asyncio._MANAGER_SINGLETON = _LoopManager(loop)


class RosBridge:
    """One rosbridge server: topics, services and the connection state, callbacks on the loop."""

    def __init__(self, url: str, on_connection: Callable[[bool], None] | None = None) -> None:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"'{url}' has no host and port")
        _use_loop(asyncio.get_running_loop())
        # Reconnect quickly after a bridge restart (roslibpy's default starts at 1 s, then x2.7).
        comm_asyncio.AsyncioRosBridgeClientFactory.set_max_delay(5.0)
        self.url = url
        self.on_connection = on_connection
        self.connected = False
        self._topics: dict[str, roslibpy.Topic] = {}
        self._ros = roslibpy.Ros(parts.hostname, parts.port, transport="asyncio")
        self._ros.factory.on("ready", self._ready)
        self._ros.factory.on("close", self._closed)
        if self._ros.factory.is_connected:  # pragma: no cover - connected before we listened
            self._ready(self._ros.factory._proto)

    def _ready(self, proto: Any) -> None:
        proto._message_handlers["status"] = self._on_status
        self.connected = True
        if self.on_connection is not None:
            self.on_connection(True)

    def _closed(self, _proto: Any) -> None:
        if self.connected:
            self.connected = False
            if self.on_connection is not None:
                self.on_connection(False)

    def _on_status(self, message: Message) -> None:
        log.info("rosbridge %s: %s %s", self.url, message.get("level", ""), message.get("msg", ""))

    def subscribe(self, topic: str, msg_type: str, handler: Callable[[Message], None]) -> None:
        roslibpy.Topic(self._ros, topic, msg_type).subscribe(handler)

    def publish(self, topic: str, msg_type: str, message: Message) -> None:
        publisher = self._topics.get(topic)
        if publisher is None:
            publisher = self._topics[topic] = roslibpy.Topic(self._ros, topic, msg_type)
            publisher.advertise()
        publisher.publish(roslibpy.Message(message))

    def call(
        self,
        service: str,
        srv_type: str,
        request: Message,
        on_result: Callable[[Message], None],
        on_error: Callable[[str], None],
        timeout_s: float = 10.0,
    ) -> None:
        """Call a service; exactly one of `on_result` and `on_error` is called, on the loop."""
        loop = asyncio.get_running_loop()
        if not self.connected:
            loop.call_soon(on_error, "the bridge is not connected")
            return

        def result(answer: Any) -> None:
            if not timer.cancelled():
                timer.cancel()
                on_result(dict(answer))

        def error(problem: Any) -> None:
            if not timer.cancelled():
                timer.cancel()
                on_error(str(problem))

        timer = loop.call_later(timeout_s, error, f"no answer within {timeout_s:.0f} s")
        roslibpy.Service(self._ros, service, srv_type).call(roslibpy.ServiceRequest(request), result, error)

    def send_goal(self, action: str, action_type: str, goal: Message, on_status: Callable[[object], None]) -> None:
        """Send an action goal; `on_status` gets its final status (action_msgs/GoalStatus value:
        4 succeeded, 5 canceled, 6 aborted), or "aborted" when the bridge refuses it."""
        if not self.connected:
            asyncio.get_running_loop().call_soon(on_status, "aborted")
            return

        def result(answer: Any) -> None:
            status = answer.get("status") if isinstance(answer, dict) else None
            on_status(getattr(status, "value", status))

        def error(problem: Any) -> None:
            log.warning("rosbridge %s refused a goal for %s: %s", self.url, action, problem)
            on_status("aborted")

        client = roslibpy.ActionClient(self._ros, action, action_type)
        client.send_goal(roslibpy.Goal(goal), result, lambda _feedback: None, error)

    def close(self) -> None:
        self.on_connection = None
        factory = self._ros.factory
        factory._stop = True
        proto = factory._proto
        if proto is not None:
            proto.send_close()
