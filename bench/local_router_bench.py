"""Local platform: what the router costs, and how fast a deployment comes up.

1. Cold start: create a 2-model SmolLM2 deployment on this CPU and time it to ACTIVE and to the
   first token of each model.
2. Router overhead: time-to-first-token and decode tokens/s of streamed chat completions through
   the deployment's router vs straight to the llama.cpp servers behind it (and through LiteLLM's
   proxy when ``--litellm`` names its executable), at 1 and 8 concurrent streams spread over both
   models.  Targets are measured in interleaved rounds so drift hits all of them alike; the same
   prompt is reused so llama.cpp's prompt cache keeps prefill short and the router's share visible.

    python bench/local_router_bench.py [--rounds 6] [--tokens 48] [--litellm /path/to/litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.inference.sse import SSEParser
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.runtime import free_port
from aqua_lab.service import AquaLabService

BENCH_KEY = "sk-aqua-lab-bench-only"  # LiteLLM refuses to start without a master key
KEYS: dict[str, str] = {}  # base URL → the key it needs (the deployment's key, for its router and its servers)
PROMPT = [{"role": "user", "content": "List three facts about lighthouses."}]


async def stream_once(base: str, model: str, tokens: int) -> tuple[float, float, int]:
    """(ttft_s, decode_tokens_per_s, chunks) of one streamed chat completion."""
    parser = SSEParser()
    marks: list[float] = []
    start = time.perf_counter()

    raw: list[bytes] = []

    def on_chunk(chunk: bytes) -> None:
        raw.append(chunk)
        for event in parser.feed(chunk):
            if event.done:
                continue
            data = json.loads(event.data)
            if data.get("choices") and data["choices"][0].get("delta", {}).get("content"):
                marks.append(time.perf_counter())

    body = {"model": model, "messages": PROMPT, "stream": True, "max_tokens": tokens, "temperature": 0, "seed": 1}
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(
            f"{base}/chat/completions",
            method="POST",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEYS.get(base, BENCH_KEY)}"},
            streaming_callback=on_chunk,
            request_timeout=300,
        ),
        raise_error=False,
    )
    if response.code != 200:
        raise RuntimeError(f"{base} answered {response.code} for {model}: {b''.join(raw)[:300]!r}")
    if not marks:
        raise RuntimeError(f"no tokens from {base} for {model}")
    decode = (len(marks) - 1) / (marks[-1] - marks[0]) if len(marks) > 1 else 0.0
    return marks[0] - start, decode, len(marks)


async def burst(targets: dict[str, str], concurrency: int, tokens: int) -> list[tuple[float, float, int]]:
    names = list(targets)
    return await asyncio.gather(
        *(stream_once(targets[names[i % len(names)]], names[i % len(names)], tokens) for i in range(concurrency))
    )


def server_secret(pid: int) -> str:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"LLAMA_API_KEY="))


def start_litellm(exe: str, upstreams: dict[str, str], key: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    lines = ["model_list:"]
    for name, base in upstreams.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{name}",
            f"      api_base: {base}",
            f"      api_key: {key}",
        ]
    config = Path(tempfile.mkdtemp()) / "litellm.yaml"
    config.write_text("\n".join(lines) + "\n")
    # no cost-map download (this machine reaches no such host) and a key, without which it will not start
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": BENCH_KEY,
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    proc = subprocess.Popen(
        [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/health/liveliness", timeout=1)
            return proc, f"{base}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("LiteLLM proxy did not start")


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main_async(args: argparse.Namespace) -> None:
    AsyncHTTPClient.configure(None, max_clients=64)
    platform = LocalPlatform(data_dir=Path(tempfile.mkdtemp(prefix="aqua_lab_bench_")))
    service = AquaLabService(platform)
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol-a"},
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol-b"},
        ],
        instance_shape=platform.shape.name,
        display_name="bench",
    )
    litellm = None
    t0 = time.perf_counter()
    deployment = service.create_deployment(spec)
    try:
        deployment = service.wait(deployment.id, timeout=120, interval=0.05)
        t_active = time.perf_counter() - t0
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        KEYS[deployment.endpoint] = deployment.api_key
        await asyncio.gather(*(stream_once(deployment.endpoint, n, 1) for n in ("smol-a", "smol-b")))
        t_first = time.perf_counter() - t0
        print(
            f"cold start, 2-model CPU deployment: ACTIVE after {t_active:.2f} s, "
            f"first token of both models after {t_first:.2f} s (target ≤ 15 s)\n"
        )

        states = platform.store.model_states(deployment.id)
        ports = {s["model_name"]: s["port"] for s in states}
        targets = {
            "router": {n: deployment.endpoint for n in ports},
            "direct": {n: f"http://127.0.0.1:{port}/v1" for n, port in ports.items()},
        }
        # the servers answer only their router's secret (not the deployment's key): it is in their
        # environment, which this user may read
        server_key = server_secret(states[0]["pid"])
        KEYS.update({base: server_key for base in targets["direct"].values()})
        if args.litellm:
            litellm, base = start_litellm(args.litellm, targets["direct"], server_key)
            targets["litellm"] = {n: base for n in ports}
        for t in targets.values():  # warm the prompt cache and the connections
            await burst(t, 2, 4)

        results: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
        for _ in range(args.rounds):
            for concurrency in (1, 8):
                for name, t in targets.items():
                    results.setdefault((name, concurrency), []).extend(await burst(t, concurrency, args.tokens))

        print(f"{'target':<8} {'streams':>7} {'TTFT p50':>10} {'TTFT p90':>10} {'decode tok/s':>13} {'n':>4}")
        summary: dict[tuple[str, int], tuple[float, float]] = {}
        for (name, concurrency), rows in results.items():
            ttft = [r[0] * 1000 for r in rows]
            rate = statistics.mean(r[1] for r in rows)
            summary[(name, concurrency)] = (p(ttft, 50), rate)
            print(
                f"{name:<8} {concurrency:>7} {p(ttft, 50):>8.1f}ms {p(ttft, 90):>8.1f}ms {rate:>13.1f} {len(rows):>4}"
            )
        print()
        for via in [t for t in targets if t != "direct"]:
            for concurrency in (1, 8):
                (t_via, r_via), (t_dir, r_dir) = summary[(via, concurrency)], summary[("direct", concurrency)]
                print(
                    f"{via} vs direct, {concurrency} stream(s): added TTFT p50 {t_via - t_dir:+.2f} ms; "
                    f"decode {100 * r_via / r_dir:.1f} % of direct"
                )
    finally:
        service.delete(deployment.id)
        if litellm:
            litellm.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--litellm", help="path of the `litellm` proxy executable, to compare with it too")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
