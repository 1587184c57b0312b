"""Group commit: the controller's writes go to the database in the order they were made, many at
a time, one transaction per batch, in a worker thread, so one fsync serves every request that
arrived meanwhile and the event loop never waits on the disk.

A writer that must not answer before its data is durable (an API request: "acknowledged means
committed") awaits `committed()`, which returns once everything queued before it is in the
database. Order changes from vehicle events are queued the same way (so no later write can
overtake an earlier one of the same order) without anyone waiting.

Concurrency contract: `later` and `committed` are called on the one asyncio loop that runs the
core; one batch is in flight at a time. With no running loop (tests, command-line tools) a
write is committed at once, synchronously. For an in-memory SQLite database batches run on the
loop itself (its single connection must not cross threads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import Connection

from fleet.storage import OrderStore

log = logging.getLogger(__name__)
Write = Callable[[Connection], None]


class CommitQueue:
    def __init__(self, store: OrderStore) -> None:
        self.store = store
        self._pending: list[Write] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # a batch is being committed
        self.batches = 0  # committed transactions (for metrics and tests)
        self.writes = 0

    def later(self, write: Write) -> None:
        """Queue a write (committed now when no loop is running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.store.transaction([write])
            self.batches, self.writes = self.batches + 1, self.writes + 1
            return
        self._pending.append(write)
        self._kick()

    async def committed(self) -> None:
        """Return once everything queued so far is committed (raise if its batch failed)."""
        if not self._pending and not self._in_flight:
            return
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_barrier)
        self._waiters.append(future)
        self._kick()
        await future

    @property
    def _in_flight(self) -> bool:
        return self._task is not None and not self._task.done() and self._busy

    def _kick(self) -> None:
        if self._wake is None or self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                waiters, self._waiters = self._waiters, []
                self._busy = True
                error: BaseException | None = None
                try:
                    if self.store.in_memory:
                        self.store.transaction(batch)
                    else:
                        await asyncio.to_thread(self.store.transaction, batch)
                except Exception as exc:  # the waiters answer for it; writers that did not wait are logged
                    log.exception("a batch of %d writes failed to commit", len(batch))
                    error = exc
                finally:
                    self._busy = False
                self.batches += 1
                self.writes += len(batch) - len(waiters)
                for future in waiters:
                    if not future.done():
                        if error is None:
                            future.set_result(None)
                        else:
                            future.set_exception(error)

    async def close(self) -> None:
        """Commit what is queued, then stop the worker."""
        if self._task is not None:
            await self.committed()
            self._task.cancel()


def _barrier(_: Connection) -> None:
    """Marks where a waiter joined the queue; writes nothing."""
