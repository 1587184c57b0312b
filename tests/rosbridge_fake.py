"""An in-process rosbridge for fast, deterministic tests: a fake, and it says so. It speaks the
real rosbridge v2 protocol (JSON over WebSocket, served by autobahn on a free loopback port):
advertise, unadvertise, publish, subscribe, unsubscribe, call_service answered with
service_response, send_action_goal answered with action_result, and status messages. Behind it
there is no ROS graph, only the test's own handlers: what clients publish is recorded per topic
and passed to `on_publish`, services and actions are Python functions, and the test publishes
to subscribers with `publish`.

The integration test against a real ROS 2 graph is `tests/ros/test_ros_stack.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

from tests.broker import free_port

Message = dict[str, Any]
ServiceHandler = Callable[[Message], tuple[bool, Message]]
ActionHandler = Callable[[Message, Callable[[int], None]], None]  # (goal, finish with a GoalStatus value)


class FakeRosbridge:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.published: dict[str, list[Message]] = defaultdict(list)
        self.advertised: dict[str, str] = {}
        self.subscribers: dict[str, set[WebSocketServerProtocol]] = defaultdict(set)
        self.services: dict[str, ServiceHandler] = {}
        self.service_calls: list[tuple[str, Message]] = []
        self.actions: dict[str, ActionHandler] = {}
        self.action_goals: list[tuple[str, str, Message]] = []  # action, type, goal
        self.on_publish: Callable[[str, Message], None] | None = None
        self.ops: list[str] = []
        self._clients: set[WebSocketServerProtocol] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        factory = WebSocketServerFactory(self.url)
        fake = self

        class Protocol(WebSocketServerProtocol):  # type: ignore[misc]
            def onOpen(self) -> None:  # noqa: N802 - autobahn's name
                fake._clients.add(self)

            def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
                fake._clients.discard(self)
                for subs in fake.subscribers.values():
                    subs.discard(self)

            def onMessage(self, payload: bytes, is_binary: bool) -> None:  # noqa: N802
                fake._on_message(self, json.loads(payload.decode()))

        factory.protocol = Protocol
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """The bridge goes away: every client is dropped and nobody can connect."""
        for client in list(self._clients):
            client.dropConnection(abort=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def publish(self, topic: str, msg: Message) -> None:
        """A ROS node published `msg` on `topic`: every subscribed client gets it."""
        for client in list(self.subscribers.get(topic, ())):
            client.sendMessage(json.dumps({"op": "publish", "topic": topic, "msg": msg}).encode())

    def status(self, level: str, text: str) -> None:
        """A status message (the bridge reports a problem), to every client."""
        for client in list(self._clients):
            client.sendMessage(json.dumps({"op": "status", "level": level, "msg": text}).encode())

    def _on_message(self, client: WebSocketServerProtocol, message: Message) -> None:
        op = message.get("op", "")
        self.ops.append(op)
        if op == "advertise":
            self.advertised[message["topic"]] = message["type"]
        elif op == "subscribe":
            self.subscribers[message["topic"]].add(client)
        elif op == "unsubscribe":
            self.subscribers[message["topic"]].discard(client)
        elif op == "publish":
            self.published[message["topic"]].append(message["msg"])
            if self.on_publish is not None:
                self.on_publish(message["topic"], message["msg"])
        elif op == "call_service":
            self._call(client, message)
        elif op == "send_action_goal":
            self._action(client, message)

    def _action(self, client: WebSocketServerProtocol, message: Message) -> None:
        name, goal = message["action"], message.get("args") or {}
        self.action_goals.append((name, message.get("action_type", ""), goal))

        def finish(status: int) -> None:
            answer = {"op": "action_result", "id": message["id"], "action": name, "values": {}, "status": status}
            client.sendMessage(json.dumps({**answer, "result": status == 4}).encode())

        handler = self.actions.get(name)
        if handler is None:
            finish(6)
        else:
            handler(goal, finish)

    def _call(self, client: WebSocketServerProtocol, message: Message) -> None:
        name, args = message["service"], message.get("args") or {}
        self.service_calls.append((name, args))
        handler = self.services.get(name)
        if handler is None:
            answer = {"op": "service_response", "service": name, "result": False, "values": "no such service"}
        else:
            ok, values = handler(args)
            answer = {"op": "service_response", "service": name, "result": ok, "values": values}
        if "id" in message:
            answer["id"] = message["id"]
        client.sendMessage(json.dumps(answer).encode())
