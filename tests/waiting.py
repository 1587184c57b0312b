"""Waiting in tests for something the system under test does on its own time (async tests:
`until`; tests that drive other processes from plain code: `wait_until`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(condition: Callable[[], bool], wall_timeout: float, what: str) -> None:
    """Return once `condition()` holds; fail naming `what` after `wall_timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + wall_timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def wait_until(condition: Callable[[], object], wall_timeout: float, what: str, every_s: float = 0.3) -> None:
    """`until` for plain tests: return once `condition()` is true; fail naming `what` (and what
    `what` is when it is a callable, e.g. a count so far) after `wall_timeout` seconds."""
    deadline = time.monotonic() + wall_timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)
