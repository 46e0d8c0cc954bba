"""llama.cpp on CUDA as the local GPU engine where vLLM is absent (issue 29, items 1 and 4), checked
without a GPU: a fake ``nvcc`` and ``nvidia-smi`` on PATH choose the CUDA recipe (its command lines are
checked, nothing is built), the model servers' command lines and environments are read, and
``bench/gpu_check.sh --dry-run`` says what it would do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aqua_lab.domain import GpuSpec, Shape
from aqua_lab.platforms.local import engine_build as E
from aqua_lab.platforms.local import hardware
from aqua_lab.platforms.local.engines import CPU, CUDA, LLAMA_CPP, VLLM, server_specs

pytestmark = pytest.mark.local

ROOT = Path(__file__).resolve().parents[1]
H100 = Shape(
    name="LOCAL.GPU.H100.2",
    core_count=16,
    memory_in_gbs=128,
    shape_series="NVIDIA_GPU",
    gpu_specs=GpuSpec(gpu_count=2, gpu_memory_in_gbs=171.0, gpu_type="H100"),
)


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def fake_cuda(tmp_path, monkeypatch):
    """A PATH where nvcc and nvidia-smi answer as on an H100 machine (nothing else on it changes)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "nvcc", 'echo "Cuda compilation tools, release 12.4, V12.4.131"')
    _tool(bin_dir, "nvidia-smi", 'echo "9.0"; echo "9.0"')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AQUA_LAB_ENGINE_CACHE", str(tmp_path / "cache"))
    return bin_dir


def test_without_nvcc_the_cpu_build_and_its_key_are_unchanged(tmp_path, monkeypatch):
    _tool(tmp_path, "nvidia-smi", 'echo "9.0"')  # a GPU but no compiler: the CPU build stays
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    settings = E.build_settings()
    assert E.cuda_target() is None and not E.is_cuda_build()
    assert "cuda" not in settings and settings["cmake"] == list(E.CMAKE_FLAGS)
    assert not any("CUDA" in flag for flag in settings["cmake"])


def test_nvcc_and_a_gpu_choose_the_cuda_recipe_for_that_gpu_only(fake_cuda, tmp_path, monkeypatch):
    settings = E.build_settings()
    cpu_key = E.build_key({**{k: v for k, v in settings.items() if k != "cuda"}, "cmake": list(E.CMAKE_FLAGS)})
    release = "Cuda compilation tools, release 12.4, V12.4.131"
    assert settings["cuda"] == {"architectures": "90", "nvcc_version": release}
    assert E.is_cuda_build()
    key = E.build_key(settings)
    assert key != cpu_key and E.binary_path() == tmp_path / "cache" / key / "llama-server"  # its own cache entry

    ran: list[list[str]] = []

    def fake_step(cmd, log):  # the build runner: record, build nothing
        ran.append(cmd)
        if cmd[:2] == ["cmake", "--build"]:
            built = Path(cmd[2]) / "bin"
            built.mkdir(parents=True)
            (built / "llama-server").write_text("#!/bin/sh\n")
        return 0

    monkeypatch.setattr(E, "_run_step", fake_step)
    monkeypatch.setenv("AQUA_LAB_LLAMA_SOURCE", str(tmp_path / "llama.cpp"))  # no sdist download
    built = E.build(jobs=16)
    configure, make = ran
    assert configure[:3] == ["cmake", "-S", str(tmp_path / "llama.cpp")]
    assert "-DGGML_CUDA=ON" in configure
    assert "-DCMAKE_CUDA_ARCHITECTURES=90" in configure  # one architecture: minutes, not an hour
    assert f"-DCMAKE_CUDA_COMPILER={fake_cuda / 'nvcc'}" in configure
    assert make[-4:] == ["--target", "llama-server", "-j", "16"]
    assert built == tmp_path / "cache" / key / "llama-server" and built.is_file()
    assert E.build_info(built)["cuda"]["architectures"] == "90"


