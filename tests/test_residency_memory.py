"""The capacity planner's memory for a llama-server on CPU against what the server really takes
(issue 28 item 4): its compute and output buffers as llama-server logs them, and the RSS of real
servers within 10 % of the plan — SmolLM2 and a wider model seven times its size."""

from __future__ import annotations

import httpx
import pytest

from aqua_lab.domain import Architecture, DeploymentSpec
from aqua_lab.planning.capacity import (
    LLAMA_CPP_RUNTIME_MIB,
    LLAMA_CPP_VOCAB_BYTES,
    config_flags,
    engine_overhead_gb,
    llama_cpp_cpu_overhead_bytes,
)
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.random_gguf import WIDE_SHAPE
from aqua_lab.service import AquaLabService
from tests.helpers.wide_gguf import write_wide_gguf

MIB = 2**20
SMOL = Architecture(hidden_size=576, intermediate_size=1536, vocab_size=49152, layers=30)
WIDE = Architecture(hidden_size=WIDE_SHAPE.hidden, intermediate_size=WIDE_SHAPE.ffn, vocab_size=49152, layers=24)


@pytest.mark.parametrize(
    ("arch", "context", "slots", "ubatch", "compute_mib", "output_mib"),
    [  # llama-server's "CPU compute/output buffer size" lines on this machine (planning/capacity.py)
        (SMOL, 2048, 4, 512, 15.51, 0.75),
        (SMOL, 2048, 4, 256, 7.76, 0.75),
        (SMOL, 2048, 4, 128, 3.88, 0.75),
        (SMOL, 512, 4, 512, 14.01, 0.75),
        (SMOL, 2048, 1, 512, 15.51, 0.19),
        (WIDE, 2048, 4, 512, 26.51, 0.75),
        (WIDE, 2048, 4, 256, 13.26, 0.75),
    ],
)
def test_the_planned_cpu_buffers_are_what_llama_server_logs(arch, context, slots, ubatch, compute_mib, output_mib):
    runtime = LLAMA_CPP_RUNTIME_MIB * MIB + arch.vocab_size * LLAMA_CPP_VOCAB_BYTES
    buffers = (llama_cpp_cpu_overhead_bytes(arch, context, slots, ubatch) - runtime) / MIB
    assert buffers == pytest.approx(compute_mib + output_mib, rel=0.01)


def test_a_ubatch_flag_sizes_the_compute_buffer_and_the_gpu_path_keeps_its_logits():
    assert config_flags("--ubatch-size 128 --max-model-len 2048").ubatch_size == 128
    small = engine_overhead_gb(SMOL, "llama.cpp", context=2048, slots=4, ubatch=128)
    default = engine_overhead_gb(SMOL, "llama.cpp", context=2048, slots=4)
    assert default - small == pytest.approx((15.51 - 3.88) * MIB / 1e9, abs=0.001)
    # on CUDA: the CUDA context plus the larger of a micro-batch's logits and the graph's activations
    cuda = engine_overhead_gb(SMOL, "llama.cpp-cuda")
    assert cuda == pytest.approx(0.5 + 512 * 49152 * 4 / 1e9, abs=0.001) and cuda > default
    mixtral = Architecture(hidden_size=4096, intermediate_size=14336, vocab_size=32000, layers=32)
    wide_ffn = engine_overhead_gb(mixtral, "llama.cpp-cuda", context=8192)
    assert wide_ffn == pytest.approx(0.5 + 512 * (12 * 14336 + 16 * 4096 + 2 * 8192) / 1e9, abs=0.001)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """SmolLM2 and the wide model, served side by side, each asked once."""
    root = tmp_path_factory.mktemp("residency_memory")
    wide = write_wide_gguf(root / "wide.gguf")
    service = AquaLabService(LocalPlatform(data_dir=root / "data", share=True))
    wide_id = service.register_model(str(wide), "wide-test").id
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol"},
            {"model_id": wide_id, "gpu_count": 1, "model_name": "wide"},
        ],
        display_name="residency-memory",
    )
    deployment = None
    try:
        deployment = service.wait(service.create_deployment(spec).id, timeout=240)
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        for name in ("smol", "wide"):
            answer = httpx.post(
                f"{deployment.endpoint}/chat/completions",
                json={"model": name, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8},
                headers={"Authorization": f"Bearer {deployment.api_key}"},
                timeout=120,
            )
            assert answer.status_code == 200, answer.text
        yield service, deployment
    finally:
        if deployment is not None:
            service.delete(deployment.id)


@pytest.mark.local
@pytest.mark.slow
def test_the_planned_memory_is_within_ten_percent_of_each_servers_rss(served):
    service, deployment = served
    memory = {s.model_name: s.memory for s in service.get_deployment(deployment.id).model_states}
    for name, weights in (("smol", 92.1), ("wide", 636.2)):
        got = memory[name]
        assert got is not None and got.rss_mib and got.planned_mib, (name, got)
        assert got.weights_mib == pytest.approx(weights, abs=0.5), got
        assert abs(got.error_pct) <= 10, (
            f"{name}: planned {got.planned_mib} MiB vs RSS {got.rss_mib} MiB ({got.error_pct:+.1f} %)"
        )
