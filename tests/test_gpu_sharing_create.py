"""A deployment whose models share a GPU, created on the local platform (issue 29, item 2), checked without a
GPU: validation accepts the packing the plan shows (budgets and all) and refuses a GPU whose budgets exceed
its memory, naming the model; a create records each model's GPUs, and the runtime's supervisor builds each
server's command line (its devices, its budget's flags) and starts old vLLMs sharing a GPU one after the
other — nothing is started (its spawn is replaced)."""

from __future__ import annotations

import json

import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import InvalidInput
from aqua_lab.planning.allocate import SHARING_IS_LOCAL
from aqua_lab.platforms.local import LocalPlatform, engines, hardware, supervisor
from aqua_lab.platforms.local.engines import CUDA, LLAMA_CPP, VLLM
from aqua_lab.service import AquaLabService

pytestmark = pytest.mark.local

SMOL = "smollm2-135m-instruct"
KEYS = {VLLM: "VLLM_PARAMS", LLAMA_CPP: "LLAMA_CPP_PARAMS"}


@pytest.fixture
def gpu_platform(tmp_path, monkeypatch):
    """A local platform on two H100s (as nvidia-smi prints them) whose llama-server is a fake that says it
    has ``--fit``; nothing it creates is started."""
    smi = "\n".join(f"{i}, NVIDIA H100 80GB HBM3, 81559" for i in range(2))
    shape = hardware.local_shape(gpus=hardware.parse_nvidia_smi(smi), cores=16, ram_gb=128)
    fake = tmp_path / "llama-server"
    fake.write_text('#!/bin/sh\necho "-fit,  --fit [on|off]   whether to adjust unset arguments"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("AQUA_LAB_LLAMA_SERVER", str(fake))
    platform = LocalPlatform(data_dir=tmp_path / "data", shape=shape)
    platform._start_runtime = lambda deployment_id: None  # the runtime's own start is what is checked here
    yield platform
    for d in platform.list_deployments():
        platform.delete(d.id)


def _use(platform: LocalPlatform, engine: str) -> AquaLabService:
    platform.engine, platform.params_key = engine, KEYS[engine]
    platform.device = CUDA if engine == LLAMA_CPP else "cpu"
    return AquaLabService(platform)


def _spec(params: str | None = None, primary: bool = True, **extra) -> DeploymentSpec:
    return DeploymentSpec(
        models=[{"model_id": SMOL, "gpu_count": 1, "model_name": n, "params": params, **extra} for n in "abc"],
        display_name="three on two",
        primary_model_id=SMOL if primary else None,
    )


def _value(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


@pytest.mark.parametrize("engine", [VLLM, LLAMA_CPP])
def test_validate_accepts_the_plans_packing_with_its_budgets(gpu_platform, engine):
    service = _use(gpu_platform, engine)
    planned = service.plan([SMOL] * 3, primary_model_id=SMOL).gpu_allocation[gpu_platform.shape.name].models
    validated = service.validate(_spec())  # was: "the models need 3 GPUs but LOCAL.GPU.H100.2 has 2"
    assert [m.gpu_indices for m in validated.models] == [m.gpu_indices for m in planned] == [[0], [1], [1]]
    assert [m.memory_budget_in_gbs for m in validated.models] == [m.memory_budget_in_gbs for m in planned]
    assert [m.params for m in validated.models] == [m.parameters[KEYS[engine]] for m in planned]
    assert [m.sharing for m in validated.models] == [None, "shares GPU 1 with 'c'", "shares GPU 1 with 'b'"]
    assert any("3 models on 2 of 2 GPUs" in w for w in validated.warnings)
    budget = "--kv-cache-memory-bytes" if engine == VLLM else "--batch-size 512 --ubatch-size 512"
    assert all(budget in m.served_params for m in validated.models)  # what the server is started with


def test_a_plans_own_gpu_indices_are_kept(gpu_platform):
    service = _use(gpu_platform, LLAMA_CPP)
    spec = _spec()
    for entry, gpus in zip(spec.models, ([1], [0], [0]), strict=True):
        entry.gpu_indices = gpus
    validated = service.validate(spec)
    assert [m.gpu_indices for m in validated.models] == [[1], [0], [0]]
    assert validated.models[0].sharing is None and validated.models[1].sharing == "shares GPU 0 with 'c'"


def test_an_over_committed_gpu_is_refused_naming_the_model(gpu_platform):
    service = _use(gpu_platform, LLAMA_CPP)
    heavy = "--max-model-len 8192 --max-num-seqs 256"  # ≈ 50 GB of KV cache each: two cannot share an H100
    spec = _spec(heavy, primary=False)
    for entry, gpus in zip(spec.models, ([0], [1], [0]), strict=True):
        entry.gpu_indices = gpus
    with pytest.raises(InvalidInput) as err:
        service.validate(spec)
    (problem,) = err.value.problems
    assert problem.field == "models[2].gpu_indices"
    assert problem.message.startswith("'c' over-commits GPU 0: its budgets 'a' ")
    assert "but a GPU of LOCAL.GPU.H100.2 gives 76.95 GB (85.5 GB × 0.9)" in problem.message
    assert problem.fix.startswith("put 'c' on another GPU")
    with pytest.raises(InvalidInput) as err:  # packed by the planner: the third has no room left either
        service.validate(_spec(heavy, primary=False))
    (problem,) = err.value.problems
    assert problem.field == "models"
    assert problem.message.startswith("model 'c' needs ") and problem.message.endswith("(even sharing GPUs)")


def test_a_create_starts_each_cuda_server_on_its_plan_gpus_within_its_budget(gpu_platform):
    service = _use(gpu_platform, LLAMA_CPP)
    created = service.create_deployment(_spec())
    row = gpu_platform._row(created.id)
    assert row.record["slots"] == [0, 1]  # two GPUs held for three models, not refused for want of a third
    assert [m["gpu_indices"] for m in row.record["multi_model_config"]["models"]] == [[0], [1], [1]]
    config = json.loads(gpu_platform._runtime_config(created.id, row).read_text())
    runtime = supervisor.Supervisor(config, gpu_platform.store, gpu_platform.data_dir / "check")
    a, b, c = (s.spec for s in runtime.servers)
    assert [s.environment()["CUDA_VISIBLE_DEVICES"] for s in (a, b, c)] == ["0", "1", "1"]
    for spec in (a, b, c):
        cmd = spec.command(8001)
        assert _value(cmd, "--device") == "CUDA0" and _value(cmd, "--n-gpu-layers") == "999"
        assert _value(cmd, "--fit") == "off"  # the plan's sizes, never llama.cpp's guess at what is free
        assert "--max-model-len" not in cmd  # translated to llama-server's own flags
        assert _value(cmd, "--parallel") == "4" and _value(cmd, "--ctx-size") == str(4 * 4096)
        assert _value(cmd, "--batch-size") == "512" and _value(cmd, "--ubatch-size") == "512"


def _fake_spawn(started: list[str]):
    def spawn(server):
        started.append(server.spec.served_name)
        server.proc, server.state = object(), "STARTING"

    return spawn


@pytest.mark.parametrize(
    ("version", "waves"),
    [
        ("0.9.2", [["a", "b"], ["c"]]),  # fractions only: c waits for b, which shares GPU 1 with it
        ("0.10.0", [["a", "b"], ["c"]]),
        ("0.10.1", [["a", "b", "c"]]),  # --kv-cache-memory-bytes: no profiling, so no order to keep
    ],
)
def test_old_vllms_sharing_a_gpu_start_one_after_the_other(gpu_platform, monkeypatch, version, waves):
    monkeypatch.setattr(engines, "installed_vllm_version", lambda: engines.parse_version(version))
    monkeypatch.setattr(supervisor, "installed_vllm_version", lambda: engines.parse_version(version))
    service = _use(gpu_platform, VLLM)
    created = service.create_deployment(_spec())
    row = gpu_platform._row(created.id)
    config = json.loads(gpu_platform._runtime_config(created.id, row).read_text())
    runtime = supervisor.Supervisor(config, gpu_platform.store, gpu_platform.data_dir / "check")
    started: list[str] = []
    runtime.spawn = _fake_spawn(started)
    seen = []
    for _ in waves:
        runtime.start_next_replica()
        seen.append(list(started))
        runtime.start_next_replica()  # nothing more while those started have not answered
        assert started == seen[-1]
        started.clear()
        for server in runtime.servers:
            if server.proc is not None:
                server.state = "ACTIVE"
    assert seen == waves
    a, b, c = (s.spec for s in runtime.servers)
    assert [s.environment()["CUDA_VISIBLE_DEVICES"] for s in (a, b, c)] == ["0", "1", "1"]
    new = engines.parse_version(version) >= (0, 10, 1)
    for spec in (a, b, c):
        cmd = spec.command(8001)
        assert ("--kv-cache-memory-bytes" in cmd) == new
        assert "--gpu-memory-utilization" in cmd


def test_oci_keeps_whole_gpus_and_says_sharing_is_local():
    bundled = AquaLabService("bundled")
    models = ("microsoft/phi-2", "google/gemma-2b", "tiiuae/falcon-7b")
    spec = DeploymentSpec(
        models=[{"model_id": m, "gpu_count": 1} for m in models], instance_shape="VM.GPU.A10.2", display_name="x"
    )
    with pytest.raises(InvalidInput) as err:
        bundled.validate(spec)
    problem = next(p for p in err.value.problems if p.field == "models")
    assert problem.message == "the models need 3 GPUs but VM.GPU.A10.2 has 2"  # as before
    assert problem.fix.startswith("lower some gpu_count") and problem.fix.endswith(SHARING_IS_LOCAL)
    placed = spec.model_copy(deep=True)
    placed.models[0].gpu_indices = [0]
    with pytest.raises(InvalidInput) as err:
        bundled.validate(placed)
    assert any(p.field == "models[0].gpu_indices" and SHARING_IS_LOCAL in p.message for p in err.value.problems)


def test_a_cpu_machine_refuses_gpu_indices_and_is_otherwise_unchanged(tmp_path):
    shape = hardware.local_shape(gpus=[], cores=2, ram_gb=16)
    service = AquaLabService(LocalPlatform(data_dir=tmp_path, shape=shape))
    plain = DeploymentSpec(models=[{"model_id": SMOL, "gpu_count": 1}], display_name="x")
    assert service.validate(plain).models[0].gpu_indices is None
    placed = DeploymentSpec(models=[{"model_id": SMOL, "gpu_count": 1, "gpu_indices": [0]}], display_name="x")
    with pytest.raises(InvalidInput, match="places each model on its cores itself"):
        service.validate(placed)


def test_the_gpu_checks_create_request_is_the_plan_and_validates(gpu_platform):
    import importlib.util
    from pathlib import Path

    from aqua_lab.domain import CapacityInputs

    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_check_run.py"
    found = importlib.util.spec_from_file_location("gpu_check_run", path)
    bench = importlib.util.module_from_spec(found)
    found.loader.exec_module(bench)
    service = _use(gpu_platform, LLAMA_CPP)
    split = service.plan([SMOL] * 3, capacity=CapacityInputs(max_model_len=4096)).gpu_allocation[
        gpu_platform.shape.name
    ]
    spec = bench.platform_spec(split, ["a", "b", "c"], "LLAMA_CPP_PARAMS", gpu_platform.shape.name)
    validated = service.validate(spec)
    assert [m.gpu_indices for m in validated.models] == [m.gpu_indices for m in split.models] == [[0], [1], [0]]
    assert [m.params for m in validated.models] == [m.parameters["LLAMA_CPP_PARAMS"] for m in split.models]


def test_a_plan_made_at_a_higher_utilization_is_created_at_it(gpu_platform):
    """Two budgets of ≈ 40 GB share a GPU within 85.5 GB × 0.95 but not × 0.9 (the default): the plan's
    utilization, carried in the request, is the one the create checks and packs within."""
    from aqua_lab.domain import CapacityInputs

    service = _use(gpu_platform, LLAMA_CPP)
    asked = {"max_model_len": 8192, "concurrency": 208}
    at_default = service.plan([SMOL] * 3, capacity=CapacityInputs(**asked))
    assert gpu_platform.shape.name not in at_default.gpu_allocation
    split = service.plan([SMOL] * 3, capacity=CapacityInputs(gpu_memory_utilization=0.95, **asked)).gpu_allocation[
        gpu_platform.shape.name
    ]
    assert [m.gpu_indices for m in split.models] == [[0], [1], [0]]
    params = [m.parameters["LLAMA_CPP_PARAMS"] for m in split.models]
    at = {**_spec(primary=False).model_dump(exclude_none=True), "gpu_memory_utilization": 0.95}
    placed = DeploymentSpec(**at)
    for entry, m, p in zip(placed.models, split.models, params, strict=True):
        entry.gpu_indices, entry.params = m.gpu_indices, p
    assert [m.gpu_indices for m in service.validate(placed).models] == [[0], [1], [0]]
    packed = DeploymentSpec(**at)  # no gpu_indices: packed as the plan packed
    for entry, p in zip(packed.models, params, strict=True):
        entry.params = p
    assert [m.gpu_indices for m in service.validate(packed).models] == [[0], [1], [0]]
    # left out, the default holds: the same request over-commits GPU 0 and the error says at which share
    placed.gpu_memory_utilization = None
    with pytest.raises(InvalidInput) as err:
        service.validate(placed)
    assert "over-commits GPU 0" in str(err.value) and "(85.5 GB × 0.9)" in str(err.value)
