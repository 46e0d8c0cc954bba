"""The measuring half of ``bench/gpu_check.sh`` (run by it on the GPU machine after the CUDA build).

Model servers are started from the same :class:`ServerSpec` command lines the local runtime uses, placed
by the local packing planner, so what is measured is what a deployment runs; the platform's own path
(plan → create → chat → delete) is then run and its outcome recorded beside the numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from aqua_lab.domain import CapacityInputs, DeploymentSpec, ModelInput, ShapePlan
from aqua_lab.planning import ShapeCatalog, plan
from aqua_lab.planning.capacity import LLAMA_CPP_CUDA
from aqua_lab.planning.gpu_sharing import share_gpus
from aqua_lab.platforms.local import engine_build
from aqua_lab.platforms.local.engines import CUDA, LLAMA_CPP, server_specs
from aqua_lab.platforms.local.hardware import Gpu, detect_gpus, local_shape, parse_nvidia_smi
from aqua_lab.platforms.local.models import LLAMA_CPP_PARAMS
from aqua_lab.platforms.local.random_gguf import SMOLLM2_SHAPE, WIDE_SHAPE, write_llama_gguf
from aqua_lab.platforms.local.runtime import free_port

#: the three models: the wide one and two copies of a SmolLM2-shaped one (their files are made here)
ENTRIES = (("wide", WIDE_SHAPE), ("small-a", SMOLLM2_SHAPE), ("small-b", SMOLLM2_SHAPE))
#: what the plan is drawn for where no nvidia-smi answers (the dry run here): two H100s
FAKE_GPUS = "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA H100 80GB HBM3, 81559"
CONTEXT = 4096
PORT = 8080  # a dry run's command lines: nothing listens


def three_model_plan(gpus: list[Gpu]) -> ShapePlan:
    """The local planner's split of the three models over ``gpus``, llama.cpp-CUDA budgets and all —
    what a deployment of them gets (on two GPUs: the wide model and a small one share GPU 0)."""
    shape = local_shape(gpus=gpus, cores=16, ram_gb=128)
    models = [ModelInput(model_id=n, name=n, architecture=s.architecture(f"shape {s}")) for n, s in ENTRIES]
    inputs = CapacityInputs(max_model_len=CONTEXT)
    found = plan(models, ShapeCatalog([shape]), None, inputs)
    found = share_gpus(found, models, ShapeCatalog([shape]), LLAMA_CPP_CUDA, LLAMA_CPP_PARAMS, inputs)
    if shape.name not in found.gpu_allocation:
        raise SystemExit(f"gpu_check: the three models do not fit: {found.incompatible_shapes}")
    return found.gpu_allocation[shape.name]


def describe(split: ShapePlan) -> str:
    lines = []
    for m in split.models:
        where = ", ".join(f"GPU {g}" for g in m.gpu_indices or [])
        lines.append(
            f"   {m.model_name:<8} on {where}: budget {m.memory_budget_in_gbs:.2f} GB, "
            f"{m.sharing or 'alone'}; {m.parameters.get(LLAMA_CPP_PARAMS, '')} (+ --fit off)"
        )
    for g, stack in enumerate(split.gpu_stacks()):
        used = sum(b for _, b in stack)
        parts = " | ".join(f"{name} {b:.2f}" for name, b in stack) or "idle"
        usable = split.gpu_usable_in_gbs
        lines.append(f"   GPU {g}: [{parts} | free {usable - used:.2f}] of {usable} GB")
    return "\n".join(lines)


def dry_run() -> int:
    gpus = detect_gpus()
    where = "this machine's GPUs" if gpus else "2 × H100 80GB (no nvidia-smi here)"
    split = three_model_plan(gpus or parse_nvidia_smi(FAKE_GPUS))
    print(f"   the plan for {where}:")
    for note in split.notes:
        print(f"   note: {note}")
    print(describe(split))
    print("   the create request (each model on the plan's GPUs) and how the runtime starts each server:")
    request = platform_spec(split, [n for n, _ in ENTRIES], LLAMA_CPP_PARAMS, split_shape(gpus))
    mmc = {"models": [{"model_id": m.model_name, "model_path": f"{m.model_name}.gguf",
                       "params": f"--served-model-name {m.model_name} {m.params}",
                       "gpu_indices": m.gpu_indices} for m in request.models]}  # fmt: skip
    for spec in server_specs(mmc, LLAMA_CPP, list(range(len(gpus) or 2)), device=CUDA):
        devices = spec.environment()["CUDA_VISIBLE_DEVICES"]
        cmd = " ".join(spec.command(PORT)[1:])  # the runtime's own command line (--fit off where the build has it)
        print(f"   {spec.served_name:<8} gpu_indices {spec.slots}: CUDA_VISIBLE_DEVICES={devices} llama-server {cmd}")
    return 0


def split_shape(gpus: list[Gpu]) -> str:
    return local_shape(gpus=gpus or parse_nvidia_smi(FAKE_GPUS), cores=16, ram_gb=128).name


def gpu_memory_by_pid() -> dict[int, float]:
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    found = {}
    for line in out.strip().splitlines():
        pid, mib = (p.strip() for p in line.split(","))
        found[int(pid)] = int(mib) * 2**20 / 1e9
    return found


def wait_up(port: int, timeout: float = 240) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"server on {port} did not come up in {timeout} s")


def decode_rate(port: int, name: str, tokens: int = 256) -> float:
    body = {"model": name, "prompt": "Write a long story about a lighthouse.", "n_predict": tokens,
            "temperature": 0, "ignore_eos": True}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/completion", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as r:
        timings = json.loads(r.read())["timings"]
    return float(timings["predicted_per_second"])


def start(spec, port: int, log: Path) -> subprocess.Popen:
    env = {**__import__("os").environ, **spec.environment()}
    return subprocess.Popen(spec.command(port), stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)


def main(out: Path, build_s: str, carry: Path) -> int:
    gpus = detect_gpus()
    split = three_model_plan(gpus)
    print(describe(split))
    paths = {}
    for name, shape in ENTRIES:  # one file per shape: the two small models load the same one
        target = out / f"{shape.hidden}x{shape.layers}.gguf"
        if not target.exists():
            write_llama_gguf(target, shape, carry / "tokenizer.gguf")
        paths[name] = target
    fits = {m.model_name: m.memory for m in split.models}
    entries = [(m.model_name, paths[m.model_name]) for m in split.models]
    mmc = {
        "models": [
            {"model_id": m.model_name, "model_path": str(paths[m.model_name]),
             "params": f"--served-model-name {m.model_name} --tensor-parallel-size 1 "
                       f"{m.parameters[LLAMA_CPP_PARAMS]}",
             "gpu_indices": m.gpu_indices}  # the plan's GPUs, as the local platform records them
            for m in split.models
        ]
    }  # fmt: skip
    specs = server_specs(mmc, LLAMA_CPP, list(range(len(gpus))), device=CUDA)
    summary: dict = {"gpu": [g.__dict__ for g in gpus], "cuda_build_s": float(build_s),
                     "binary": str(engine_build.binary_path()),
                     "placement": {m.model_name: m.gpu_indices for m in split.models},
                     "notes": {m.model_name: m.sharing for m in split.models}, "models": {}}  # fmt: skip
    procs = {}
    try:
        for spec in specs:
            port = free_port()
            procs[spec.served_name] = (start(spec, port, out / f"{spec.served_name}.log"), port)
            cold = wait_up(port)
            summary["models"][spec.served_name] = {"cold_start_to_ready_s": round(cold, 1)}
        time.sleep(2)
        used = gpu_memory_by_pid()
        for name, (proc, port) in procs.items():
            planned, measured = fits[name].per_gpu_gb, used.get(proc.pid)
            row = summary["models"][name]
            row.update(planned_gb=planned, measured_gb=measured and round(measured, 3),
                       measured_vs_planned_pct=measured and round(100 * (measured - planned) / planned, 1),
                       decode_tps_alone=decode_rate(port, name))  # fmt: skip
            print(f"{name}: planned {planned:.2f} GB, measured {measured or 0:.2f} GB "
                  f"({row['measured_vs_planned_pct']} %), {summary['notes'][name] or 'alone'}")  # fmt: skip
        # the two models that share a GPU: one decodes while its neighbour is kept busy
        first, second = next(stack for stack in split.gpu_stacks() if len(stack) > 1)[:2]
        a, b = procs[first[0]], procs[second[0]]
        busy = threading.Event()

        def hammer():
            while not busy.is_set():
                decode_rate(b[1], second[0], 64)

        worker = threading.Thread(target=hammer, daemon=True)
        worker.start()
        with_neighbour = decode_rate(a[1], first[0])
        busy.set()
        worker.join(timeout=120)
        alone = summary["models"][first[0]]["decode_tps_alone"]
        summary["neighbour_busy"] = {"model": first[0], "neighbour": second[0], "tps": with_neighbour,
                                     "ratio": round(with_neighbour / alone, 3)}  # fmt: skip
        print(f"{first[0]} decode: {alone:.0f} tok/s alone, {with_neighbour:.0f} beside a busy {second[0]}")
    finally:
        for proc, _ in procs.values():
            proc.kill()
            proc.wait()
    # CUDA vs CPU on the same model: the same binary, nothing offloaded
    cpu = specs[1]
    port = free_port()
    cmd = cpu.command(port)
    cmd[cmd.index("--device") + 1] = "none"
    cmd[cmd.index("--n-gpu-layers") + 1] = "0"
    proc = subprocess.Popen(cmd, stdout=open(out / "cpu.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_up(port)
        summary["cpu_vs_cuda"] = {"cpu_tps": decode_rate(port, cpu.served_name),
                                  "cuda_tps": summary["models"][cpu.served_name]["decode_tps_alone"]}  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    summary["platform_path"] = platform_path(entries)
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def platform_spec(split: ShapePlan, names: list[str], params_key: str, shape: str) -> DeploymentSpec:
    """The create request a plan makes: each model on the plan's GPUs (``gpu_indices``: two share GPU 0)
    with the plan's parameters, which hold it to its budget; validation checks the budgets again."""
    return DeploymentSpec(
        models=[
            {"model_id": m.ocid, "gpu_count": m.gpu_count, "model_name": n, "gpu_indices": m.gpu_indices,
             "params": m.parameters.get(params_key)}
            for m, n in zip(split.models, names, strict=True)
        ],
        instance_shape=shape,
        display_name="gpu check",
    )  # fmt: skip


