"""Stacked = one server (issue 28 item 3): a base with N LoRA adapters as one llama-server holding
the base once (today's stacked deployment, created through the platform, requests through its
router) vs the way it was (one llama-server for the base plus one per adapter, each loading the
base again; started here directly from the same engine specs, on the cores the old layout gave them).

Measured in one run, both layouts up at the same time and decoded in interleaved rounds:
- memory of the llama-server processes: RSS (what `ps` shows) and PSS (shared file pages split);
- create time: from start to every server answering (for the one-server layout: the platform's
  create until ACTIVE, router and runtime included);
- decode tokens/s per adapter with N concurrent requests, one per adapter (llama-server's own
  ``timings.predicted_per_second``).

    python bench/stacked_bench.py [--adapters 4] [--rounds 3] [--tokens 48] [--quick] [--json]
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _cli import arguments, print_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from aqua_lab.platforms.local import LocalPlatform  # noqa: E402
from aqua_lab.platforms.local.demo_lora import write_lora_gguf  # noqa: E402
from aqua_lab.platforms.local.engines import LLAMA_CPP, ServerSpec  # noqa: E402
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path  # noqa: E402
from aqua_lab.platforms.local.ports import free_port  # noqa: E402
from aqua_lab.platforms.local.supervisor import _child_setup  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper."


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def children_running(parent: int, binary: str = "llama-server") -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                exe = os.readlink(entry / "exe")
            except OSError:
                continue
            if ppid == parent and exe.endswith(binary):
                found.append(int(entry.name))
    return found


class OldLayout:
    """One llama-server for the base and one per adapter, as stacked deployments ran before."""

    def __init__(self, adapters: dict[str, str], cores: list[int], log_dir: Path):
        model = str(smollm2_path())
        servers = 1 + len(adapters)
        shares = [cores[i::servers] or cores for i in range(servers)]  # the old split of the model's cores
        self.specs = [ServerSpec("base", SMOLLM2_ID, LLAMA_CPP, shares[0], model)]
        self.specs += [
            ServerSpec(name, name, LLAMA_CPP, share, model, lora_modules={name: path})
            for (name, path), share in zip(adapters.items(), shares[1:], strict=True)
        ]
        self.key = secrets.token_urlsafe(16)
        self.ports = [free_port() for _ in self.specs]
        self.procs: list[subprocess.Popen] = []
        self.log_dir = log_dir

    def start(self) -> float:
        began = time.perf_counter()
        for spec, port in zip(self.specs, self.ports, strict=True):
            with open(self.log_dir / f"old-{spec.served_name}.log", "ab") as out:
                self.procs.append(
                    subprocess.Popen(
                        spec.command(port),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **spec.environment(self.key)},
                        preexec_fn=_child_setup(spec.slots),
                    )
                )
        headers = {"Authorization": f"Bearer {self.key}"}
        waiting = set(self.ports)
        while waiting:
            if time.perf_counter() - began > 120:
                raise RuntimeError("the old layout's servers did not start in 120 s")
            for port in list(waiting):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", headers=headers, timeout=1).status_code == 200:
                        waiting.discard(port)
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        return time.perf_counter() - began

    def request(self, name: str, tokens: int) -> dict:
        i = [s.served_name for s in self.specs].index(name)
        body = {"model": name, "prompt": PROMPT, "max_tokens": tokens, "temperature": 0}
        if lora := self.specs[i].lora_selection(name):
            body["lora"] = lora
        url = f"http://127.0.0.1:{self.ports[i]}/v1/completions"
        return httpx.post(url, json=body, headers={"Authorization": f"Bearer {self.key}"}, timeout=300).json()

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(10)


def decode_rates(request, names: list[str], tokens: int) -> dict[str, float]:
    """Tokens/s of each adapter's request, all sent at once."""
    with ThreadPoolExecutor(len(names)) as pool:
        replies = list(pool.map(lambda n: request(n, tokens), names))
    return {n: r["timings"]["predicted_per_second"] for n, r in zip(names, replies, strict=True)}


