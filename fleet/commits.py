"""Group commit: the controller's writes go to the database in the order they were made, many at
a time, one transaction per batch, in a worker thread, so one fsync serves every request that
arrived meanwhile and the event loop never waits on the disk.

Two kinds of write, and what a failed batch does to each:
- `later(write)`: a change the core has made already (an order a vehicle finished, an audit
  row). It must reach storage: a batch that fails keeps it, in order, and is retried (backing
  off to `RETRY_MAX_S`) until it commits. Nobody waits for it but `committed()`.
- `commit(write)`: a change the core has *not* made yet (a new order, a PLC call): check,
  commit, apply. It is awaited; if its batch fails it is taken out of the batch and its caller
  gets the error, so the change is refused and leaves no trace; the others are retried.
While a batch fails, `failing` says why (readiness reports it) and `commit` refuses new work;
when the queue holds nothing to retry, a probe row is written so that recovery is noticed. A
batch that fails on its data (an integrity or data error, which no retry cures) is committed
write by write, and a write storage refuses for its data is dropped and counted (`poisoned`).

Concurrency contract: `later`, `commit` and `committed` are called on the one asyncio loop that
runs the core; one batch is in flight at a time. With no running loop (tests, command-line tools)
a write is committed at once, synchronously. For an in-memory SQLite database batches run on the
loop itself (its single connection must not cross threads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from fleet.storage import OrderStore

log = logging.getLogger(__name__)
Write = Callable[[Connection], None]
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


@dataclass(eq=False)
class _Queued:
    write: Write
    waiter: asyncio.Future[None] | None = None  # committed(): told when all before it is in
    droppable: bool = False  # commit(): taken out of a failed batch, its waiter told why


class StorageFailed(RuntimeError):
    """Storage refused a commit: nothing of the refused request was acknowledged or applied."""


class CommitQueue:
    def __init__(self, store: OrderStore, probe: Callable[[], Write] | None = None) -> None:
        """`probe` makes the write that tests storage again when a failed queue runs empty."""
        self.store = store
        self._probe = probe
        self._pending: list[_Queued] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # a batch is being committed
        self.failing: str | None = None  # why the last batch failed (None: the last one committed)
        self.batches = 0  # committed transactions (for metrics and tests)
        self.writes = 0
        self.failures = 0  # batches that failed
        self.refused = 0  # commit() writes refused because their batch failed
        self.poisoned = 0  # writes dropped because storage refuses their data (a bug's row)
        self._last_error: Exception | None = None

    def later(self, write: Write) -> None:
        """Queue a write that must reach storage (committed now when no loop is running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.store.transaction([write])
            self.batches, self.writes = self.batches + 1, self.writes + 1
            return
        self._pending.append(_Queued(write))
        self._kick()

    async def commit(self, write: Write) -> None:
        """Commit `write` with the next batch; raise `StorageFailed` (and drop it) if that fails,
        and at once while storage is failing: new work is refused until a retry commits."""
        if self.failing is not None:
            self.refused += 1
            raise StorageFailed(self.failing)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Queued(write, future, droppable=True))
        self._kick()
        await future

    async def committed(self) -> None:
        """Return once everything queued so far is committed (raise `StorageFailed` if the batch
        it rode failed: the writes themselves stay queued and are retried)."""
        if not self._pending and not self._in_flight:
            return
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Queued(_barrier, future))
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
        backoff = RETRY_FIRST_S
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                error = await self._commit(batch)
                if error is None:
                    backoff = RETRY_FIRST_S
                    continue
                # Refused writes leave with their waiters; what the core has already applied
                # goes back to the head of the queue, ahead of anything queued meanwhile.
                kept = [q for q in batch if not q.droppable and q.waiter is None]
                if isinstance(error, (IntegrityError, DataError)):
                    kept = await self._without_poison(kept)  # a write storage will never take
                self._pending = kept + self._pending
                if not any(q.write is not _barrier for q in self._pending) and self._probe is not None:
                    self._pending.insert(0, _Queued(self._probe()))
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, RETRY_MAX_S)

    async def _commit(self, batch: list[_Queued]) -> Exception | None:
        self._busy = True
        error: Exception | None = None
        try:
            writes = [q.write for q in batch]
            if self.store.in_memory:
                self.store.transaction(writes)
            else:
                await asyncio.to_thread(self.store.transaction, writes)
        except Exception as exc:
            error = exc
        finally:
            self._busy = False
        self._last_error = error
        if error is None:
            if self.failing is not None:
                log.warning("storage commits again after: %s", self.failing)
            self.failing = None
            self.batches += 1
            self.writes += sum(q.write is not _barrier for q in batch)
        else:
            self.failures += 1
            if self.failing is None:
                log.error("a batch of %d writes failed to commit; retrying: %s", len(batch), error)
            self.failing = f"{type(error).__name__}: {error}"[:300]
        for q in batch:
            if q.waiter is None or q.waiter.done():
                continue
            if error is None:
                q.waiter.set_result(None)
            else:
                self.refused += q.droppable
                q.waiter.set_exception(StorageFailed(self.failing or "storage failed"))
        return error

    async def _without_poison(self, writes: list[_Queued]) -> list[_Queued]:
        """After a batch failed on its data (not on the disk or the connection, which a retry
        may cure), commit its writes one at a time and drop each one storage refuses for its data:
        one bad row must not keep every later change out of storage and the plant refusing work."""
        left: list[_Queued] = []
        for q in writes:
            if await self._commit([q]) is None:
                continue
            if isinstance(self._last_error, (IntegrityError, DataError)):
                self.poisoned += 1
                log.error("a write storage refuses for its data was dropped: %s", self._last_error)
            else:
                left.append(q)
        return left

    async def close(self) -> None:
        """Commit what is queued, then stop the worker."""
        if self._task is not None:
            try:
                await self.committed()
            except StorageFailed:
                log.error("stopped with %d writes not committed: %s", len(self._pending), self.failing)
            self._task.cancel()


def _barrier(_: Connection) -> None:
    """Marks where a waiter joined the queue; writes nothing."""
