"""The service's own rules, against an in-memory platform: caching, waiting, errors and what a
platform refuses.  No model server, no emulator: these run in milliseconds."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aqua_lab.domain import ChatRequest, DeploymentSpec, EvaluationSpec
from aqua_lab.errors import Conflict, InvalidInput, NotFound, Unsupported
from aqua_lab.service import AquaLabService, AsyncAquaLabService
from tests.helpers.memory_platform import MemoryPlatform, config

pytestmark = pytest.mark.service


@pytest.fixture
def platform() -> MemoryPlatform:
    return MemoryPlatform()


@pytest.fixture
def service(platform) -> AquaLabService:
    return AquaLabService(platform)


def spec(**overrides) -> DeploymentSpec:
    raw = {
        "models": [{"model_id": "alpha-7b", "gpu_count": 1}, {"model_id": "m-b", "gpu_count": 1}],
        "instance_shape": "vm.gpu.a10.2",
        "display_name": "two",
    }
    return DeploymentSpec.model_validate({**raw, **overrides})


# caching ------------------------------------------------------------------------------------------


def test_planning_inputs_are_fetched_once_per_model_while_fresh(service, platform):
    first = service.plan(["m-a", "beta-7b"])
    again = service.plan(["m-a", "m-b"])  # beta-7b's entry is cached under its id too
    assert first.gpu_allocation["VM.GPU.A10.2"].used_gpus == 2
    assert again.gpu_allocation == first.gpu_allocation
    assert platform.calls["get_model_config"] == 2


def test_a_changed_config_is_seen_after_the_ttl_and_not_before(platform):
    service = AquaLabService(platform, input_ttl_s=0.05)
    assert "BM.GPU.A10.4" not in service.plan(["m-a"]).gpu_allocation
    platform.configs["m-a"] = config(4, shape="BM.GPU.A10.4")
    assert "BM.GPU.A10.4" not in service.plan(["m-a"]).gpu_allocation  # still the cached config
    time.sleep(0.06)
    assert service.plan(["m-a"]).gpu_allocation["BM.GPU.A10.4"].models[0].gpu_count == 4


def test_cached_inputs_belong_to_the_platform_scope_they_came_from(service, platform):
    service.model_input("m-a")
    platform.scope = "region-2"  # another region/compartment: its configs are its own
    platform.configs["m-a"] = None
    assert service.model_input("m-a").config is None
    assert platform.calls["get_model_config"] == 2


def test_clear_cache_forgets_every_input(service, platform):
    service.model_input("m-a")
    service.clear_cache()
    service.model_input("m-a")
    assert platform.calls["get_model_config"] == 2


# waiting ------------------------------------------------------------------------------------------


def test_wait_polls_until_active_and_reports_each_state(service, platform):
    created = service.create_deployment(spec())
    seen = []
    done = service.wait(created.id, lambda d: seen.append((d.state, d.progress)), interval=0.001)
    assert done.state == "ACTIVE" and done.endpoint
    assert seen == [("CREATING", 50), ("ACTIVE", 100)]


def test_wait_returns_the_last_state_at_the_timeout_or_when_stopped(service, platform):
    platform.polls_to_active = 10**6
    created = service.create_deployment(spec())
    assert service.wait(created.id, timeout=0.02, interval=0.005).state == "CREATING"
    polls = []
    stopped = service.wait(created.id, polls.append, timeout=None, interval=0.001, stop=lambda: len(polls) >= 3)
    assert stopped.state == "CREATING" and len(polls) == 3


def test_wait_stops_at_a_deleted_deployment(service, platform):
    platform.polls_to_active = 10**6
    created = service.create_deployment(spec())
    service.delete(created.id)
    assert service.wait(created.id, timeout=5, interval=0.001).state == "DELETED"


# errors -------------------------------------------------------------------------------------------


def test_unknown_models_are_named_by_field_with_the_platforms_hint(service):
    with pytest.raises(InvalidInput) as caught:
        service.plan(["m-a", "gamma", "delta"])
    assert [p.field for p in caught.value.problems] == ["model_ids[1]", "model_ids[2]"]
    assert "unknown model 'gamma'" in str(caught.value) and "use one of ['m-a', 'm-b']" in str(caught.value)


def test_an_invalid_request_creates_nothing(service, platform):
    with pytest.raises(InvalidInput) as caught:
        service.create_deployment(spec(models=[{"model_id": "m-a", "gpu_count": 3}]))
    assert "gpu_count" in str(caught.value)
    assert platform.deployments == {}


def test_unknown_deployment_is_not_found(service):
    with pytest.raises(NotFound, match="unknown deployment 'nope'"):
        service.get_deployment("nope")


def test_chat_checks_the_model_and_the_state_before_calling_the_model(service, platform):
    platform.polls_to_active = 10**6
    created = service.create_deployment(spec())
    with pytest.raises(InvalidInput, match="'gamma' is not served"):
        asyncio.run(service.chat(created.id, ChatRequest(model="gamma", prompt="hi")))
    with pytest.raises(Conflict, match="is CREATING; chat needs it ACTIVE"):
        asyncio.run(service.chat(created.id, ChatRequest(model="alpha-7b", prompt="hi")))
    assert platform.calls["inference_request"] == 0


# capability refusals ------------------------------------------------------------------------------


def test_what_a_platform_cannot_do_is_refused_with_a_409_error_naming_it(service, platform):
    created = service.create_deployment(spec())
    with pytest.raises(Unsupported, match="memory platform cannot update a deployment in place") as caught:
        service.update_deployment(created.id, spec())
    assert isinstance(caught.value, Conflict)  # the server maps it to 409, the CLI to exit 2
    evaluation = EvaluationSpec.model_validate(
        {
            "evaluation_source_id": created.id,
            "evaluation_name": "e",
            "dataset_path": "oci://b@n/d.jsonl",
            "report_path": "oci://b@n/r",
            "model_parameters": {"model": "alpha-7b"},
        }
    )
    with pytest.raises(Unsupported, match="does not run evaluation jobs"):
        service.create_evaluation(evaluation)
    with pytest.raises(Unsupported, match="cannot register model files"):
        service.register_model("/tmp/x.gguf")
    assert service.default_shape() is None


# the async face -----------------------------------------------------------------------------------


def test_the_async_face_runs_platform_calls_off_the_event_loop(service, platform):
    threads = []
    original = platform.get_deployment

    def recording(deployment_id):
        threads.append(threading.get_ident())
        return original(deployment_id)

    platform.get_deployment = recording
    created = service.create_deployment(spec())

    async def run():
        face = AsyncAquaLabService(service)
        return await face.get_deployment(created.id), threading.get_ident()

    deployment, loop_thread = asyncio.run(run())
    assert deployment.id == created.id and threads and loop_thread not in threads