def main(argv: list[str] | None = None) -> dict:
    args = arguments(
        __doc__,
        {"rounds": 1, "tokens": 8},
        argv,
        adapters=4,
        rounds=3,
        tokens=48,
        json=(False, "print the result as one JSON object"),
    )
    with tempfile.TemporaryDirectory(prefix="stacked-bench-") as tmp:
        return run(Path(tmp), args)


def run(tmp: Path, args) -> dict:
    platform = LocalPlatform(data_dir=tmp / "data", share=True)
    service = AquaLabService(platform)
    adapters = {}
    for i in range(args.adapters):
        path = write_lora_gguf(tmp / f"lora-{i}.gguf", seed=i + 1)
        adapters[platform.register_model(str(path), name=f"lora-{i}", base_model_id=SMOLLM2_ID).name] = str(path)
    cores = list(range(platform.shape.gpu_count))
    spec = DeploymentSpec(
        models=[
            {
                "model_id": SMOLLM2_ID,
                "gpu_count": platform.shape.gpu_count,
                "model_name": "base",
                "fine_tune_weights": [
                    {"model_id": m.id, "model_name": m.name} for m in platform.list_models() if m.name in adapters
                ],
            }
        ],
        instance_shape=platform.shape.name,
        display_name="stacked-bench",
        deployment_type="STACKED",
    )
    old = OldLayout(adapters, cores, tmp)
    began = time.perf_counter()
    deployment = service.wait(service.create_deployment(spec).id, timeout=180)
    one_create = time.perf_counter() - began
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        old_create = old.start()
        runtime = platform.store.deployment(deployment.id).runtime_pid
        one_pids = children_running(runtime)
        auth = {"Authorization": f"Bearer {deployment.api_key}"}

        def one_request(name: str, tokens: int) -> dict:
            body = {"model": name, "prompt": PROMPT, "max_tokens": tokens, "temperature": 0}
            return httpx.post(f"{deployment.endpoint}/completions", json=body, headers=auth, timeout=300).json()

        names = list(adapters)
        one_rates: dict[str, list[float]] = {n: [] for n in names}
        old_rates: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(args.rounds):  # interleaved: drift and the machine's other work hit both alike
            for n, r in decode_rates(one_request, names, args.tokens).items():
                one_rates[n].append(r)
            for n, r in decode_rates(old.request, names, args.tokens).items():
                old_rates[n].append(r)
        one_mem = [memory_kib(p) for p in one_pids]
        old_mem = [memory_kib(p.pid) for p in old.procs]
    finally:
        old.stop()
        service.delete(deployment.id)
    one_rss, one_pss = (sum(m[i] for m in one_mem) for i in (0, 1))
    old_rss, old_pss = (sum(m[i] for m in old_mem) for i in (0, 1))
    one_tps = statistics.median(statistics.median(v) for v in one_rates.values())
    old_tps = statistics.median(statistics.median(v) for v in old_rates.values())
    return {
        "adapters": args.adapters,
        "cores": len(cores),
        "servers": {"one": len(one_pids), "old": len(old.procs)},
        "rss_mib": {"one": round(one_rss / 1024, 1), "old": round(old_rss / 1024, 1)},
        "pss_mib": {"one": round(one_pss / 1024, 1), "old": round(old_pss / 1024, 1)},
        "rss_ratio": round(one_rss / old_rss, 3),
        "pss_ratio": round(one_pss / old_pss, 3),
        "create_s": {"one": round(one_create, 2), "old": round(old_create, 2)},
        "decode_tps_per_adapter": {"one": round(one_tps, 1), "old": round(old_tps, 1)},
        "decode_ratio": round(one_tps / old_tps, 3),
        "rounds": args.rounds,
        "tokens": args.tokens,
    }


if __name__ == "__main__":
    print_result(main(), 24)
