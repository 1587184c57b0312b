"""Robot cells: the handshake that makes a vehicle wait at a station until the cell serving it
has confirmed its transfer.

A station can be served by a cell (an arm that loads and unloads carts at a line). When the
core starts a pick or drop there, the transfer is the cell's to do, not the vehicle's: the
cell is asked to transfer, its status is followed until it reports done or failed (or a
timeout passes), and only then does the core hear that the action finished and let the
vehicle leave. A failed or timed-out transfer raises an alarm and holds the vehicle where it is
with the load where it really is, until the operator retries or aborts.

Pure logic, no transport: `CellHandshake` takes what the cell said (the answer to the
request, status texts) and the time, and returns what to send (`CellRequest`) and core events.
The rosbridge adapter (`fleet.ros.gateway`) carries it over ROS 2 (a std_srvs/Trigger service
and a std_msgs/String status topic); a cell over MQTT would carry the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from fleet.events import ActionFinished, ActionKind, Command, Event, StartAction, TransferProblem


class TransferState(StrEnum):
    REQUESTED = "requested"  # asked, the cell has not answered the request yet
    RUNNING = "running"  # the cell took the request and works on it
    DONE = "done"
    FAILED = "failed"  # the cell refused or failed; waits for the operator
    TIMED_OUT = "timed_out"  # no done within the timeout; waits for the operator


@dataclass(frozen=True, slots=True)
class CellRequest:
    """Ask the cell at `station_id` to load a vehicle (`PICK`: material onto it) or unload it."""

    station_id: str
    action: ActionKind
    attempt: int


@dataclass(frozen=True, slots=True)
class CellStatus:
    """One status report of a cell: its state word, the transfer it refers to (if the cell
    names one) and a reason for a failure."""

    state: str
    transfer_id: str | None = None
    reason: str | None = None


def parse_cell_status(text: str) -> CellStatus:
    """A cell's status text: `"<state>"`, `"<state>: <reason>"`, or the same prefixed by the
    transfer id the cell gave in its answer (`"T-17 failed: gripper jam"`). States: idle,
    running, done, failed (any other word is kept and ignored by the handshake)."""
    head, _, reason = text.strip().partition(":")
    words = head.split()
    if not words:
        return CellStatus("")
    state = words[-1].lower()
    transfer_id = " ".join(words[:-1]) or None
    return CellStatus(state, transfer_id, reason.strip() or None)


@dataclass
class _Transfer:
    vehicle_id: str
    action: ActionKind
    requested_at: float
    attempt: int
    state: TransferState = TransferState.REQUESTED
    transfer_id: str | None = None
    reason: str | None = None


class CellHandshake:
    """The handshake of one cell, one transfer at a time."""

    def __init__(self, station_id: str, timeout_s: float = 120.0) -> None:
        self.station_id = station_id
        self.timeout_s = timeout_s
        self._transfer: _Transfer | None = None

    @property
    def state(self) -> TransferState | None:
        return self._transfer.state if self._transfer else None

    @property
    def vehicle_id(self) -> str | None:
        return self._transfer.vehicle_id if self._transfer else None

    @property
    def waiting_for_operator(self) -> bool:
        return self._transfer is not None and self._transfer.state in (TransferState.FAILED, TransferState.TIMED_OUT)

    def request(self, vehicle_id: str, action: ActionKind, now: float) -> CellRequest:
        """A vehicle stands at the station and its pick or drop starts: ask the cell."""
        if action not in (ActionKind.PICK, ActionKind.DROP):
            raise ValueError(f"cell {self.station_id}: a cell loads or unloads, it does not {action.value}")
        if self._transfer is not None and self._transfer.state is not TransferState.DONE:
            raise ValueError(f"cell {self.station_id} is busy with {self._transfer.vehicle_id}")
        self._transfer = _Transfer(vehicle_id, action, now, attempt=1)
        return CellRequest(self.station_id, action, 1)

    def on_answer(self, accepted: bool, message: str, now: float) -> list[Event]:
        """The cell's answer to the request (std_srvs/Trigger: success, message). On acceptance
        the message, if any, is the transfer id its status reports will name."""
        t = self._transfer
        if t is None or t.state is not TransferState.REQUESTED:
            return []
        if not accepted:
            return self._fail(
                TransferState.FAILED, f"cell {self.station_id} refused the transfer: {message or 'no reason'}"
            )
        t.state, t.transfer_id = TransferState.RUNNING, message.strip() or None
        return []

    def on_status(self, status: CellStatus, now: float) -> list[Event]:
        """A status report. Only one naming this transfer counts (when the cell gave an id), and
        only after the cell took the request, so a `done` left over from the previous transfer
        lets no vehicle go."""
        t = self._transfer
        if t is None or t.state is not TransferState.RUNNING:
            return []
        if t.transfer_id is not None and status.transfer_id != t.transfer_id:
            return []
        if status.state == "done":
            t.state = TransferState.DONE
            return [ActionFinished(t.vehicle_id, t.action)]
        if status.state == "failed":
            return self._fail(
                TransferState.FAILED, f"cell {self.station_id} failed the transfer: {status.reason or 'no reason'}"
            )
        return []

    def on_unreachable(self, reason: str) -> list[Event]:
        """The request could not be delivered (bridge down, service missing)."""
        t = self._transfer
        if t is None or t.state is not TransferState.REQUESTED:
            return []
        return self._fail(TransferState.FAILED, f"cell {self.station_id} not reached: {reason}")

    def tick(self, now: float) -> list[Event]:
        t = self._transfer
        if t is None or t.state not in (TransferState.REQUESTED, TransferState.RUNNING):
            return []
        if now - t.requested_at < self.timeout_s:
            return []
        return self._fail(
            TransferState.TIMED_OUT, f"cell {self.station_id}: no transfer done within {self.timeout_s:.0f} s"
        )

    def retry(self, now: float) -> CellRequest:
        """The operator asks the cell again (after a failure or timeout)."""
        t = self._transfer
        if t is None or not self.waiting_for_operator:
            raise ValueError(f"cell {self.station_id} has no failed transfer to retry")
        t.state, t.requested_at, t.attempt, t.transfer_id, t.reason = (
            TransferState.REQUESTED,
            now,
            t.attempt + 1,
            None,
            None,
        )
        return CellRequest(self.station_id, t.action, t.attempt)

    def abort(self, by: str) -> list[Event]:
        """The operator gives the transfer up: the vehicle's action fails (the core fails the
        order, and the load stays where it is: at the station for a load, on the vehicle for an
        unload)."""
        t = self._transfer
        if t is None or not self.waiting_for_operator:
            raise ValueError(f"cell {self.station_id} has no failed transfer to abort")
        self._transfer = None
        reason = f"transfer at {self.station_id} aborted by {by} after: {t.reason}"
        return [ActionFinished(t.vehicle_id, t.action, ok=False, reason=reason)]

    def _fail(self, state: TransferState, reason: str) -> list[Event]:
        t = self._transfer
        assert t is not None
        t.state, t.reason = state, reason
        return [TransferProblem(t.vehicle_id, self.station_id, reason)]


def split_transfers(
    commands: list[Command], cells: Mapping[str, CellHandshake], now: float
) -> tuple[list[CellRequest], list[Command]]:
    """Picks and drops at stations a cell serves become transfer requests to that cell (the
    cell does them, not the vehicle); every other command is returned for the vehicles."""
    requests: list[CellRequest] = []
    rest: list[Command] = []
    for cmd in commands:
        if isinstance(cmd, StartAction) and cmd.place_id in cells and cmd.action is not ActionKind.CHARGE:
            requests.append(cells[cmd.place_id].request(cmd.vehicle_id, cmd.action, now))
        else:
            rest.append(cmd)
    return requests, rest
