"""The change log clients follow: order, vehicle, wait-reason and alarm changes, numbered.

Each event has a sequence number; a client that reconnects asks for the events after the last
number it saw and misses nothing, as long as those events are still held (the newest `capacity`).
If they are not, or the controller restarted (a new `stream` id), the client gets a `resync`
event and reloads the state through the API.

Concurrency contract: written and read on the controller's asyncio loop only.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    seq: int
    kind: str  # order, vehicle, wait, alarm, journal, resync
    data: dict[str, Any]

    def as_dict(self, stream: str) -> dict[str, Any]:
        return {"seq": self.seq, "stream": stream, "kind": self.kind, "data": self.data}


class EventLog:
    def __init__(self, capacity: int = 10_000) -> None:
        self.stream = uuid.uuid4().hex[:12]
        self._events: deque[LoggedEvent] = deque(maxlen=capacity)
        self._seq = 0

    @property
    def last_seq(self) -> int:
        return self._seq

    def append(self, kind: str, data: dict[str, Any]) -> int:
        self._seq += 1
        self._events.append(LoggedEvent(self._seq, kind, data))
        return self._seq

    def since(self, after: int, stream: str | None = None) -> list[LoggedEvent]:
        """Events after `after`; a `resync` first when some of them are gone or the stream changed."""
        oldest = self._events[0].seq if self._events else self._seq + 1
        if (stream is not None and stream != self.stream) or after > self._seq or after < oldest - 1:
            resync = LoggedEvent(self._seq, "resync", {"reason": "reload the state; events were missed"})
            return [resync, *(e for e in self._events if e.seq > self._seq)]
        return [e for e in self._events if e.seq > after]
