"""The site lease on real PostgreSQL (the run's own cluster) and SQLite: one holder at a time,
the token one higher at every takeover, a holder's right to act ends by its own clock before the
lease expires in the database, and a fenced controller can write nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.lease import SAFETY, Fenced, Lease, wait_until_held
from fleet.model import Transition, TransportOrder
from fleet.storage import OrderStore
from tests.storage_targets import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrderStore]:
    with database(request.param, tmp_path) as where:
        opened = OrderStore(where)
        yield opened
        opened.close()


def _order(number: int) -> TransportOrder:
    from fleet.model import OrderState

    return TransportOrder(
        f"TO-{number:06d}", "ST-A", "ST-B", "rack", 2, 1.0, history=(Transition(1.0, OrderState.ACCEPTED),)
    )


def test_one_holder_at_a_time_and_a_takeover_fences_the_old_one(store: OrderStore) -> None:
    clock = [0.0]
    active = Lease(store.engine, "plant-1", "a", ttl_s=1.0, monotonic=lambda: clock[0])
    standby = Lease(store.engine, "plant-1", "b", ttl_s=1.0)
    other_site = Lease(store.engine, "plant-2", "c", ttl_s=1.0)
    assert active.acquire() and active.token == 1 and active.valid
    assert not standby.acquire() and standby.token is None, "held by another"
    assert other_site.acquire() and other_site.token == 1, "each site has its own lease"
    assert active.renew() and active.token == 1, "renewing keeps the token"
    clock[0] += SAFETY * 1.0 + 0.01
    assert not active.valid, "unrenewed, its right to act ends by its own clock"
    time.sleep(1.1)  # the database's expiry comes later than that
    assert standby.acquire() and standby.token == 2, "taken over with the next token"
    assert not active.renew(), "the old holder cannot renew a lease taken over"
    store.fence = active.fence
    with pytest.raises(Fenced, match="taken over"):
        store.save(_order(1), 1.0)
    store.fence = standby.fence
    store.save(_order(2), 1.0)
    assert store.get("TO-000001") is None and store.get("TO-000002") is not None
    standby.release()
    assert not standby.valid
    assert active.acquire() and active.token == 3, "after a clean release the other takes over at once"


def test_a_standby_waits_until_the_lease_is_free(store: OrderStore) -> None:
    holder = Lease(store.engine, "plant-1", "a", ttl_s=1.0)
    assert holder.acquire()
    standby = Lease(store.engine, "plant-1", "b", ttl_s=1.0)
    seen: list[str | None] = []
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            holder.release()

    wait_until_held(standby, lambda state: seen.append(state.holder if state else None), nap)
    assert standby.token == 2 and seen == ["a"], "told once who holds it"
    assert naps == [0.25, 0.25, 0.25]


def test_a_lease_run_out_while_nobody_took_it_is_taken_again_with_the_next_token(store: OrderStore) -> None:
    """A controller whose start-up outlasted the ttl renews by taking the lease again: the token
    moves on, so anything it wrote under the old one would be fenced."""
    lease = Lease(store.engine, "plant-1", "a", ttl_s=1.0)
    assert lease.acquire() and lease.token == 1
    time.sleep(1.1)
    assert lease.renew() and lease.token == 2 and lease.valid