def test_on_gpus_vllm_is_chosen_where_installed_else_llama_cpp_on_cuda(fake_cuda, monkeypatch):
    monkeypatch.setattr(hardware, "vllm_installed", lambda: True)
    assert hardware.choose_engine(H100) == (VLLM, CPU)
    monkeypatch.setattr(hardware, "vllm_installed", lambda: False)
    assert hardware.choose_engine(H100) == (LLAMA_CPP, CUDA)
    cpu_shape = hardware.local_shape(gpus=[], cores=4, ram_gb=16)
    assert hardware.choose_engine(cpu_shape) == (LLAMA_CPP, CPU)


def test_without_nvcc_a_gpu_machine_keeps_vllm_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(hardware, "vllm_installed", lambda: False)
    assert hardware.choose_engine(H100) == (VLLM, CPU)


def test_nvidia_smi_memory_is_read_in_the_planners_gigabytes():
    gpus = hardware.parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 81559\n")
    assert gpus[0].memory_gb == 85.5  # 81559 MiB; it was 79.6 ("GB" that were GiB)


MMC = {
    "models": [
        {"model_id": "big", "model_path": "/m/big.gguf",
         "params": "--served-model-name big --tensor-parallel-size 2 --max-model-len 8192 --max-num-seqs 2"},
        {"model_id": "a", "model_path": "/m/a.gguf",
         "params": "--served-model-name a --tensor-parallel-size 1 --max-model-len 4096 --max-num-seqs 4 "
                   "--batch-size 512 --ubatch-size 512"},
        {"model_id": "b", "model_path": "/m/b.gguf",
         "params": "--served-model-name b --tensor-parallel-size 1 --max-model-len 2048 --max-num-seqs 1"},
    ]
}  # fmt: skip


