"""The async face is derived from the facade: every public verb has a twin (or says why it has none),
and every write through it ends the sharing of reads begun before it."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from aqua_lab.service import AquaLabService, AsyncAquaLabService, verbs
from tests.test_service import spec
from tests.test_shared_reads import SlowList

pytestmark = pytest.mark.service

WRITES = [name for name, fn in verbs.public_verbs(AquaLabService) if verbs.kind_of(fn) == "write"]


def test_every_public_facade_verb_says_how_it_meets_an_event_loop_and_has_an_async_twin():
    unmarked, missing = [], []
    for name, fn in verbs.public_verbs(AquaLabService):
        kind = verbs.kind_of(fn)
        if kind is None:
            unmarked.append(name)
        elif kind != "blocking_only" and not callable(getattr(AsyncAquaLabService, name, None)):
            missing.append(name)
    assert unmarked == [], f"mark these facade verbs with @verbs.<kind> (service/verbs.py): {unmarked}"
    assert missing == [], f"no async twin for {missing}"
    face = vars(AsyncAquaLabService)
    for name, fn in verbs.public_verbs(AquaLabService):
        if verbs.kind_of(fn) in ("read", "shared_read", "write"):
            assert inspect.iscoroutinefunction(face[name]), f"{name} must be awaitable on the async face"
    assert "wait" not in face and "wait_evaluation" not in face  # they block for minutes by design


def test_the_writes_include_every_verb_that_changes_state():
    assert {"register_model", "unregister_model", "update_scaling", "cancel_evaluation", "delete_evaluation"} <= set(
        WRITES
    )


@pytest.mark.parametrize("name", WRITES)
def test_a_write_through_the_async_face_is_never_answered_by_a_read_begun_before_it(name):
    platform = SlowList()
    service = AquaLabService(platform)
    calls = []
    setattr(service, name, lambda *args, **kwargs: calls.append(args))  # the write itself is not the point
    face = AsyncAquaLabService(service)

    async def scenario():
        before = asyncio.ensure_future(face.list_deployments())
        await asyncio.sleep(0.05)  # the read is running, waiting on the platform
        await getattr(face, name)("x")
        after = asyncio.ensure_future(face.list_deployments())
        await asyncio.sleep(0.05)
        platform.gate.set()
        await asyncio.gather(before, after)

    asyncio.run(scenario())
    assert calls == [("x",)]
    assert platform.lists == 2, f"a read after {name} joined the read begun before it"


def test_a_shared_read_given_keywords_answers_like_one_given_positions():
    platform = SlowList()
    platform.gate.set()
    face = AsyncAquaLabService(AquaLabService(platform))

    async def scenario():
        created = await face.create_deployment(spec())
        return created, await face.get_deployment(deployment_id=created.id), await face.get_deployment(created.id)

    created, by_keyword, by_position = asyncio.run(scenario())
    assert by_keyword.id == by_position.id == created.id
