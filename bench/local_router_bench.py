"""Local platform: what the router costs, and how fast a deployment comes up.

1. Cold start: create a 2-model SmolLM2 deployment on this CPU and time it to ACTIVE and to the
   first token of each model.
2. Router overhead: time-to-first-token and decode tokens/s of streamed chat completions through
   the deployment's router vs straight to the llama.cpp servers behind it (and through LiteLLM's
   proxy when ``--litellm`` names its executable), at 1 and 8 concurrent streams spread over both
   models.  Targets are measured in interleaved rounds so drift hits all of them alike; the same
   prompt is reused so llama.cpp's prompt cache keeps prefill short and the router's share visible.

3. With ``--transports``: the router's upstream leg (its call to a model server, read chunk by chunk
   until the first token) over aqua_lab's own keep-alive pool, ``httpx.AsyncClient`` and ``aiohttp``,
   interleaved in the same rounds, against the deployment's llama.cpp servers and against a stand-in
   that answers at once (no model competing for the cores, so the clients' own cost shows).  Issue 30's
   rule: use the maintained client unless it adds more than 0.3 ms p50 to the first token.
4. With ``--transports`` (alone with ``--stand-in-only``): the router's own hop, a router in a process
   of its own (on uvloop, as the runtime runs it) in front of that stand-in, against the stand-in
   straight, interleaved, at 1 and 8 streams over kept-alive client connections; ``--old-router FILE``
   adds a router module of another version (a copy of ``router.py``) to the same rounds.  Issue 30's
   goal: the router adds at most 0.5 ms p50 at 1 stream.

Decode tokens/s is tokens after the first over the time between the first and the last, summed over
the streams (a mean of per-stream rates would be swamped by a stream whose tokens reached the client in
one read).

    python bench/local_router_bench.py [--rounds 6] [--tokens 48] [--streams 1 8] [--litellm /path/to/litellm]
        [--transports] [--stand-in-only] [--old-router FILE] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import _http
import _upstream
from _cli import arguments
from _cli import percentile as p
from _http import wait_until_answers
from tornado.httpclient import AsyncHTTPClient

from aqua_lab.domain import DeploymentSpec
from aqua_lab.inference.pool import UpstreamPool
from aqua_lab.inference.sse import SSEParser
from aqua_lab.inference.timeouts import Limits
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.router import OVERHEAD_HEADER
from aqua_lab.platforms.local.runtime import free_port
from aqua_lab.service import AquaLabService

BENCH_KEY = "sk-aqua-lab-bench-only"  # LiteLLM refuses to start without a master key
KEYS: dict[str, str] = {}  # base URL → the key it needs (the deployment's key, for its router and its servers)
PROMPT = [{"role": "user", "content": "List three facts about lighthouses."}]
OVERHEADS: list[float] = []  # what the router says it added to each request (its x-aqua-lab-overhead-ms)


async def stream_once(base: str, model: str, tokens: int) -> tuple[float, int, float]:
    """(ttft_s, tokens after the first, seconds from the first token to the last) of one streamed chat."""
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
    auth = {"Authorization": f"Bearer {KEYS.get(base, BENCH_KEY)}"}
    response = await _http.post(f"{base}/chat/completions", body, auth, on_chunk, 300)
    if response.code != 200:
        raise RuntimeError(f"{base} answered {response.code} for {model}: {b''.join(raw)[:300]!r}")
    if not marks:
        raise RuntimeError(f"no tokens from {base} for {model}")
    if OVERHEAD_HEADER in response.headers:
        OVERHEADS.append(float(response.headers[OVERHEAD_HEADER]))
    return marks[0] - start, len(marks) - 1, marks[-1] - marks[0]


async def burst(targets: dict[str, str], concurrency: int, tokens: int) -> list[tuple[float, int, float]]:
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
    wait_until_answers(f"{base}/health/liveliness", proc, "LiteLLM proxy", 120, 0.5)
    return proc, f"{base}/v1"


class PoolLeg:
    """The router's upstream leg as it is: aqua_lab's keep-alive pool (:mod:`aqua_lab.inference.pool`)."""

    name = "pool"

    def __init__(self) -> None:
        self.pool, self.limits = UpstreamPool(), Limits.defaults()

    async def chunks(self, port: int, payload: bytes, headers: dict[str, str]) -> AsyncIterator[bytes]:
        response = await self.pool.post(port, "/v1/chat/completions", payload, "text/event-stream", headers=headers)
        try:
            async for chunk in response.chunks():
                yield chunk
        finally:
            response.close()

    async def aclose(self) -> None:
        pass


class HttpxLeg:
    """The same leg over ``httpx.AsyncClient`` (kept-alive connections, the pool's limits)."""

    name = "httpx"

    def __init__(self) -> None:
        import httpx

        limits = Limits.defaults()
        timeout = httpx.Timeout(limits.total_s, connect=limits.connect_s, read=limits.first_byte_s)
        self.client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=16))

    async def chunks(self, port: int, payload: bytes, headers: dict[str, str]) -> AsyncIterator[bytes]:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with self.client.stream("POST", url, content=payload, headers=headers) as response:
            async for chunk in response.aiter_raw():
                yield chunk

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpLeg:
    """The same leg over an ``aiohttp.ClientSession``."""

    name = "aiohttp"

    def __init__(self) -> None:
        import aiohttp

        limits = Limits.defaults()
        timeout = aiohttp.ClientTimeout(
            total=limits.total_s, sock_connect=limits.connect_s, sock_read=limits.first_byte_s
        )
        self.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)

    async def chunks(self, port: int, payload: bytes, headers: dict[str, str]) -> AsyncIterator[bytes]:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with self.session.post(url, data=payload, headers=headers) as response:
            async for chunk in response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        await self.session.close()


