"""More models than fit (issue 28 item 2): six SmolLM2 models on this machine, a round-robin chat
workload (one streamed chat to each model in turn, over and over), time to first token p50/p95 and
the number of wakes, in two deployments of the same six models:

* ``rotating``: at most 2 resident (``max_resident`` 2, the cores' limit on a 2-core machine): a
  request to a sleeping model wakes it and the least recently used one is put to sleep;
* ``shared``: all six resident, sharing the cores (``share_cores``).

And the capacity planner's memory per model server against its RSS (``planner``): SmolLM2 and a
random llama seven times its size (``random_gguf.WIDE_SHAPE``), each asked once, error in %.

    python bench/residency_bench.py [--rounds 5] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wake_bench import ttft  # noqa: E402

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from aqua_lab.platforms.local import LocalPlatform  # noqa: E402
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path  # noqa: E402
from aqua_lab.platforms.local.random_gguf import WIDE_SHAPE, write_llama_gguf  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402

MODELS = [f"smol-{i}" for i in range(6)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(service: AquaLabService, rounds: int, **options) -> dict:
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n} for n in MODELS],
        display_name="residency-bench",
        **options,
    )
    began = time.perf_counter()
    deployment = service.wait(service.create_deployment(spec).id, timeout=300)
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        created = time.perf_counter() - began
        for name in MODELS[:2]:  # warm what is resident, as a user's first requests would
            ttft(deployment.endpoint, deployment.api_key, name)
        seconds, loading = [], 0
        for _ in range(rounds):
            for name in MODELS:
                first, woke = ttft(deployment.endpoint, deployment.api_key, name)
                seconds.append(first)
                loading += woke
        states = service.get_deployment(deployment.id).model_states
        resident = sum(s.state == "ACTIVE" for s in states)
        restarts = sum(s.restarts for s in states)
    finally:
        service.delete(deployment.id)
    return {
        "requests": len(seconds),
        "ttft_p50_s": round(statistics.median(seconds), 3),
        "ttft_p95_s": round(percentile(seconds, 0.95), 3),
        "wakes": loading,
        "resident_at_end": resident,
        "restarts": restarts,
        "create_s": round(created, 2),
    }


def planner(service: AquaLabService, tmp: Path) -> dict:
    """Planned vs measured memory of SmolLM2 and the wide model, served side by side."""
    wide = service.register_model(str(write_llama_gguf(tmp / "wide.gguf", WIDE_SHAPE, smollm2_path())), "wide")
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol"},
            {"model_id": wide.id, "gpu_count": 1, "model_name": "wide"},
        ],
        display_name="planner-bench",
        share_cores=True,
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=300)
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        for name in ("smol", "wide"):  # a request first: RSS as a user's server has it
            ttft(deployment.endpoint, deployment.api_key, name)
        states = service.get_deployment(deployment.id).model_states
    finally:
        service.delete(deployment.id)
    fields = ("planned_mib", "rss_mib", "error_pct", "weights_mib", "kv_cache_mib", "compute_mib")
    return {s.model_name: {f: getattr(s.memory, f) for f in fields} for s in states if s.memory}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="two rounds (what the test runs)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="residency-bench-") as tmp:
        service = AquaLabService(LocalPlatform(data_dir=Path(tmp)))
        cores = service.platform.shape.gpu_count
        rotating = run(service, rounds, max_resident=2)
        shared = run(service, rounds, share_cores=True)
        memory = planner(service, Path(tmp))
    return {
        "models": len(MODELS),
        "cores": cores,
        "rounds": rounds,
        "rotating": rotating,
        "shared": shared,
        "planner": memory,
    }


if __name__ == "__main__":
    result = main()
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:10} {value}")
