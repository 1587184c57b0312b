"""The alarm board: every alarm the core raised, numbered and timed, until an operator
acknowledges it. Kept by the service (the core only raises alarms); the newest `capacity` are
held.

Concurrency contract: written and read on the controller's asyncio loop only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from fleet.events import Alarm


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    id: int
    code: str
    message: str
    vehicle_id: str | None
    order_id: str | None
    raised_at: float
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None


class AlarmBoard:
    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._alarms: OrderedDict[int, RaisedAlarm] = OrderedDict()
        self._next = 1

    def raise_alarm(self, alarm: Alarm, now: float) -> RaisedAlarm:
        raised = RaisedAlarm(self._next, alarm.code, alarm.message, alarm.vehicle_id, alarm.order_id, now)
        self._next += 1
        self._alarms[raised.id] = raised
        while len(self._alarms) > self._capacity:
            self._alarms.popitem(last=False)
        return raised

    def acknowledge(self, alarm_id: int, by: str, now: float) -> RaisedAlarm:
        """Mark the alarm seen; KeyError if there is no such alarm (any more). Acknowledging
        twice keeps the first acknowledgement."""
        alarm = self._alarms[alarm_id]
        if alarm.open:
            alarm = self._alarms[alarm_id] = replace(alarm, acknowledged_by=by, acknowledged_at=now)
        return alarm

    def newest_first(self, open_only: bool = False) -> list[RaisedAlarm]:
        return [a for a in reversed(self._alarms.values()) if a.open or not open_only]
