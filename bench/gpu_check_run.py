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

from aqua_lab.planning.allocate import pack_shared
from aqua_lab.planning.capacity import LLAMA_CPP_CUDA, budget_flags, memory_fit
from aqua_lab.platforms.local import engine_build
from aqua_lab.platforms.local.engines import CUDA, LLAMA_CPP, server_specs
from aqua_lab.platforms.local.hardware import detect_gpus
from aqua_lab.platforms.local.models import model_architecture, new_local_model
from aqua_lab.platforms.local.runtime import free_port


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
    models = sorted(carry.glob("*.gguf"))
    big = max(models, key=lambda p: p.stat().st_size)
    small = min(models, key=lambda p: p.stat().st_size)
    entries = [("big", big), ("small-a", small), ("small-b", small)]
    usable = gpus[0].memory_gb * 0.9
    needs, fits = {}, {}
    for name, path in entries:
        arch = model_architecture(new_local_model(str(path), name, None))
        fit = memory_fit(arch, 1, gpus[0].memory_gb, None, None, LLAMA_CPP_CUDA, max_model_len=4096)
        fits[name] = fit
        needs[name] = (1, fit.per_gpu_gb)
    # the big model alone on a GPU where there are two; on one GPU all three share it
    placement = pack_shared(len(gpus), usable, needs, primary_model_id="big")
    mmc = {
        "models": [
            {"model_id": n, "model_path": str(p),
             "params": f"--served-model-name {n} --tensor-parallel-size 1 {budget_flags(fits[n], LLAMA_CPP_CUDA)}"}
            for n, p in entries
        ]
    }  # fmt: skip
    slots = sorted({g for gs in placement.gpus.values() for g in gs})
    specs = server_specs(mmc, LLAMA_CPP, slots, device=CUDA)
    for spec in specs:  # the packing's GPUs, not the slot order
        spec.slots = placement.gpus[spec.served_name]
    summary: dict = {"gpu": [g.__dict__ for g in gpus], "cuda_build_s": float(build_s),
                     "binary": str(engine_build.binary_path()), "placement": placement.gpus,
                     "notes": {n: placement.note(n) for n, _ in entries}, "models": {}}  # fmt: skip
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
                  f"({row['measured_vs_planned_pct']} %), {placement.note(name) or 'alone'}")  # fmt: skip
        a, b = procs["small-a"], procs["small-b"]
        busy = threading.Event()

        def hammer():
            while not busy.is_set():
                decode_rate(b[1], "small-b", 64)

        worker = threading.Thread(target=hammer, daemon=True)
        worker.start()
        with_neighbour = decode_rate(a[1], "small-a")
        busy.set()
        worker.join(timeout=120)
        alone = summary["models"]["small-a"]["decode_tps_alone"]
        summary["neighbour_busy"] = {"small-a_tps": with_neighbour, "ratio": round(with_neighbour / alone, 3)}
        print(f"small-a decode: {alone:.0f} tok/s alone, {with_neighbour:.0f} beside a busy small-b")
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
                                  "cuda_tps": summary["models"]["small-a"]["decode_tps_alone"]}  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    summary["platform_path"] = platform_path(entries)
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def platform_path(entries) -> dict:
    """plan → create → chat → delete through the service, the outcome recorded either way."""
    import tempfile

    from aqua_lab.domain import DeploymentSpec
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService

    data = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    platform = LocalPlatform(data_dir=data, share=True)
    service = AquaLabService(platform)
    result: dict = {"engine": platform.engine, "device": platform.device}
    try:
        ids = [service.register_model(str(p), n).id for n, p in entries]  # noqa: F841 - registered by name
        plan = service.plan([n for n, _ in entries])
        result["plan"] = plan.model_dump(mode="json").get("gpu_allocation")
        spec = DeploymentSpec(
            models=[{"model_id": n, "gpu_count": 1, "model_name": n} for n, _ in entries],
            instance_shape=platform.shape.name,
            display_name="gpu check",
        )
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
    if len(sys.argv) != 4:  # it needs a GPU and a CUDA build: its quick check is `gpu_check.sh --dry-run`
        sys.exit("usage: bench/gpu_check_run.py OUT_DIR BUILD_SECONDS CARRY_DIR (bench/gpu_check.sh runs it)")
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
