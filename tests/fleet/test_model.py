"""Order lifecycle: the legal path works, everything else is refused."""

from __future__ import annotations

import pytest

from fleet.model import DELIVERY_PATH, LEGAL_TRANSITIONS, IllegalTransition, OrderState, TransportOrder

HAPPY_PATH = list(DELIVERY_PATH[1:])


def new_order() -> TransportOrder:
    return TransportOrder("TO-000001", "A", "B", "rack", 0, created_at=0.0)


def test_happy_path_records_history() -> None:
    order = new_order()
    for t, state in enumerate(HAPPY_PATH, start=1):
        order = order.transition(state, float(t), vehicle_id="AGV-01")
    assert order.state is OrderState.FINISHED
    assert [h.state for h in order.history] == HAPPY_PATH
    assert order.entered(OrderState.LOADING) == 3.0
    assert order.vehicle_id == "AGV-01"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (OrderState.ACCEPTED, OrderState.LOADING),
        (OrderState.ACCEPTED, OrderState.FINISHED),
        (OrderState.TO_PICKUP, OrderState.UNLOADING),
        (OrderState.LOADING, OrderState.ASSIGNED),
        (OrderState.FINISHED, OrderState.CANCELLED),
        (OrderState.CANCELLED, OrderState.ASSIGNED),
        (OrderState.FAILED, OrderState.ACCEPTED),
    ],
)
def test_illegal_transitions_are_refused(start: OrderState, target: OrderState) -> None:
    order = new_order()
    path = {
        OrderState.ACCEPTED: [],
        OrderState.TO_PICKUP: HAPPY_PATH[:2],
        OrderState.LOADING: HAPPY_PATH[:3],
        OrderState.FINISHED: HAPPY_PATH,
        OrderState.CANCELLED: [OrderState.CANCELLED],
        OrderState.FAILED: [OrderState.FAILED],
    }[start]
    for state in path:
        order = order.transition(state, 1.0, vehicle_id="AGV-01")
    with pytest.raises(IllegalTransition, match=f"{start.value} -> {target.value}"):
        order.transition(target, 2.0)


def test_terminal_states_have_no_exit() -> None:
    for state in OrderState:
        assert (not LEGAL_TRANSITIONS[state]) == state.terminal


def test_withdrawal_clears_the_vehicle() -> None:
    order = new_order().transition(OrderState.ASSIGNED, 1.0, vehicle_id="AGV-01")
    order = order.transition(OrderState.ACCEPTED, 2.0, reason="withdrawn by dispatcher")
    assert order.vehicle_id is None and order.reason == "withdrawn by dispatcher"


def test_same_station_order_is_invalid() -> None:
    with pytest.raises(ValueError, match="same station"):
        TransportOrder("TO-1", "A", "A", "rack", 0, 0.0)
