"""The one place that decides where blocking work runs when an event loop is waiting on it.

Platform calls touch disks, SQLite, subprocesses and (signed) networks; none may run on the
Jupyter server's event loop.  Everything async in aqua_lab hands such calls to :func:`execute`,
so changing the executor (a bounded pool, a per-platform pool) is a change to this file only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


async def execute(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))


class SharedReads:
    """Identical concurrent reads share one call (per event loop): a caller arriving while the same
    read (same function, same arguments) is running awaits that call instead of starting another.
    They get the same result object, to be read, not changed (a copy for each of 100 callers costs
    the event loop more than the shared call saves).  ``wrote()`` ends the sharing of reads that
    began before it: a read after a write starts afresh."""

    def __init__(self) -> None:
        self._running: dict[tuple[Hashable, ...], asyncio.Future[Any]] = {}
        self._generation = 0

    def wrote(self) -> None:
        self._generation += 1

    async def run(self, fn: Callable[..., T], *args: Hashable) -> T:
        key = (id(asyncio.get_running_loop()), self._generation, fn, *args)
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(execute(fn, *args))
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
        # shield: one caller giving up (a closed browser tab) must not cancel the others' call
        return await asyncio.shield(running)
