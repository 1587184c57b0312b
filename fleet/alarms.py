"""The alarm board and the journal: what the core tells the operator, sorted as ISA-18.2 sorts it.

The core emits `Alarm` commands by code; the catalogue here says what each code is:
- an **alarm** with a severity (critical, high, medium, low), raised once per condition: while
  one is open, the same code for the same vehicle and order (and, for vehicle errors, the same
  error) only counts up (`count`, `last_raised_at`), it never makes a second alarm;
- a **condition** alarm is active until the event that ends it (`vehicle-offline` until
  `vehicle-online`); acknowledging it marks it seen and it stays listed while active; once
  cleared and acknowledged it is closed. Any other alarm closes when acknowledged (it is latched);
- an **event** (a lane opened, the admission limit changed, a deadlock broken) is no alarm: it
  goes to the journal (the event log), and may end a condition.
An operator may shelve an open alarm for a while: it leaves the open list (the count of shelved
ones stays visible) and comes back when the time is up, if it is still open.

Kept by the service; the newest `capacity` alarms and journal entries are held (closed alarms go first).
Concurrency contract: written and read on the controller's asyncio loop only.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, replace

from fleet.events import Alarm

SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True, slots=True)
class Kind:
    """What one code is: an alarm of a severity, or an event (severity None) that may end conditions."""

    severity: str | None
    until_cleared: bool = False  # a condition: active until an event clears it
    per_message: bool = False  # one condition per message (one vehicle, several errors)
    clears: str | None = None  # for an event: the condition it ends, for the same vehicle and order


CATALOGUE: dict[str, Kind] = {
    "deadlock": Kind("critical"),
    "position-conflict": Kind("critical"),
    "vehicle-error": Kind("high", until_cleared=True, per_message=True),
    "vehicle-safety-stop": Kind("high", until_cleared=True),
    "vehicle-offline": Kind("high", until_cleared=True),
    "vehicle-quarantined": Kind("high", until_cleared=True),
    "dispatch-failed": Kind("high", until_cleared=True),
    "unjam-failed": Kind("high", until_cleared=True),
    "order-quarantined": Kind("high"),
    "transfer-failed": Kind("high"),
    "action-failed": Kind("high"),
    "load-mismatch": Kind("high", until_cleared=True),
    "blocked-by-closure": Kind("medium", until_cleared=True),
    "order-lost": Kind("medium"),
    "command-refused": Kind("medium"),
    "drive-rejected": Kind("medium"),
    "unservable-order": Kind("medium"),
    "vehicle-lacks": Kind("medium"),
    "vehicle-unfit": Kind("medium"),
    "dispatch-solver": Kind("low"),
    "unexpected-action": Kind("low"),
    "vehicle-error-cleared": Kind(None, clears="vehicle-error"),
    "vehicle-safety-cleared": Kind(None, clears="vehicle-safety-stop"),
    "vehicle-online": Kind(None, clears="vehicle-offline"),
    "vehicle-in-service": Kind(None, clears="vehicle-quarantined"),
    "dispatch-recovered": Kind(None, clears="dispatch-failed"),
    "unjam-recovered": Kind(None, clears="unjam-failed"),
    "blocked-by-closure-cleared": Kind(None, clears="blocked-by-closure"),
    "load-mismatch-resolved": Kind(None, clears="load-mismatch"),
    **{
        code: Kind(None)
        for code in (
            "deadlock-resolved",
            "vehicle-moved",
            "map-activated",
            "fleet-paused",
            "fleet-resumed",
            "admission-changed",
            "lane-closed",
            "lane-opened",
            "zone-closed",
            "zone-opened",
        )
    },
}
UNKNOWN = Kind("medium")  # a code not catalogued yet is an alarm: better seen than lost


def kind_of(code: str) -> Kind:
    return CATALOGUE.get(code, UNKNOWN)


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    id: int
    code: str
    severity: str
    message: str
    vehicle_id: str | None
    order_id: str | None
    raised_at: float
    count: int = 1
    last_raised_at: float | None = None
    cleared_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    shelved_until: float | None = None
    shelved_by: str | None = None

    @property
    def active(self) -> bool:
        """The condition still holds (a latched alarm is active until acknowledged)."""
        return self.cleared_at is None

    @property
    def open(self) -> bool:
        """Still on the list: active, or cleared but not acknowledged yet."""
        return self.active or self.acknowledged_at is None

    def shelved(self, now: float) -> bool:
        return self.shelved_until is not None and now < self.shelved_until

    @property
    def state(self) -> str:
        """ISA-18.2's states: active or cleared, acknowledged or not."""
        seen = "acknowledged" if self.acknowledged_at is not None else "unacknowledged"
        return f"{'active' if self.active else 'cleared'}-{seen}"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An entry of the journal: something that happened that needs nobody to act."""

    id: int
    code: str
    message: str
    vehicle_id: str | None
    order_id: str | None
    at: float


Key = tuple[str, str | None, str | None, str | None]


def _key(code: str, alarm: Alarm | RaisedAlarm) -> Key:
    return (code, alarm.vehicle_id, alarm.order_id, alarm.message if kind_of(code).per_message else None)


class AlarmBoard:
    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._alarms: OrderedDict[int, RaisedAlarm] = OrderedDict()
        self._open: dict[Key, int] = {}  # the open alarm of each condition
        self._journal: deque[JournalEntry] = deque(maxlen=capacity)
        self._next = 1
        self._next_entry = 1

    def take(self, alarm: Alarm, now: float) -> list[RaisedAlarm | JournalEntry]:
        """Take what the core raised; what changed: a new alarm; or a journal entry, after the
        alarm it cleared if it ended a condition; or nothing, when an open alarm of the same
        condition took it (counted there)."""
        kind = kind_of(alarm.code)
        if kind.severity is None:
            event = JournalEntry(self._next_entry, alarm.code, alarm.message, alarm.vehicle_id, alarm.order_id, now)
            self._next_entry += 1
            self._journal.append(event)
            cleared = self._clear(_key(kind.clears, alarm), now) if kind.clears is not None else None
            return [event] if cleared is None else [cleared, event]
        key = _key(alarm.code, alarm)
        if key in self._open:
            held = self._alarms[self._open[key]]
            again = replace(held, count=held.count + 1, last_raised_at=now, message=alarm.message, cleared_at=None)
            self._alarms[held.id] = again
            return [] if held.active else [again]  # a cleared condition that holds again is active again
        raised = RaisedAlarm(
            self._next, alarm.code, kind.severity, alarm.message, alarm.vehicle_id, alarm.order_id, now
        )
        self._next += 1
        self._alarms[raised.id] = raised
        self._open[key] = raised.id
        self._evict()
        return [raised]

    def _clear(self, key: Key, now: float) -> RaisedAlarm | None:
        alarm_id = self._open.get(key)
        if alarm_id is None or not self._alarms[alarm_id].active:
            return None
        alarm = self._alarms[alarm_id] = replace(self._alarms[alarm_id], cleared_at=now)
        if not alarm.open:
            del self._open[key]
        return alarm

    def acknowledge(self, alarm_id: int, by: str, now: float) -> RaisedAlarm:
        """Mark the alarm seen; KeyError if there is no such alarm (any more). A latched alarm
        closes; a condition stays active until it clears. Acknowledging twice keeps the first."""
        alarm = self._alarms[alarm_id]
        if alarm.acknowledged_at is None:
            latched = not kind_of(alarm.code).until_cleared
            cleared_at = now if latched and alarm.active else alarm.cleared_at
            alarm = replace(alarm, acknowledged_by=by, acknowledged_at=now, cleared_at=cleared_at)
            self._alarms[alarm_id] = alarm
            if not alarm.open:
                self._forget(alarm)
        return alarm

    def shelve(self, alarm_id: int, by: str, until: float | None) -> RaisedAlarm:
        """Shelve an alarm until `until` (None: unshelve it); KeyError if there is no such alarm."""
        alarm = self._alarms[alarm_id] = replace(
            self._alarms[alarm_id], shelved_until=until, shelved_by=by if until is not None else None
        )
        return alarm

    def newest_first(self, open_only: bool = False, now: float | None = None) -> list[RaisedAlarm]:
        """Every alarm held, or (`open_only`) those open and not shelved at `now`."""
        alarms = reversed(self._alarms.values())
        if not open_only:
            return list(alarms)
        return [a for a in alarms if a.open and (now is None or not a.shelved(now))]

    def summary(self, now: float) -> dict[str, int]:
        """Open alarms by severity, and how many are shelved."""
        counts = dict.fromkeys((*SEVERITIES, "shelved", "unacknowledged"), 0)
        for alarm in self._alarms.values():
            if not alarm.open:
                continue
            if alarm.shelved(now):
                counts["shelved"] += 1
                continue
            counts[alarm.severity] += 1
            counts["unacknowledged"] += alarm.acknowledged_at is None
        return counts

    def journal(self, limit: int) -> list[JournalEntry]:
        return list(reversed(self._journal))[:limit]

    def _evict(self) -> None:
        while len(self._alarms) > self._capacity:
            closed = next((i for i, a in self._alarms.items() if not a.open), None)
            victim = closed if closed is not None else next(iter(self._alarms))
            self._forget(self._alarms.pop(victim))

    def _forget(self, alarm: RaisedAlarm) -> None:
        """Its condition has no open alarm any more (the key is the alarm's own: a per-message
        code's message never changes while it is open)."""
        key = _key(alarm.code, alarm)
        if self._open.get(key) == alarm.id:
            del self._open[key]
