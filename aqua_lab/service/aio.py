"""The service's async face, for code on an event loop (the Jupyter server's handlers).

Every verb of :class:`~.facade.AquaLabService` as a coroutine, derived from the mark the facade
puts on it (:mod:`.verbs`), so the two cannot drift apart: blocking verbs run through
:func:`~.executor.execute` (the one executor choice), async verbs pass through.  A handler reads
``await svc.get_deployment(id)`` and never sees a thread.

Identical reads that arrive while one is running share it (:class:`~.executor.SharedReads`): a
sidebar open in many tabs, or a burst of 100 ``GET deployments``, costs one platform call, not 100
threads' worth of work competing with the event loop for the GIL.  A read never joins one that
began before this face's last write, so a caller always sees its own changes: every write verb
runs through :meth:`AsyncAquaLabService._write`, the one write path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ..domain import CapacityInputs, Plan
from . import verbs
from .executor import SharedReads, execute
from .facade import AquaLabService


class AsyncAquaLabService:
    def __init__(self, service: AquaLabService):
        self.sync = service
        self._reads = SharedReads()

    async def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await execute(fn, *args, **kwargs)

    async def _shared_read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if kwargs:  # one key per call, however its arguments were spelled
            bound = inspect.signature(fn).bind(*args, **kwargs)
            args, kwargs = bound.args, bound.kwargs
        if kwargs:
            return await execute(fn, *args, **kwargs)
        return await self._reads.run(fn, *args)

    async def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await execute(fn, *args, **kwargs)
        finally:
            self._reads.wrote()  # also when it failed: it may have changed something before failing

    @property
    def platform_name(self) -> str:
        return self.sync.platform_name

    async def plan(
        self,
        model_ids: Sequence[str],
        primary_model_id: str | None = None,
        shape: str | None = None,
        capacity: CapacityInputs | None = None,
    ) -> Plan:
        # REST cannot hand over models the platform does not know: no ``extra`` between shape and capacity
        return await self._read(self.sync.plan, model_ids, primary_model_id, shape, (), capacity)


_RUNNERS = {"read": "_read", "shared_read": "_shared_read", "write": "_write"}


def _twin(name: str, kind: verbs.Kind, verb: Callable[..., Any]) -> Callable[..., Any]:
    # the facade's method is looked up on each call, so a replaced or subclassed verb is the one run
    if kind == "on_loop" and inspect.iscoroutinefunction(verb):

        async def twin(self: AsyncAquaLabService, *args: Any, **kwargs: Any) -> Any:
            return await getattr(self.sync, name)(*args, **kwargs)

    elif kind == "on_loop":  # an async iterator: the caller iterates it

        def twin(self: AsyncAquaLabService, *args: Any, **kwargs: Any) -> Any:
            return getattr(self.sync, name)(*args, **kwargs)

    else:
        runner = _RUNNERS[kind]

        async def twin(self: AsyncAquaLabService, *args: Any, **kwargs: Any) -> Any:
            return await getattr(self, runner)(getattr(self.sync, name), *args, **kwargs)

    functools.update_wrapper(twin, verb)
    twin.__qualname__ = f"{AsyncAquaLabService.__name__}.{name}"
    return twin


def _derive() -> None:
    for name, verb in verbs.public_verbs(AquaLabService):
        kind = verbs.kind_of(verb)
        if kind is None or kind == "blocking_only" or name in vars(AsyncAquaLabService):
            continue
        setattr(AsyncAquaLabService, name, _twin(name, kind, verb))


_derive()
