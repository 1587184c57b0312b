"""Waiting in async tests for something the system under test does on its own time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], wall_timeout: float, what: str) -> None:
    """Return once `condition()` holds; fail naming `what` after `wall_timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + wall_timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
