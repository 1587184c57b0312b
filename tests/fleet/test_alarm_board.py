"""The alarm board on its own: one alarm per condition, closing by acknowledgement or clearing,
and a bounded list that keeps its conditions straight when it evicts."""

from __future__ import annotations

from fleet.alarms import AlarmBoard, JournalEntry, RaisedAlarm
from fleet.events import Alarm


def _raised(items: list[RaisedAlarm | JournalEntry]) -> RaisedAlarm:
    (alarm,) = [i for i in items if isinstance(i, RaisedAlarm)]
    return alarm


def test_a_repeated_condition_counts_on_its_open_alarm() -> None:
    """The same condition raised three times is one alarm with a count of three."""
    board = AlarmBoard()
    first = _raised(board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 1.0))
    assert board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 2.0) == []
    assert board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 3.0) == []
    (held,) = board.newest_first(open_only=True)
    assert (held.id, held.count, held.last_raised_at) == (first.id, 3, 3.0)


def test_an_acknowledged_latched_alarm_closes_and_the_next_raise_opens_a_new_one() -> None:
    """Acknowledging a latched alarm closes it: the condition raised again is a new alarm."""
    board = AlarmBoard()
    first = _raised(board.take(Alarm("action-failed", "pick failed", "AGV-1", "O-1"), 1.0))
    closed = board.acknowledge(first.id, "op", 2.0)
    assert not closed.open
    second = _raised(board.take(Alarm("action-failed", "pick failed", "AGV-1", "O-1"), 3.0))
    assert second.id != first.id
    assert [a.id for a in board.newest_first(open_only=True)] == [second.id]


def test_a_condition_stays_open_after_acknowledgement_until_it_clears() -> None:
    """An acknowledged condition stays active (and counts repeats) until its clearing event."""
    board = AlarmBoard()
    offline = _raised(board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 1.0))
    board.acknowledge(offline.id, "op", 2.0)
    assert board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 3.0) == []
    cleared, event = board.take(Alarm("vehicle-online", "AGV-1 is online", "AGV-1"), 4.0)
    assert isinstance(cleared, RaisedAlarm) and isinstance(event, JournalEntry)
    assert (cleared.id, cleared.count, cleared.open) == (offline.id, 2, False)
    assert board.newest_first(open_only=True) == []


def test_eviction_forgets_the_evicted_condition() -> None:
    """A full board evicts closed alarms first, then the oldest; an evicted condition raised
    again is a new alarm, not a count on one no longer listed."""
    board = AlarmBoard(capacity=2)
    a = _raised(board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 1.0))
    b = _raised(board.take(Alarm("vehicle-offline", "AGV-2 is offline", "AGV-2"), 2.0))
    c = _raised(board.take(Alarm("vehicle-offline", "AGV-3 is offline", "AGV-3"), 3.0))
    assert [x.id for x in board.newest_first()] == [c.id, b.id]
    again = _raised(board.take(Alarm("vehicle-offline", "AGV-1 is offline", "AGV-1"), 4.0))
    assert again.id not in (a.id, b.id, c.id) and again.count == 1
    board.acknowledge(c.id, "op", 5.0)  # c stays open (a condition) and is the oldest
    d = _raised(board.take(Alarm("order-lost", "lost", "AGV-4"), 6.0))
    assert [x.id for x in board.newest_first()] == [d.id, again.id]
