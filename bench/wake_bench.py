"""Sleep and wake (issue 28 item 1): time to first token of a sleeping SmolLM2 (the request wakes it)
vs a resident one vs a cold create (create → ACTIVE → first token), and the memory of a sleeping
model server vs a resident one (RSS).

One deployment of two SmolLM2 servers on this machine: ``sleepy`` (``idle_sleep_s`` 1) and
``awake`` (pinned).  Each round waits for ``sleepy`` to sleep, then streams one chat to each.

    python bench/wake_bench.py [--rounds 5] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from aqua_lab.platforms.local import LocalPlatform  # noqa: E402
from aqua_lab.platforms.local.models import SMOLLM2_ID  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello."}]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ttft(endpoint: str, key: str, model: str) -> tuple[float, bool]:
    """(seconds to the first answer chunk, whether a loading comment came first)."""
    began = time.perf_counter()
    body = {"model": model, "messages": MESSAGES, "max_tokens": 4, "stream": True}
    loading = False
    with httpx.stream(
        "POST", f"{endpoint}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith(": loading"):
                loading = True
            elif line.startswith("data: {"):
                first = time.perf_counter() - began
                for _ in lines:  # read to the end: the model is idle again after
                    pass
                return first, loading
    raise RuntimeError(f"no answer from {model}")


def states(platform: LocalPlatform, deployment_id: str) -> dict[str, dict]:
    return {s["model_name"]: s for s in platform.store.model_states(deployment_id)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one round (what the test runs)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="wake-bench-") as tmp:
        platform = LocalPlatform(data_dir=Path(tmp), share=True)
        service = AquaLabService(platform)
        spec = DeploymentSpec(
            models=[
                {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "sleepy", "idle_sleep_s": 1},
                {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "awake", "pinned": True},
            ],
            display_name="wake-bench",
        )
        began = time.perf_counter()
        deployment = service.wait(service.create_deployment(spec).id, timeout=180)
        try:
            assert deployment.state == "ACTIVE", deployment.lifecycle_details
            asked = time.perf_counter()
            cold = asked - began + ttft(deployment.endpoint, deployment.api_key, "awake")[0]  # create → first token
            asleep, resident, rss_asleep, rss_resident, loading_seen = [], [], [], [], 0
            for _ in range(rounds):
                deadline = time.monotonic() + 30
                while states(platform, deployment.id)["sleepy"]["state"] != "SLEEPING":
                    if time.monotonic() > deadline:
                        raise RuntimeError("sleepy did not sleep within 30 s")
                    time.sleep(0.1)
                now = states(platform, deployment.id)
                rss_asleep.append(rss_mib(now["sleepy"]["pid"]))
                rss_resident.append(rss_mib(now["awake"]["pid"]))
                seconds, loading = ttft(deployment.endpoint, deployment.api_key, "sleepy")
                asleep.append(seconds)
                loading_seen += loading
                resident.append(ttft(deployment.endpoint, deployment.api_key, "awake")[0])
            restarts = states(platform, deployment.id)["sleepy"]["restarts"]
        finally:
            service.delete(deployment.id)
    a, r = statistics.median(asleep), statistics.median(resident)
    ra, rr = statistics.median(rss_asleep), statistics.median(rss_resident)
    return {
        "rounds": rounds,
        "ttft_s": {"sleeping": round(a, 3), "resident": round(r, 3), "cold_create": round(cold, 3)},
        "wake_vs_cold": round(a / cold, 3),
        "rss_mib": {"asleep": round(ra, 1), "resident": round(rr, 1)},
        "memory_freed": round(1 - ra / rr, 3),
        # its first sleep frees more than later ones: each wake leaves a few MiB of heap behind
        "memory_freed_first_sleep": round(1 - rss_asleep[0] / rss_resident[0], 3),
        "loading_events": loading_seen,
        "restarts": restarts,
    }


if __name__ == "__main__":
    result = main()
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:16} {value}")