async def leg_ttft(leg: Any, port: int, model: str, tokens: int, key: str) -> float:
    """Seconds from sending a streamed chat over ``leg`` to the chunk with its first token; the answer is
    read to its end, so the connection goes back to the client's pool as the router's would."""
    body = {"model": model, "messages": PROMPT, "stream": True, "max_tokens": tokens, "temperature": 0, "seed": 1}
    payload = json.dumps(body).encode()
    headers = {"content-type": "application/json", "accept": "text/event-stream", "authorization": f"Bearer {key}"}
    parser, first = SSEParser(), None
    start = time.perf_counter()
    async for chunk in leg.chunks(port, payload, headers):
        if first is None and any('"content":"' in e.data and '"content":""' not in e.data for e in parser.feed(chunk)):
            first = time.perf_counter() - start
    if first is None:
        raise RuntimeError(f"{leg.name}: no token from port {port}")
    return first


ROUTER_SOURCE = """
import asyncio, importlib.util, sys
from pathlib import Path
from aqua_lab.platforms.local.store import Store
from aqua_lab.platforms.local.supervisor import Supervisor
port, upstream, directory, source = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
if source == "-":
    from aqua_lab.platforms.local import router
else:  # another version's router.py, imported as a module of the same package (its relative imports)
    spec = importlib.util.spec_from_file_location("aqua_lab.platforms.local._bench_router", source)
    router = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = router
    spec.loader.exec_module(router)
router.use_fast_loop()
config = {"deployment_id": "bench", "engine": "llama_cpp", "slots": [0], "engine_key": sys.argv[5],
          "multi_model_config": {"models": [{"params": "--served-model-name m", "model_path": "/x.gguf"}]}}
supervisor = Supervisor(config, Store(directory / "state.sqlite"), directory)
for server in supervisor.servers:  # no process: the stand-in is the model's server
    server.state, server.port, server.spec.flags = "ACTIVE", upstream, []
router.make_router(supervisor).listen(port, address="127.0.0.1")
asyncio.get_event_loop().run_forever()
"""


PIPE_SOURCE = """
import asyncio, sys
async def pipe(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()
async def serve(reader, writer):
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
from aqua_lab.platforms.local.router import use_fast_loop
use_fast_loop()
asyncio.get_event_loop().run_until_complete(main())
"""


