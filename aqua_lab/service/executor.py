"""The one place that decides where blocking work runs when an event loop is waiting on it.

Platform calls touch disks, SQLite, subprocesses and (signed) networks; none may run on the
Jupyter server's event loop.  Everything async in aqua_lab hands such calls to :func:`execute`,
so changing the executor (a bounded pool, a per-platform pool) is a change to this file only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


async def execute(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))
