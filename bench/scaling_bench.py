"""Scaling out on one machine, and what the router's metrics cost.

1. Replicas: the same SmolLM2 model on the same total cores, as 1 replica (one llama-server with
   every core) and as 2 replicas (two llama-servers with half the cores each), 8 concurrent streamed
   chat completions per burst; aggregate tokens/s and p95 time to first token, as ratios 2 vs 1.
   Both deployments are up for the whole run and measured in interleaved rounds, so drift and the
   other work on the machine hit both alike.
2. Router overhead with metrics on vs off: two routers in this process in front of one fake model
   server (instant answers, so only the router's own work differs), interleaved blocks of
   streamed and non-streamed requests; the median end-to-end time per request, on minus off, and
   the median x-aqua-lab-overhead-ms each router reports.  Then the recording path alone (what a
   finished request adds: counters, histogram, one JSON parse of the last event), timed in a loop.

    python bench/scaling_bench.py [--rounds 4] [--tokens 32] [--requests 400] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _cli import arguments
from _http import post
from tornado import web
from tornado.httpclient import AsyncHTTPClient

from aqua_lab.domain import DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.engines import LLAMA_CPP
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.router import OVERHEAD_HEADER, StreamWatch, make_router
from aqua_lab.platforms.local.runtime import Supervisor, free_port
from aqua_lab.platforms.local.store import Store
from aqua_lab.service import AquaLabService

PROMPT = [{"role": "user", "content": "List five facts about lighthouses."}]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# 1. replicas ----------------------------------------------------------------------------------------


async def stream_once(base: str, key: str, tokens: int) -> tuple[float, int, float]:
    """(ttft_s, content chunks, end time) of one streamed chat completion."""
    marks: list[float] = []
    buffer = b""

    def on_chunk(chunk: bytes) -> None:
        nonlocal buffer
        buffer += chunk
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            if event.startswith(b"data: {") and b'"content":"' in event:
                marks.append(time.perf_counter())

    body = {"model": "smol", "messages": PROMPT, "stream": True, "max_tokens": tokens, "temperature": 0, "seed": 1}
    start = time.perf_counter()
    response = await post(f"{base}/chat/completions", body, {"Authorization": f"Bearer {key}"}, on_chunk)
    if response.code != 200 or not marks:
        raise RuntimeError(f"{base} answered {response.code} with {len(marks)} tokens")
    return marks[0] - start, len(marks), time.perf_counter()


async def burst(deployment, streams: int, tokens: int) -> tuple[float, list[float]]:
    """(aggregate tokens/s, TTFTs) of ``streams`` concurrent streams."""
    start = time.perf_counter()
    rows = await asyncio.gather(*(stream_once(deployment.endpoint, deployment.api_key, tokens) for _ in range(streams)))
    elapsed = max(r[2] for r in rows) - start
    return sum(r[1] for r in rows) / elapsed, [r[0] for r in rows]


async def replicas(args: argparse.Namespace) -> None:
    # the three deployments are up at once on the same cores, on purpose: each measured with the others idle
    platform = LocalPlatform(data_dir=Path(tempfile.mkdtemp(prefix="aqua_lab_scaling_bench_")), share=True)
    service = AquaLabService(platform)
    cores = platform.shape.gpu_count
    # (replicas, slots per replica): the defaults, and one replica with as many slots as two have
    configs = [(1, 4), (1, 8), (2, 4)]
    made = {}
    try:
        for count, slots in configs:
            params = f"--n_ctx 1024 --max-num-seqs {slots}"
            spec = DeploymentSpec(
                models=[{"model_id": SMOLLM2_ID, "gpu_count": cores, "model_name": "smol", "params": params}],
                instance_shape=platform.shape.name,
                display_name=f"bench {count}x{slots}",
                instance_count=count,
            )
            made[(count, slots)] = d = service.wait(service.create_deployment(spec).id, timeout=180)
            assert d.state == "ACTIVE", d.lifecycle_details
        for d in made.values():  # warm: load pages, fill the prompt cache
            await burst(d, 2, 4)
        rates: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
        ttfts: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
        for i in range(args.rounds):
            for config in configs if i % 2 == 0 else configs[::-1]:
                rate, firsts = await burst(made[config], args.streams, args.tokens)
                rates[config].append(rate)
                ttfts[config] += firsts
        load = os.getloadavg()[0]
        print(
            f"SmolLM2 on {cores} cores, {args.streams} concurrent streams × {args.tokens} tokens, {args.rounds} "
            f"interleaved rounds (load average {load:.1f} on {os.cpu_count()} CPUs at the end)"
        )
        heads = ("cores each", "slots each", "tok/s (agg)", "TTFT p50", "TTFT p95")
        print(f"{'replicas':>8} " + " ".join(f"{h:>12}" for h in heads))
        for count, slots in configs:
            c = (count, slots)
            print(
                f"{count:>8} {max(1, cores // count):>12} {slots:>12} {statistics.median(rates[c]):>12.1f} "
                f"{pct(ttfts[c], 50) * 1000:>10.0f}ms {pct(ttfts[c], 95) * 1000:>10.0f}ms"
            )
        for base in ((1, 8), (1, 4)):
            rate_ratio = statistics.median(rates[(2, 4)]) / statistics.median(rates[base])
            ttft_ratio = pct(ttfts[(2, 4)], 95) / pct(ttfts[base], 95)
            print(
                f"2 replicas × 4 slots vs 1 replica × {base[1]} slots: aggregate tokens/s ×{rate_ratio:.2f}; "
                f"p95 TTFT ×{ttft_ratio:.2f} (lower is better)"
            )
        print()
    finally:
        for d in made.values():
            service.delete(d.id)


# 2. router overhead ---------------------------------------------------------------------------------

CHUNKS = [b'data: {"choices":[{"index":0,"delta":{"content":" tok"}}],"object":"chat.completion.chunk"}\n\n'] * 16 + [
    b'data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}],"timings":{"predicted_n":16}}\n\n',
    b"data: [DONE]\n\n",
]
WHOLE = json.dumps(
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}], "usage": {"completion_tokens": 16}}
).encode()


class FakeEngine(web.RequestHandler):
    async def post(self) -> None:
        if json.loads(self.request.body).get("stream"):
            self.set_header("Content-Type", "text/event-stream")
            for chunk in CHUNKS:
                self.write(chunk)
                await self.flush()
        else:
            self.set_header("Content-Type", "application/json")
            self.write(WHOLE)


def fake_supervisor(engine_port: int, directory: Path) -> Supervisor:
    config = {
        "deployment_id": "bench",
        "engine": LLAMA_CPP,
        "slots": [0],
        "engine_key": "bench-key",
        "multi_model_config": {"models": [{"params": "--served-model-name smol", "model_path": "/x.gguf"}]},
    }
    supervisor = Supervisor(config, Store(directory / "state.sqlite"), directory)
    for server in supervisor.servers:
        server.state, server.port = "ACTIVE", engine_port
        server.spec.flags = []
    return supervisor


async def timed(port: int, stream: bool) -> tuple[float, float]:
    body = {"model": "smol", "messages": PROMPT, "stream": stream, "max_tokens": 16}
    start = time.perf_counter()
    response = await post(f"http://127.0.0.1:{port}/v1/chat/completions", body, {"Authorization": "Bearer bench-key"})
    response.rethrow()
    return time.perf_counter() - start, float(response.headers[OVERHEAD_HEADER])


async def overhead(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="aqua_lab_router_bench_"))
    engine_port = free_port()
    web.Application([(r"/v1/chat/completions", FakeEngine)]).listen(engine_port, address="127.0.0.1")
    ports = {}
    for on in (True, False):
        router = make_router(fake_supervisor(engine_port, directory), metrics=on)
        ports[on] = free_port()
        router.listen(ports[on], address="127.0.0.1")
    for on in (True, False):  # warm the connections
        for stream in (True, False):
            await timed(ports[on], stream)
    wall: dict[tuple[bool, bool], list[float]] = {}
    header: dict[tuple[bool, bool], list[float]] = {}
    block = 25
    for i in range(args.requests // block):
        for on in (True, False) if i % 2 == 0 else (False, True):
            for stream in (True, False):
                for _ in range(block):
                    w, h = await timed(ports[on], stream)
                    wall.setdefault((on, stream), []).append(w * 1000)
                    header.setdefault((on, stream), []).append(h)
    print(f"router with metrics on vs off, one fake engine, {args.requests} requests of each kind per router")
    for stream in (True, False):
        kind = "streamed" if stream else "whole"
        on, off = statistics.median(wall[(True, stream)]), statistics.median(wall[(False, stream)])
        print(
            f"{kind:>8}: median end to end {on:.3f} ms on, {off:.3f} ms off → added {on - off:+.3f} ms; "
            f"x-aqua-lab-overhead-ms median {statistics.median(header[(True, stream)]):.3f} on, "
            f"{statistics.median(header[(False, stream)]):.3f} off"
        )

    # the recording path alone: what each finished request adds when metrics are on
    supervisor = fake_supervisor(engine_port, directory)
    from aqua_lab.platforms.local.metrics import RouterMetrics

    metrics = RouterMetrics(supervisor)
    server = supervisor.servers[0]
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        watch = StreamWatch()
        watch.events, watch.last = 17, CHUNKS[-2].removeprefix(b"data: ").strip()
        metrics.record(server, "smol", 200, 0.01, watch.tokens(), 0.02, None)
    per = (time.perf_counter() - start) / n * 1e6
    print(f"recording one finished request (counters, histogram, sample, token count): {per:.1f} µs (goal ≤ 100 µs)")


async def main_async(args: argparse.Namespace) -> None:
    AsyncHTTPClient.configure(None, max_clients=64)
    if not args.skip_replicas:
        await replicas(args)
    await overhead(args)


def main() -> None:
    args = arguments(
        __doc__,
        {"rounds": 1, "tokens": 8, "requests": 50},
        rounds=4,
        streams=8,
        tokens=32,
        requests=400,
        skip_replicas=(False, "only the router overhead part"),
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
