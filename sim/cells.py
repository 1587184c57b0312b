"""Robot cells simulated in-process, for `fleet-sim shift` and `fleet-sim demo`: the same transport-free
handshake (`fleet.cells.CellHandshake`) the ROS gateway drives, with a cell that answers each
request at once and reports the transfer done (or failed, at the configured rate) after its
transfer time. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fleet.cells import CellHandshake, CellRequest, CellStatus, split_transfers
from fleet.events import Command, Event


@dataclass(frozen=True, slots=True)
class CellBehaviour:
    transfer_s: float = 20.0
    failure_rate: float = 0.0  # share of transfers that fail ("failed: simulated jam")
    timeout_s: float = 120.0


class SimulatedCells:
    """The cells of some stations; takes the picks and drops there out of the vehicles' hands."""

    def __init__(self, stations: list[str], behaviour: CellBehaviour, seed: int = 1) -> None:
        self.behaviour = behaviour
        self.cells = {s: CellHandshake(s, behaviour.timeout_s) for s in stations}
        self._rng = random.Random(seed)
        self._due: list[tuple[float, str, CellStatus]] = []  # (when, station, what the cell will say)
        self._events: list[Event] = []
        self._count = 0
        self._now = 0.0

    def apply(self, commands: list[Command], now: float) -> list[Command]:
        """Picks and drops at cell stations start a transfer; the other commands are returned."""
        requests, rest = split_transfers(commands, self.cells, now)
        for request in requests:
            self._start(request, now)
        return rest

    def step(self, now: float) -> list[Event]:
        """What the cells said up to `now`, and their timeouts."""
        self._now = now
        due = [d for d in self._due if d[0] <= now]
        self._due = [d for d in self._due if d[0] > now]
        events, self._events = self._events, []
        for _, station, status in due:
            events += self.cells[station].on_status(status, now)
        for cell in self.cells.values():
            events += cell.tick(now)
        return events

    def retry_transfer(self, station_id: str) -> None:
        self._start(self.cells[station_id].retry(self._now), self._now)

    def abort_transfer(self, station_id: str, by: str) -> None:
        self._events += self.cells[station_id].abort(by)

    def _start(self, request: CellRequest, now: float) -> None:
        self._count += 1
        transfer = f"T-{self._count}"
        cell = self.cells[request.station_id]
        self._events += cell.on_answer(True, transfer, now)
        failed = self._rng.random() < self.behaviour.failure_rate
        status = CellStatus("failed", transfer, "simulated jam") if failed else CellStatus("done", transfer)
        self._due.append((now + self.behaviour.transfer_s, request.station_id, status))
