"""What flows into the controller core (events) and out of it (commands).

Adapters turn protocol messages into events and commands into protocol messages; the core sees
only these values. All are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleet.model import TransportOrder, Vehicle


class ActionKind(StrEnum):
    PICK = "pick"
    DROP = "drop"
    CHARGE = "charge"


# ---- events in ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeReached:
    """The vehicle's reference point reached `node` (VDA 5050: lastNodeId changed)."""

    vehicle_id: str
    node: str


@dataclass(frozen=True, slots=True)
class ActionFinished:
    """A load or charge action ended; `ok` False means it failed with `reason`."""

    vehicle_id: str
    action: ActionKind
    ok: bool = True
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StateReport:
    """Periodic vehicle state: pose and battery (0..1)."""

    vehicle_id: str
    x: float
    y: float
    heading: float
    battery: float


@dataclass(frozen=True, slots=True)
class DriveRejected:
    """The vehicle refused the path it was given (VDA 5050: an order error naming our order)."""

    vehicle_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The vehicle's link came up or went down (VDA 5050: connection ONLINE, OFFLINE, CONNECTIONBROKEN)."""

    vehicle_id: str
    online: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """The vehicle refused a command, reported it failed, or did not answer it in time (VDA 5050:
    an instant action FAILED, an error referencing it, or no action state): what the controller
    expected of it is undone. `command` is the protocol's name (startPause, startCharging, ...)."""

    vehicle_id: str
    command: str
    reason: str


@dataclass(frozen=True, slots=True)
class AbilitiesReported:
    """What the vehicle's factsheet says it cannot do that the controller needs of it (VDA 5050
    protocolFeatures.agvActions): e.g. "pick", "drop", "startCharging". Empty: nothing missing,
    or the factsheet does not say. `unfit`: limits this plant's messages break (string lengths),
    in words; `size`: its (width, length) in metres, when stated."""

    vehicle_id: str
    lacks: tuple[str, ...]
    unfit: tuple[str, ...] = ()
    size: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class OrderLost:
    """The vehicle no longer has the order it was driving (it restarted: VDA 5050 state with an
    empty or unknown orderId); it stands at `node` and drives nothing of it any more."""

    vehicle_id: str
    node: str


@dataclass(frozen=True, slots=True)
class VehicleMoved:
    """A vehicle holding nothing of the controller's reports standing still on another node than
    the controller's (moved by hand): it is re-placed there, if that node is free."""

    vehicle_id: str
    node: str


@dataclass(frozen=True, slots=True)
class BaseRequested:
    """The vehicle nears the end of what it was released and asks for more (VDA 5050
    newBaseRequest): whatever traffic allows now is released; what it waits for is its wait reason."""

    vehicle_id: str


@dataclass(frozen=True, slots=True)
class DriveCancelled:
    """The vehicle stopped after a `CancelDrive` at `node`, or past it on the lane to `ahead[0]`
    (VDA 5050 lets a vehicle stop at once, between nodes); nothing beyond will be driven."""

    vehicle_id: str
    node: str
    ahead: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VehicleStatus:
    """Operating mode, active errors and what the vehicle's safety system stops it for, sent when
    any changes (VDA 5050: operatingMode, errors, safetyState)."""

    vehicle_id: str
    automatic: bool
    mode: str
    errors: tuple[str, ...]
    safety_stop: str | None = None  # "e-stop (MANUAL)", "protective field violated"; None: none


@dataclass(frozen=True, slots=True)
class LoadReported:
    """The vehicle's own view of whether it carries a load changed (VDA 5050: loads in state)."""

    vehicle_id: str
    loaded: bool


@dataclass(frozen=True, slots=True)
class TransferProblem:
    """The robot cell at `station_id` failed or did not finish the transfer of the vehicle's
    pick or drop (`fleet.cells`): the vehicle holds there until the operator retries or aborts."""

    vehicle_id: str
    station_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; the core runs its timers (dispatch, deadlock check)."""


Event = (
    NodeReached
    | BaseRequested
    | ActionFinished
    | StateReport
    | DriveRejected
    | ConnectionChanged
    | DriveCancelled
    | CommandRefused
    | OrderLost
    | VehicleMoved
    | AbilitiesReported
    | VehicleStatus
    | LoadReported
    | TransferProblem
    | Tick
)


# ---- commands out ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriveNodes:
    """Extend the vehicle's released path by these nodes, in order (they follow its current end)."""

    vehicle_id: str
    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StartAction:
    """Do a load-handling or charging action where the vehicle stands.

    `place_id` is the station or charger; `until_battery` ends a charge at that state of charge.
    """

    vehicle_id: str
    action: ActionKind
    place_id: str
    order_id: str | None = None
    until_battery: float | None = None


@dataclass(frozen=True, slots=True)
class StopCharging:
    """End the vehicle's charge now (an order needs it; VDA 5050: instant action stopCharging).
    The vehicle's adapter answers with `ActionFinished` for the charge."""

    vehicle_id: str


@dataclass(frozen=True, slots=True)
class CancelDrive:
    """Stop the vehicle at the next node it can stop at and drop the rest of its path
    (VDA 5050: instant action cancelOrder). The vehicle answers with `DriveCancelled`."""

    vehicle_id: str


@dataclass(frozen=True, slots=True)
class PauseVehicle:
    """Stop where you are and hold (`paused` True) or carry on (VDA 5050: startPause / stopPause)."""

    vehicle_id: str
    paused: bool


@dataclass(frozen=True, slots=True)
class InitPosition:
    """Tell the vehicle it now stands at `node` (VDA 5050 instant action initPosition)."""

    vehicle_id: str
    node: str


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order changed state: persist it and tell subscribers."""

    order: TransportOrder


@dataclass(frozen=True, slots=True)
class VehicleChanged:
    """A vehicle's task, queue or wait reason changed."""

    vehicle: Vehicle


@dataclass(frozen=True, slots=True)
class Alarm:
    """Something an operator must see: a deadlock, an unreachable goal, a failed action."""

    code: str
    message: str
    vehicle_id: str | None = None
    order_id: str | None = None


# What a vehicle's adapter carries out; the rest of `Command` is for the shells and the operator.
VehicleCommand = DriveNodes | StartAction | StopCharging | CancelDrive | PauseVehicle | InitPosition
Command = VehicleCommand | OrderChanged | VehicleChanged | Alarm
