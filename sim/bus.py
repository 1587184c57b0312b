"""An in-process message bus with the MQTT semantics the VDA 5050 code relies on: topic filters
with + and #, retained messages delivered on subscribe, a last will published when a client
drops without saying goodbye. Messages are queued and delivered by `pump`, in publish order, so
no handler ever runs inside another (the controller core keeps a single writer).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet.vda5050.master import Outgoing

Handler = Callable[[str, bytes], None]


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching: '+' one level, '#' the rest."""
    p_parts, t_parts = pattern.split("/"), topic.split("/")
    for i, p in enumerate(p_parts):
        if p == "#":
            return True
        if i >= len(t_parts) or (p != "+" and p != t_parts[i]):
            return False
    return len(p_parts) == len(t_parts)


@dataclass
class _Client:
    subscriptions: list[tuple[str, Handler]] = field(default_factory=list)
    will: Outgoing | None = None


class InProcessBus:
    def __init__(self) -> None:
        self._clients: dict[str, _Client] = {}
        self._retained: dict[str, bytes] = {}
        self._queue: deque[tuple[str, bytes]] = deque()
        self.delivered = 0

    def connect(
        self, client_id: str, will: Outgoing | None = None, on_connect: Callable[[], list[Outgoing]] | None = None
    ) -> None:
        self._clients[client_id] = _Client(will=will)
        for message in on_connect() if on_connect else []:
            self.publish(message)

    def disconnect(self, client_id: str, clean: bool = True) -> None:
        client = self._clients.pop(client_id, None)
        if client is not None and not clean and client.will is not None:
            self.publish(client.will)

    def subscribe(self, client_id: str, pattern: str, handler: Handler, snapshot: bool = False) -> None:
        """`snapshot` is for buses that can fall behind (MQTT); this one delivers each message at
        the next pump, so nothing piles up to skip."""
        self._clients[client_id].subscriptions.append((pattern, handler))
        for topic, payload in self._retained.items():
            if topic_matches(pattern, topic):
                self._queue.append((topic, payload))

    def publish(self, message: Outgoing, client_id: str = "controller") -> None:
        if message.retain:
            self._retained[message.topic] = message.payload
        self._queue.append((message.topic, message.payload))

    def pump(self) -> None:
        while self._queue:
            topic, payload = self._queue.popleft()
            for client in list(self._clients.values()):
                for pattern, handler in client.subscriptions:
                    if topic_matches(pattern, topic):
                        self.delivered += 1
                        handler(topic, payload)