def print_rounds(
    what: str, ttft: dict[tuple[str, int], list[float]], per_round: dict[tuple[str, int], list[float]]
) -> None:
    """A table of TTFT per target and width, with the spread of the rounds' medians."""
    print(f"{what:<10} {'streams':>7} {'TTFT p50':>10} {'TTFT p90':>10} {'round p50 spread':>17} {'n':>5}")
    for (name, concurrency), values in sorted(ttft.items(), key=lambda kv: kv[0][1]):
        rounds = per_round[(name, concurrency)]
        spread = f"{min(rounds):.2f}–{max(rounds):.2f}"
        print(
            f"{name:<10} {concurrency:>7} {p(values, 50):>8.2f}ms {p(values, 90):>8.2f}ms {spread:>17} {len(values):>5}"
        )


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used, user and system (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_pipe(upstream: int, ready: str = "/v1/ready") -> tuple[subprocess.Popen, int]:
    """The floor of any hop in Python: bytes piped both ways on uvloop, no HTTP read, nothing checked.
    ``ready``: a path of the upstream's that answers without a key."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", PIPE_SOURCE, str(port), str(upstream)])
    wait_until_answers(f"http://127.0.0.1:{port}{ready}", proc, "the byte pipe", 30, 0.05)
    return proc, port


def start_router(upstream: int, source: str = "-") -> tuple[subprocess.Popen, int]:
    """A router (this version's, or the ``router.py`` at ``source``) in a process of its own in front of
    ``upstream``, as the runtime runs it (uvloop, metrics on)."""
    port = free_port()
    directory = tempfile.mkdtemp(prefix="aqua_lab_router_bench_")
    proc = subprocess.Popen(
        [sys.executable, "-c", ROUTER_SOURCE, str(port), str(upstream), directory, source, BENCH_KEY]
    )
    wait_until_answers(f"http://127.0.0.1:{port}/health", proc, "the router", 30, 0.05)
    return proc, port


async def compare_hops(args: argparse.Namespace) -> None:
    """TTFT of streamed chat straight to a stand-in that answers at once and through each router, in
    interleaved rounds (the order rotating), over kept-alive connections (as OpenAI's SDK keeps them)."""
    stand_in, upstream = _upstream.start(prefill_s=0)
    routers = {"router": start_router(upstream)}
    if args.old_router:
        routers["old router"] = start_router(upstream, str(Path(args.old_router).resolve()))
    routers["byte pipe"] = start_pipe(upstream)
    targets = {"direct": upstream, **{name: port for name, (_, port) in routers.items()}}
    leg = PoolLeg()
    names = list(targets)

    async def burst(name: str, concurrency: int) -> list[float]:
        got = await asyncio.gather(*(leg_ttft(leg, targets[name], "m", 4, BENCH_KEY) for _ in range(concurrency)))
        return [t * 1000 for t in got]

    try:
        for name in names:  # connections opened
            await burst(name, max(args.streams))
        ttft: dict[tuple[str, int], list[float]] = {}
        per_round: dict[tuple[str, int], list[float]] = {}
        load = os.getloadavg()
        cpu = {name: cpu_seconds(proc.pid) for name, (proc, _) in routers.items()}
        for i in range(args.hop_rounds):
            for concurrency in args.streams:
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    got = []
                    for _ in range(max(1, 16 // concurrency)):
                        got += await burst(name, concurrency)
                    ttft.setdefault((name, concurrency), []).extend(got)
                    per_round.setdefault((name, concurrency), []).append(statistics.median(got))
        cpu = {name: cpu_seconds(proc.pid) - cpu[name] for name, (proc, _) in routers.items()}
    finally:
        for proc, _ in [*routers.values(), (stand_in, upstream)]:
            proc.kill()
            proc.wait()
    after = os.getloadavg()
    print(
        f"\nthe router's hop, an instant stand-in behind it: {args.hop_rounds} interleaved rounds, "
        f"load average {load[0]:.1f} {load[1]:.1f} → {after[0]:.1f} {after[1]:.1f}"
    )
    print_rounds("target", ttft, per_round)
    for name in routers:
        for concurrency in args.streams:
            (m50, m90), (d50, d90) = ([p(ttft[(t, concurrency)], q) for q in (50, 90)] for t in (name, "direct"))
            diffs = [
                a - b for a, b in zip(per_round[(name, concurrency)], per_round[("direct", concurrency)], strict=True)
            ]
            print(
                f"stand-in: {name} vs direct, {concurrency} stream(s): added TTFT p50 {m50 - d50:+.2f} ms "
                f"({m50 / d50:.2f}×; per round {min(diffs):+.2f} to {max(diffs):+.2f} ms), "
                f"p90 {m90:.2f} vs {d90:.2f} ms = {m90 / d90:.2f}×"
            )
        served = sum(len(ttft[(name, c)]) for c in args.streams)
        print(
            f"stand-in: {name}'s CPU per request {cpu[name] / served * 1e6:.0f} µs (user + system, {served} requests)"
        )


async def compare_transports(upstreams: dict[str, int], key: str, args: argparse.Namespace, label: str) -> None:
    """TTFT of the upstream leg over each client, interleaved: every round runs each client's burst in
    turn, the order rotating so that no client always follows the same one."""
    legs = [PoolLeg(), HttpxLeg(), AiohttpLeg()]
    names = list(upstreams)

    async def burst(leg: Any, concurrency: int, tokens: int) -> list[float]:
        picks = [names[i % len(names)] for i in range(concurrency)]
        return await asyncio.gather(*(leg_ttft(leg, upstreams[n], n, tokens, key) for n in picks))

    try:
        for leg in legs:  # connections opened, prompt cached
            await burst(leg, max(args.streams), 4)
        ttft: dict[tuple[str, int], list[float]] = {}
        per_round: dict[tuple[str, int], list[float]] = {}
        load = os.getloadavg()[0]
        for i in range(args.transport_rounds):
            for concurrency in args.streams:
                for leg in legs[i % 3 :] + legs[: i % 3]:
                    # the first token is what is timed: a short answer keeps many rounds affordable
                    got = [t * 1000 for t in await burst(leg, concurrency, 8)]
                    ttft.setdefault((leg.name, concurrency), []).extend(got)
                    per_round.setdefault((leg.name, concurrency), []).append(statistics.median(got))
    finally:
        for leg in legs:
            await leg.aclose()
    rounds_run = f"{args.transport_rounds} interleaved rounds"
    print(f"\nupstream leg, {label}: {rounds_run}, load average {load:.1f} → {os.getloadavg()[0]:.1f}")
    print_rounds("client", ttft, per_round)
    for concurrency in args.streams:
        base50, base90 = p(ttft[("pool", concurrency)], 50), p(ttft[("pool", concurrency)], 90)
        for name in ("httpx", "aiohttp"):
            m50, m90 = p(ttft[(name, concurrency)], 50), p(ttft[(name, concurrency)], 90)
            # the same difference round by round: how much of it is the machine's noise
            pairs = zip(per_round[(name, concurrency)], per_round[("pool", concurrency)], strict=True)
            diffs = [a - b for a, b in pairs]
            verdict = "within" if m50 - base50 <= 0.3 else "over"
            print(
                f"{label}: {name} vs pool, {concurrency} stream(s): TTFT p50 {m50 / base50:.2f}× "
                f"({m50 - base50:+.2f} ms, {verdict} the 0.3 ms rule; "
                f"per round {min(diffs):+.2f} to {max(diffs):+.2f} ms), p90 {m90 / base90:.2f}×"
            )


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
    pipes: list[subprocess.Popen] = []
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
        if args.pipe:  # what any extra process hop costs on this machine, beside the engines: the floor
            for name, port in ports.items():
                pipe, pipe_port = start_pipe(port, ready="/health")
                pipes.append(pipe)
                targets.setdefault("byte pipe", {})[name] = f"http://127.0.0.1:{pipe_port}/v1"
            KEYS.update({base: server_key for base in targets["byte pipe"].values()})
        # warm the connections and every slot's prompt cache: a slot that has not seen the prompt yet
        # prefills it whole, and those few slow first tokens would all land on whichever target ran first
        for t in targets.values():
            await burst(t, 8, 4)

        results: dict[tuple[str, int], list[tuple[float, int, float]]] = {}
        OVERHEADS.clear()
        load = os.getloadavg()[0]
        for i in range(args.rounds):
            for concurrency in args.streams:
                # the order alternates, so that neither side always follows the other's burst
                for name, t in list(targets.items())[:: 1 if i % 2 == 0 else -1]:
                    results.setdefault((name, concurrency), []).extend(await burst(t, concurrency, args.tokens))
        print(f"{args.rounds} interleaved rounds; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
        print(f"{'target':<8} {'streams':>7} {'TTFT p50':>10} {'TTFT p90':>10} {'decode tok/s':>13} {'n':>4}")
        summary: dict[tuple[str, int], tuple[float, float, float]] = {}
        for (name, concurrency), rows in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            ttft = [r[0] * 1000 for r in rows]
            rate = sum(r[1] for r in rows) / (sum(r[2] for r in rows) or float("nan"))
            summary[(name, concurrency)] = (p(ttft, 50), p(ttft, 90), rate)
            print(
                f"{name:<8} {concurrency:>7} {p(ttft, 50):>8.1f}ms {p(ttft, 90):>8.1f}ms {rate:>13.1f} {len(rows):>4}"
            )
        print()
        for via in [t for t in targets if t != "direct"]:
            for concurrency in args.streams:
                (m_via, n_via, r_via), (m_dir, n_dir, r_dir) = (summary[(t, concurrency)] for t in (via, "direct"))
                print(
                    f"{via} vs direct, {concurrency} stream(s): added TTFT p50 {m_via - m_dir:+.2f} ms, "
                    f"TTFT p90 {n_via:.1f} vs {n_dir:.1f} ms = {n_via / n_dir:.2f}×; "
                    f"decode {100 * r_via / r_dir:.1f} % of direct"
                )
        print(
            f"the router's own share ({OVERHEAD_HEADER}: reading and checking the request, passing the answer's "
            f"headers on): p50 {p(OVERHEADS, 50):.3f} ms, p90 {p(OVERHEADS, 90):.3f} ms over {len(OVERHEADS)} requests"
        )
        if args.transports:
            await compare_transports(ports, server_key, args, "llama.cpp servers")
            stand_in, port = _upstream.start()
            try:
                await compare_transports({"m": port}, "stand-in", args, "instant stand-in")
            finally:
                stand_in.kill()
                stand_in.wait()
            await compare_hops(args)
    finally:
        service.delete(deployment.id)
        if litellm:
            litellm.kill()
        for pipe in pipes:
            pipe.kill()
            pipe.wait()


def main() -> None:
    args = arguments(
        __doc__,
        {"rounds": 1, "tokens": 8, "transport_rounds": 2, "hop_rounds": 2},
        rounds=6,
        tokens=48,
        streams=[1, 8],
        litellm=(None, "path of the `litellm` proxy executable, to compare with it too"),
        transports=(False, "also time the upstream leg over the pool, httpx and aiohttp"),
        transport_rounds=(30, "interleaved rounds of the --transports comparison"),
        hop_rounds=(30, "interleaved rounds of the router's hop in front of the stand-in"),
        stand_in_only=(False, "only the router's hop in front of the stand-in: no deployment"),
        pipe=(False, "also a bare byte pipe in front of each engine: the floor of any extra hop"),
        old_router=(None, "a copy of another version's router.py, measured in the same rounds"),
    )
    asyncio.run(compare_hops(args) if args.stand_in_only else main_async(args))


if __name__ == "__main__":
    main()
