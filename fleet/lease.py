"""One active controller per site: a lease in the shared database with a fencing token.

Two `fleet serve` processes of one site on one PostgreSQL: the one holding the lease is active,
the other waits (standby) and takes the lease over once it has expired, with the token one
higher. The active renews it every `ttl_s / 4`; its own right to act ends earlier than the
lease does in the database, by its own monotonic clock: `valid` is true only until
`ttl_s * SAFETY` after the start of the last renewal that succeeded. So a process frozen
(SIGSTOP), cut off from the database or just slow knows, without asking anybody, that it must
not send anything any more, before a standby may take over; and every storage transaction it
still makes checks its token first (`fence`), so a stale process cannot write either.

Times in the database are the database's own clock (PostgreSQL's `clock_timestamp()`), so two
machines' clocks need not agree. With SQLite (one machine) it is this machine's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from fleet.migrations import LEASES

SAFETY = 0.8  # of the ttl: the margin for clocks that run at slightly different rates


class Fenced(RuntimeError):
    """A write by a controller that no longer holds its site's lease."""


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The lease as the database has it."""

    holder: str
    token: int
    expires_at: float
    now: float  # the database's clock when read

    @property
    def expired(self) -> bool:
        return self.expires_at <= self.now


def _db_now(conn: Connection) -> float:
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
    return time.time()


class Lease:
    """This process's claim on `site`; `holder` names the process (host, pid, a random part)."""

    def __init__(
        self,
        engine: Engine,
        site: str,
        holder: str,
        ttl_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.site, self.holder, self.ttl_s = engine, site, holder, ttl_s
        self._monotonic = monotonic
        self.token: int | None = None
        self._valid_until = -1.0

    @property
    def valid(self) -> bool:
        """Whether this process may act for the site now (see the module's docstring)."""
        return self.token is not None and self._monotonic() < self._valid_until

    def read(self) -> LeaseState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(LEASES).where(LEASES.c.site == self.site)).first()
            now = _db_now(conn)
        return None if row is None else LeaseState(row.holder, row.token, row.expires_at, now)

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if it is ours; False while
        another holds it (or the database cannot be reached)."""
        started = self._monotonic()
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # a holder's transaction in the way: try again soon
                    conn.execute(text("SET LOCAL lock_timeout = '1s'"))
                now = _db_now(conn)
                row = conn.execute(select(LEASES).where(LEASES.c.site == self.site).with_for_update()).first()
                expires = now + self.ttl_s
                if row is None:
                    values = {"holder": self.holder, "token": 1, "expires_at": expires, "acquired_at": now}
                    conn.execute(insert(LEASES).values(site=self.site, **values))
                    token = 1
                elif row.holder == self.holder and row.token == self.token and row.expires_at > now:
                    conn.execute(update(LEASES).where(LEASES.c.site == self.site).values(expires_at=expires))
                    token = row.token
                elif row.expires_at <= now:
                    token = row.token + 1
                    conn.execute(
                        update(LEASES)
                        .where(LEASES.c.site == self.site, LEASES.c.token == row.token)
                        .values(holder=self.holder, token=token, expires_at=expires, acquired_at=now)
                    )
                else:
                    return False
        except (IntegrityError, DBAPIError):  # another took it at the same moment, or no database
            return False
        self.token = token
        self._valid_until = started + self.ttl_s * SAFETY
        return True

    def renew(self) -> bool:
        """Extend the lease we hold; False when it is lost (taken over) or cannot be renewed now.
        `valid` runs out on its own if renewals keep failing."""
        return self.token is not None and self.acquire() and self.valid

    def release(self) -> None:
        """On a clean stop: let the standby take over at once instead of after the ttl."""
        if self.token is None:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(LEASES)
                    .where(LEASES.c.site == self.site, LEASES.c.holder == self.holder, LEASES.c.token == self.token)
                    .values(expires_at=0.0)
                )
        except DBAPIError:
            pass  # then it expires
        self.token, self._valid_until = None, -1.0

    def fence(self, conn: Connection) -> None:
        """The first statement of every storage transaction of an active controller: the
        transaction goes on only while the database still has our token (else `Fenced`). It
        holds the lease row shared until it commits, so a takeover waits for the writes to land
        and the new holder reads them when it restores the orders."""
        row = conn.execute(
            select(LEASES.c.holder, LEASES.c.token).where(LEASES.c.site == self.site).with_for_update(read=True)
        ).first()
        if row is None or (row.holder, row.token) != (self.holder, self.token):
            raise Fenced(f"site {self.site}: the lease (token {self.token}) was taken over")


def wait_until_held(lease: Lease, report: Callable[[LeaseState | None], None], sleep: Callable[[float], None]) -> None:
    """Block until `lease` is ours (a standby's wait), telling `report` who holds it whenever that
    changes; tries every quarter of the ttl."""
    last: tuple[str, int] | None = None
    while not lease.acquire():
        try:
            state = lease.read()
        except DBAPIError:
            state = None
        seen = (state.holder, state.token) if state is not None else None
        if seen != last:
            report(state)
            last = seen
        sleep(lease.ttl_s / 4)