def platform_path(entries) -> dict:
    """plan → create → chat → delete through the service, the outcome recorded either way."""
    import tempfile

    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService

    data = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    platform = LocalPlatform(data_dir=data, share=True)
    service = AquaLabService(platform)
    result: dict = {"engine": platform.engine, "device": platform.device}
    try:
        ids = [service.register_model(str(p), n).id for n, p in entries]
        found = service.plan(ids, capacity=CapacityInputs(max_model_len=CONTEXT))
        result["plan"] = found.model_dump(mode="json").get("gpu_allocation")
        split = found.gpu_allocation[platform.shape.name]
        spec = platform_spec(split, [n for n, _ in entries], platform.params_key, platform.shape.name)
        result["placement"] = {m.model_name: m.gpu_indices for m in spec.models}
        deployment = service.wait(service.create_deployment(spec).id, timeout=300)
        result["state"] = deployment.state
        import openai

        client = openai.OpenAI(base_url=deployment.endpoint, api_key=deployment.api_key)
        result["answers"] = {
            n: client.chat.completions.create(
                model=n, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
            )
            .choices[0]
            .message.content
            for n, _ in entries
        }
    except Exception as exc:  # noqa: BLE001 - recorded in the summary: the check goes on
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for d in platform.list_deployments():
            platform.delete(d.id)
        shutil.rmtree(data, ignore_errors=True)
    return result


if __name__ == "__main__":
    if sys.argv[1:] == ["--dry-run"]:  # the plan the check would run, from the planner itself
        sys.exit(dry_run())
    if len(sys.argv) != 4:  # it needs a GPU and a CUDA build: its quick check is `gpu_check.sh --dry-run`
        sys.exit("usage: bench/gpu_check_run.py OUT_DIR BUILD_SECONDS CARRY_DIR (bench/gpu_check.sh runs it)")
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
