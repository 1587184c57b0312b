"""The robot-cell handshake, without any transport: the vehicle's action finishes only when the
cell says done; refusals, failures and timeouts hold the vehicle for the operator, who retries
or aborts."""

from __future__ import annotations

import pytest

from fleet.cells import CellHandshake, CellStatus, TransferState, parse_cell_status
from fleet.events import ActionFinished, ActionKind, TransferProblem


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("done", CellStatus("done")),
        ("  RUNNING ", CellStatus("running")),
        ("failed: gripper jam", CellStatus("failed", None, "gripper jam")),
        ("T-17 done", CellStatus("done", "T-17")),
        ("T-17 failed: no part", CellStatus("failed", "T-17", "no part")),
        ("", CellStatus("")),
    ],
)
def test_status_texts(text: str, status: CellStatus) -> None:
    assert parse_cell_status(text) == status


def test_the_vehicle_goes_only_when_the_cell_says_done() -> None:
    cell = CellHandshake("ST-A", timeout_s=60)
    request = cell.request("AGV-01", ActionKind.PICK, now=0.0)
    assert (request.station_id, request.action, request.attempt) == ("ST-A", ActionKind.PICK, 1)
    assert cell.on_status(parse_cell_status("done"), 0.5) == [], "a done before the cell took the request is stale"
    assert cell.on_answer(True, "", 1.0) == []
    assert cell.on_status(parse_cell_status("running"), 2.0) == []
    assert cell.on_status(parse_cell_status("done"), 3.0) == [ActionFinished("AGV-01", ActionKind.PICK)]
    assert cell.state is TransferState.DONE
    assert cell.on_status(parse_cell_status("done"), 4.0) == [], "reported once"


def test_a_cell_that_names_its_transfer_is_heard_only_about_it() -> None:
    cell = CellHandshake("ST-A")
    cell.request("AGV-01", ActionKind.DROP, now=0.0)
    cell.on_answer(True, "T-18", 0.1)
    assert cell.on_status(parse_cell_status("T-17 done"), 0.2) == []
    assert cell.on_status(parse_cell_status("T-18 done"), 0.3) == [ActionFinished("AGV-01", ActionKind.DROP)]


@pytest.mark.parametrize("how", ["refused", "failed", "timed out", "unreachable"])
def test_problems_hold_the_vehicle_until_retry_or_abort(how: str) -> None:
    cell = CellHandshake("ST-A", timeout_s=60)
    cell.request("AGV-01", ActionKind.PICK, now=0.0)
    if how == "refused":
        events = cell.on_answer(False, "door open", 1.0)
    elif how == "unreachable":
        events = cell.on_unreachable("bridge down")
    else:
        assert cell.on_answer(True, "", 1.0) == []
        events = (
            cell.on_status(parse_cell_status("failed: gripper jam"), 2.0)
            if how == "failed"
            else cell.tick(59.0) + cell.tick(60.0)
        )
    assert len(events) == 1 and isinstance(events[0], TransferProblem)
    assert events[0].vehicle_id == "AGV-01" and events[0].station_id == "ST-A"
    assert cell.waiting_for_operator
    assert cell.tick(500.0) == [], "no second alarm while the operator decides"
    with pytest.raises(ValueError, match="busy"):
        cell.request("AGV-02", ActionKind.PICK, now=3.0)
    again = cell.retry(100.0)
    assert again.attempt == 2 and cell.state is TransferState.REQUESTED
    cell.on_answer(True, "", 101.0)
    assert cell.on_status(parse_cell_status("failed: still jammed"), 102.0)
    (aborted,) = cell.abort("operator")
    assert aborted == ActionFinished("AGV-01", ActionKind.PICK, ok=False, reason=aborted.reason)
    assert aborted.reason is not None and "still jammed" in aborted.reason and "operator" in aborted.reason
    assert cell.state is None
    cell.request("AGV-02", ActionKind.PICK, now=200.0)  # free again


def test_retry_and_abort_need_a_failed_transfer_and_cells_do_not_charge() -> None:
    cell = CellHandshake("ST-A")
    with pytest.raises(ValueError, match="retry"):
        cell.retry(0.0)
    cell.request("AGV-01", ActionKind.PICK, now=0.0)
    with pytest.raises(ValueError, match="abort"):
        cell.abort("operator")
    with pytest.raises(ValueError, match="charge"):
        CellHandshake("ST-B").request("AGV-01", ActionKind.CHARGE, now=0.0)
