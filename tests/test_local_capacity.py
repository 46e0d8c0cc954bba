"""Honest local capacity: running deployments own their cores (GPUs on a GPU machine); plans see
what is free, a create that needs more is refused naming who holds it, sharing happens only when
asked and says so, and each model server is pinned to its own deployment's cores."""

from __future__ import annotations

import os

import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import Conflict
from aqua_lab.platforms.local import LocalPlatform, engine_build
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService
from aqua_lab.widgets import GpuSplit

pytestmark = [pytest.mark.local, pytest.mark.slow]


@pytest.fixture
def platform(tmp_path):
    assert smollm2_path() is not None and engine_build.binary_path().is_file(), engine_build.missing_message()
    platform = LocalPlatform(data_dir=tmp_path / "data", share=False)
    if platform.shape.gpu_count < 2:
        pytest.skip("needs a machine with two cores or GPUs")
    yield platform
    for d in platform.list_deployments():
        platform.delete(d.id)


def _spec(platform, name, count):
    return DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": count, "model_name": name}],
        instance_shape=platform.shape.name,
        display_name=name,
    )


def _affinity(platform, deployment_id):
    pids = [s["pid"] for s in platform.store.model_states(deployment_id) if s["pid"]]
    return sorted({c for pid in pids for c in os.sched_getaffinity(pid)})


def test_deployments_own_their_cores_and_a_create_that_oversubscribes_is_refused(platform):
    service = AquaLabService(platform)
    words = "cores" if platform.engine == "llama_cpp" else "GPUs"
    a = service.wait(service.create_deployment(_spec(platform, "cap-a", 1)).id, timeout=90)
    assert a.state == "ACTIVE", a.lifecycle_details
    assert len(a.slots) == 1 and a.warnings == []
    log = platform.logs(a.id)
    assert "deployment ACTIVE" in log and ": None" not in log  # the runtime log says no 'ACTIVE: None'

    plan = service.plan([SMOLLM2_ID])
    shape = plan.gpu_allocation[platform.shape.name]
    assert shape.total_gpus_available == platform.shape.gpu_count - 1  # the plan sees what is free
    assert any("'cap-a'" in w and f"holds {words[:-1]} {a.slots[0]}" in w for w in plan.warnings), plan.warnings

    with pytest.raises(Conflict) as refused:
        service.create_deployment(_spec(platform, "cap-big", platform.shape.gpu_count))
    text = str(refused.value)
    assert f"needs {platform.shape.gpu_count} {words}" in text and "'cap-a'" in text and a.id in text
    assert "Delete or deactivate" in text and "AQUA_LAB_SHARE_CORES=1" in text
    assert [d.display_name for d in service.list_deployments()] == ["cap-a"]  # nothing half-made

    b = service.wait(service.create_deployment(_spec(platform, "cap-b", 1)).id, timeout=90)
    assert b.state == "ACTIVE", b.lifecycle_details
    assert set(b.slots).isdisjoint(a.slots)
    if platform.engine == "llama_cpp":  # each model server runs on its own deployment's core
        assert _affinity(platform, a.id) == a.slots and _affinity(platform, b.id) == b.slots

    split = GpuSplit(service)  # the picture of this machine shows who owns which core
    split.refresh([SMOLLM2_ID])
    picture = split.table.value
    for d in (a, b):
        assert f'data-slot="{d.slots[0]}" data-held-by="{d.display_name}"' in picture
        assert f"{words[:-1]} {d.slots[0]} held by {d.display_name}" in picture

    sharing = AquaLabService(LocalPlatform(data_dir=platform.data_dir, share=True))
    c = sharing.create_deployment(_spec(platform, "cap-c", 1))
    try:
        # validation's warnings come first in a create's answer, then the platform's
        assert any(f"shares {words[:-1]}" in w and "each runs slower" in w for w in c.warnings), c.warnings
    finally:
        sharing.delete(c.id)

    service.deactivate(a.id)  # a deactivated deployment holds nothing
    assert service.plan([SMOLLM2_ID]).gpu_allocation[platform.shape.name].total_gpus_available == (
        platform.shape.gpu_count - 1
    )
    service.delete(b.id)
    again = service.wait(service.activate(a.id).id, timeout=90)
    assert again.state == "ACTIVE" and again.slots == a.slots  # its former core was free again
    service.delete(a.id)
    assert service.plan([SMOLLM2_ID]).gpu_allocation[platform.shape.name].total_gpus_available == (
        platform.shape.gpu_count
    )
