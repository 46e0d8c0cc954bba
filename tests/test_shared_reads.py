"""The async face's shared reads: a burst of identical reads costs one platform call, and a read
after a write never gets an answer from before it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from aqua_lab.service import AquaLabService, AsyncAquaLabService
from tests.helpers.memory_platform import MemoryPlatform
from tests.test_service import spec

pytestmark = pytest.mark.service


class SlowList(MemoryPlatform):
    def __init__(self) -> None:
        super().__init__(polls_to_active=1)
        self.lists = 0
        self.gate = threading.Event()

    def list_deployments(self):
        self.lists += 1
        self.gate.wait(5)
        return super().list_deployments()


def test_a_hundred_concurrent_lists_are_one_platform_call_and_a_write_starts_a_new_one():
    platform = SlowList()
    service = AsyncAquaLabService(AquaLabService(platform))

    async def scenario():
        burst = [asyncio.ensure_future(service.list_deployments()) for _ in range(100)]
        await asyncio.sleep(0.05)
        assert platform.lists == 1  # the other 99 wait on the first
        platform.gate.set()
        first = await asyncio.gather(*burst)
        assert {len(r) for r in first} == {0}
        platform.gate.clear()
        before = asyncio.ensure_future(service.list_deployments())  # began before the write
        await asyncio.sleep(0.05)
        platform.gate.set()
        created = await service.create_deployment(spec())
        after = await service.list_deployments()  # must not join the read that began before
        await before
        return created, after

    created, after = asyncio.run(scenario())
    assert [d.id for d in after] == [created.id]
    assert platform.lists == 3


def test_one_caller_giving_up_does_not_cancel_the_others():
    platform = SlowList()
    service = AsyncAquaLabService(AquaLabService(platform))

    async def scenario():
        quitter = asyncio.ensure_future(service.list_deployments())
        stayer = asyncio.ensure_future(service.list_deployments())
        await asyncio.sleep(0.05)
        quitter.cancel()
        platform.gate.set()
        return await stayer

    assert asyncio.run(scenario()) == []