def _value(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_each_cuda_server_gets_its_gpus_all_layers_its_split_and_the_planned_sizes(fake_cuda):
    # three models on GPUs 0-2: big on 0 and 1, a on 2, b beyond the slots so it shares GPU 2 with a
    specs = {s.served_name: s for s in server_specs(MMC, LLAMA_CPP, [0, 1, 2], device=CUDA)}
    big, a, b = specs["big"], specs["a"], specs["b"]
    assert (big.slots, a.slots, b.slots) == ([0, 1], [2], [2])
    assert big.environment()["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert a.environment()["CUDA_VISIBLE_DEVICES"] == b.environment()["CUDA_VISIBLE_DEVICES"] == "2"
    assert big.cpu_cores is None and a.cpu_cores is None  # never pinned to cores named like GPUs

    cmd = big.command(8001)
    assert _value(cmd, "--device") == "CUDA0,CUDA1"
    assert _value(cmd, "--n-gpu-layers") == "999"
    assert _value(cmd, "--split-mode") == "layer"
    assert _value(cmd, "--tensor-split") == "1,1"
    assert _value(cmd, "--parallel") == "2" and _value(cmd, "--ctx-size") == str(8192 * 2)

    cmd = a.command(8002)
    assert _value(cmd, "--device") == "CUDA0" and _value(cmd, "--tensor-split") == "1"
    assert _value(cmd, "--ctx-size") == str(4096 * 4)
    assert _value(cmd, "--batch-size") == "512" and _value(cmd, "--ubatch-size") == "512"
    assert _value(specs["b"].command(8003), "--ctx-size") == "2048"


def test_fit_is_turned_off_where_the_build_has_it(fake_cuda, tmp_path, monkeypatch):
    with_fit, without_fit = tmp_path / "new-server", tmp_path / "old-server"
    _tool(tmp_path, "new-server", 'echo "-fit,  --fit [on|off]   whether to adjust unset arguments"')
    _tool(tmp_path, "old-server", 'echo "-ngl,  --n-gpu-layers N"')
    spec = server_specs(MMC, LLAMA_CPP, [0, 1, 2], device=CUDA)[1]
    monkeypatch.setenv("AQUA_LAB_LLAMA_SERVER", str(with_fit))
    assert _value(spec.command(8002), "--fit") == "off"  # sizes from the plan, never llama.cpp's guess
    monkeypatch.setenv("AQUA_LAB_LLAMA_SERVER", str(without_fit))
    assert "--fit" not in spec.command(8002)


def test_the_cpu_path_is_unchanged(fake_cuda):
    spec = server_specs(MMC, LLAMA_CPP, [0, 1, 2, 3])[1]  # device defaults to the CPU
    cmd = spec.command(8002)
    assert spec.device == CPU and spec.cpu_cores == [2]
    assert not {"--device", "--n-gpu-layers", "--split-mode", "--tensor-split", "--fit"} & set(cmd)
    assert spec.environment() == {"OMP_NUM_THREADS": "1"}


def test_gpu_check_dry_run_says_what_it_would_do(tmp_path):
    no_gpu = tmp_path / "bin"  # the same plan wherever it runs: no nvidia-smi answers
    no_gpu.mkdir()
    _tool(no_gpu, "nvidia-smi", "exit 9")
    out = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PATH": f"{no_gpu}{os.pathsep}{os.environ['PATH']}"},
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for step in (
        "-DGGML_CUDA=ON",
        "CMAKE_CUDA_ARCHITECTURES",
        "three-model deployment",
        # the planner's own plan, two of the three models on GPU 0 each within its llama.cpp budget
        "the plan for 2 × H100 80GB (no nvidia-smi here)",
        "small-b  on GPU 0: budget 1.25 GB, shares GPU 0 with 'wide'; --max-model-len 4096 --max-num-seqs 4",
        "small-a  on GPU 1: budget 1.25 GB, alone",
        "GPU 0: [wide 2.07 | small-b 1.25 | free 73.63] of 76.95 GB",
        # the create request from that plan, and the runtime's command line for each server on its GPU
        "small-b  gpu_indices [0]: CUDA_VISIBLE_DEVICES=0 llama-server --model small-b.gguf",
        "--parallel 4 --ctx-size 16384",
        "--device CUDA0 --n-gpu-layers 999",
        "planned vs measured",
        "decode tokens/s",
        "CPU build",
        f"{tmp_path / 'out'}/gpu_check.json",
    ):
        assert step in text, f"the dry run does not mention {step!r}:\n{text}"
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"


VLLM_SHARED = {
    "models": [
        {"model_id": m, "model_path": f"/m/{m}",
         "params": f"--served-model-name {m} --tensor-parallel-size 1 --max-model-len 4096 "
                   f"--kv-cache-memory-bytes {kv} --gpu-memory-utilization {fraction}"}
        for m, kv, fraction in (("a", 1000, 0.2), ("b", 2000, 0.3), ("c", 3000, 0.1))
    ]
}  # fmt: skip


@pytest.mark.parametrize(
    ("version", "flags_of_b"),
    [
        ("0.11.0", ["--kv-cache-memory-bytes", "2000", "--gpu-memory-utilization", "0.3"]),  # no profiling
        ("0.10.1", ["--kv-cache-memory-bytes", "2000", "--gpu-memory-utilization", "0.3"]),
        ("0.10.0", ["--gpu-memory-utilization", "0.3"]),  # per instance: its own fraction
        ("0.9.0", ["--gpu-memory-utilization", "0.4000"]),  # V1 counted c's memory too: c's 0.1 + its 0.3
        ("0.7.3", ["--gpu-memory-utilization", "0.3"]),
    ],
)
def test_each_vllm_version_gets_the_budget_flag_it_knows(monkeypatch, version, flags_of_b):
    from aqua_lab.platforms.local import engines

    monkeypatch.setattr(engines, "installed_vllm_version", lambda: engines.parse_version(version))
    # a has GPU 0 to itself; c and then b (beyond the slots) share GPU 1
    a, c, b = server_specs({"models": [VLLM_SHARED["models"][i] for i in (0, 2, 1)]}, VLLM, [0, 1])
    assert (a.slots, c.slots, b.slots) == ([0], [1], [1])  # models beyond the slots share the last GPU
    cmd = b.command(8001)
    assert cmd[cmd.index("--max-model-len") + 2 :] == flags_of_b
    assert ("--kv-cache-memory-bytes" in a.command(8002)) == (version in ("0.11.0", "0.10.1"))
    assert c.gpu_fraction_before == 0.0 and b.gpu_fraction_before == 0.1  # c started before b on GPU 1


def test_vllm_versions_parse_like_their_releases():
    from aqua_lab.platforms.local.engines import parse_version

    assert parse_version("0.10.1.post1") == (0, 10, 1) and parse_version("0.9.2rc1") == (0, 9, 2)
