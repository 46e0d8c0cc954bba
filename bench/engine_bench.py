"""The local CPU engine, measured side by side in one run on this machine.

A. Build/runtime settings (the AMX issue): llama-server as aqua_lab builds it (native, AMX compiled
   out, weight repacking on) vs the same binary with ``--no-repack`` (llama.cpp's "extra buffer types"
   off: the safe baseline), at 1 and 2 threads: time to first token and decode tokens/s of one stream.
   Also probes the CPU's AMX unit directly (a 16×16×64 int8 tile product checked against a scalar
   reference), which tells a broken host from a broken kernel.
B. Old engine vs new (the batching issue), two SmolLM2 servers pinned to one core each:
   llama-cpp-python's server (``--old-python``: a Python that has ``llama_cpp.server``) vs llama-server
   with 4 slots: 1 stream, then 8 concurrent streams over both models (aggregate decode tokens/s, TTFT
   p50/p90), and each server's RSS afterwards.
C. 32 concurrent streams through a real two-model local deployment (router, key, queue limit):
   errors, refusals (429) and TTFT p50/p99.

    python bench/engine_bench.py [--rounds 3] [--tokens 32] [--old-python /path/to/python] [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _cli import arguments
from _http import wait_until_answers
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.inference.sse import SSEParser
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local import engine_build as E
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.platforms.local.runtime import free_port
from aqua_lab.service import AquaLabService

PROMPT = [{"role": "user", "content": "List three facts about lighthouses."}]
AMX_PROBE = Path(__file__).with_name("amx_probe.c")


async def stream(base: str, model: str, tokens: int, key: str | None = None) -> dict:
    """One streamed chat completion: ttft, decode rate, tokens, or the HTTP status it was refused with."""
    parser, marks, start = SSEParser(), [], time.perf_counter()

    def on_chunk(chunk: bytes) -> None:
        for event in parser.feed(chunk):
            if not event.done and event.event != "error":
                data = json.loads(event.data)
                if data.get("choices") and data["choices"][0].get("delta", {}).get("content"):
                    marks.append(time.perf_counter())

    body = {"model": model, "messages": PROMPT, "stream": True, "max_tokens": tokens, "temperature": 0, "seed": 1}
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(f"{base}/chat/completions", method="POST", body=json.dumps(body), headers=headers,
                    streaming_callback=on_chunk, request_timeout=300),
        raise_error=False,
    )  # fmt: skip
    if response.code != 200:
        return {"status": response.code}
    if not marks:
        return {"status": "empty"}
    decode = (len(marks) - 1) / (marks[-1] - marks[0]) if len(marks) > 1 and marks[-1] > marks[0] else None
    return {"status": 200, "ttft": marks[0] - start, "decode": decode, "tokens": len(marks), "end": marks[-1]}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_new(port: int, threads: int, cores: list[int], alias: str, extra: list[str], slots: int = 4):
    cmd = [str(E.binary_path()), "--model", str(smollm2_path()), "--alias", alias, "--host", "127.0.0.1",
           "--port", str(port), "--threads", str(threads), "--threads-batch", str(threads), "--parallel", str(slots),
           "--ctx-size", str(1024 * slots), "--no-kv-unified", "--cache-ram", "256", "--no-webui", *extra]  # fmt: skip
    return _spawn(cmd, cores, f"http://127.0.0.1:{port}/health")


def start_old(python: str, port: int, threads: int, cores: list[int], alias: str):
    cmd = [python, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads), "--n_threads_batch",
           str(threads), "--n_ctx", "1024", "--interrupt_requests", "False"]  # fmt: skip
    return _spawn(cmd, cores, f"http://127.0.0.1:{port}/v1/models")


def _spawn(cmd: list[str], cores: list[int], ready: str):
    env = {**os.environ, "OMP_NUM_THREADS": str(len(cores))}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )  # fmt: skip
    wait_until_answers(ready, proc, ready, 120, 0.1)
    return proc


def stop(*procs) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def amx_probe() -> str:
    if "amx_int8" not in E.cpu_facts()["flags"]:
        return "this CPU reports no AMX"
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "amx_probe"
        built = subprocess.run(["gcc", "-O2", "-mamx-tile", "-mamx-int8", str(AMX_PROBE), "-o", str(exe)],
                               capture_output=True, text=True)  # fmt: skip
        if built.returncode:
            return f"probe did not compile: {built.stderr.strip()[:200]}"
        run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
        verdict = "works" if run.returncode == 0 else f"FAILS (exit {run.returncode})"
        return f"AMX on this host {verdict}: {run.stdout.strip()}"


async def part_a(rounds: int, tokens: int) -> None:
    print("\nA. llama-server settings, one stream (ttft ms / decode tok/s; median of rounds, interleaved)")
    cores = sorted(os.sched_getaffinity(0))
    for threads in (1, 2):
        mine = cores[:threads]
        variants = {"chosen (native, no AMX, repack)": [], "--no-repack (extra bufts off)": ["--no-repack"]}
        procs, results = {}, {name: [] for name in variants}
        for name, extra in variants.items():
            port = free_port()
            procs[name] = (port, start_new(port, threads, mine, "m", extra, slots=1))
        try:
            for _ in range(rounds):
                for name, (port, _) in procs.items():
                    results[name].append(await stream(f"http://127.0.0.1:{port}/v1", "m", tokens))
        finally:
            stop(*(proc for _, proc in procs.values()))
        rows = {}
        for name, runs in results.items():
            ok = [r for r in runs if r["status"] == 200]
            rows[name] = (statistics.median(r["ttft"] for r in ok) * 1000, statistics.median(r["decode"] for r in ok))
            print(f"  {threads} thread(s)  {name:34s} ttft {rows[name][0]:7.1f} ms  decode {rows[name][1]:6.1f} tok/s")
        (c_ttft, c_dec), (b_ttft, b_dec) = rows.values()
        print(f"  {threads} thread(s)  ratio chosen/baseline: decode {c_dec / b_dec:.3f}×, ttft {c_ttft / b_ttft:.3f}×")
    print(f"  {amx_probe()}")


async def concurrent(ports: dict[str, int], n: int, tokens: int, key: str | None = None, base=None) -> dict:
    names = list(ports)
    started = time.perf_counter()
    jobs = [
        stream(base or f"http://127.0.0.1:{ports[names[i % len(names)]]}/v1", names[i % len(names)], tokens, key)
        for i in range(n)
    ]
    runs = await asyncio.gather(*jobs)
    ok = [r for r in runs if r["status"] == 200]
    end = max((r["end"] for r in ok), default=started)
    return {
        "ok": len(ok),
        "refused": sum(1 for r in runs if r["status"] == 429),
        "errors": sum(1 for r in runs if r["status"] not in (200, 429)),
        "tokens_per_s": sum(r["tokens"] for r in ok) / (end - started) if ok else 0.0,
        "ttft": [r["ttft"] for r in ok],
    }


async def part_b(rounds: int, tokens: int, old_python: str | None) -> None:
    print("\nB. old engine (llama_cpp.server) vs new (llama-server, 4 slots); 2 models, 1 core each")
    cores = sorted(os.sched_getaffinity(0))
    pick = [[cores[0]], [cores[1 % len(cores)]]]
    engines = {"new": lambda port, i, name: start_new(port, 1, pick[i], name, [])}
    if old_python:
        engines["old"] = lambda port, i, name: start_old(old_python, port, 1, pick[i], name)
    else:
        print("  (no --old-python given: the old engine is not measured)")
    summary = {}
    for label, start in engines.items():
        ports = {"a": free_port(), "b": free_port()}
        procs = [start(port, i, name) for i, (name, port) in enumerate(ports.items())]
        try:
            single, multi = [], []
            for _ in range(rounds):
                single.append(await stream(f"http://127.0.0.1:{ports['a']}/v1", "a", tokens))
                multi.append(await concurrent(ports, 8, tokens))
            rss = [rss_mb(proc.pid) for proc in procs]
        finally:
            stop(*procs)
        ttfts = [t for m in multi for t in m["ttft"]]
        summary[label] = {
            "1 ttft ms": statistics.median(r["ttft"] for r in single) * 1000,
            "1 decode": statistics.median(r["decode"] for r in single),
            "8 tok/s": statistics.median(m["tokens_per_s"] for m in multi),
            "8 ttft p50 ms": p(ttfts, 0.5) * 1000,
            "8 ttft p90 ms": p(ttfts, 0.9) * 1000,
            "8 errors": sum(m["errors"] + m["refused"] for m in multi),
            "rss MB": statistics.mean(rss),
        }
    for key in next(iter(summary.values())):
        cells = "  ".join(f"{label} {values[key]:8.1f}" for label, values in summary.items())
        ratio = (
            f"  new/old {summary['new'][key] / summary['old'][key]:.2f}×"
            if "old" in summary and summary["old"][key]
            else ""
        )
        print(f"  {key:14s} {cells}{ratio}")


async def part_c(tokens: int, streams: int = 32) -> None:
    print(f"\nC. {streams} concurrent streams through a local two-model deployment (router, key, queue limit)")
    with tempfile.TemporaryDirectory() as tmp:
        service = AquaLabService(LocalPlatform(data_dir=Path(tmp)))
        shape = service.shapes()[0]
        half = max(1, shape.gpu_count // 2)
        spec = DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": half, "model_name": n} for n in ("a", "b")],
            instance_shape=shape.name,
            display_name="bench",
        )
        deployment = service.wait(service.create_deployment(spec).id, timeout=120)
        try:
            result = await concurrent({"a": 0, "b": 0}, streams, tokens, deployment.api_key, base=deployment.endpoint)
        finally:
            service.delete(deployment.id)
    print(
        f"  ok {result['ok']}/{streams}, refused (429) {result['refused']}, errors {result['errors']}, "
        f"aggregate {result['tokens_per_s']:.1f} tok/s, ttft p50 {p(result['ttft'], 0.5) * 1000:.0f} ms, "
        f"p99 {p(result['ttft'], 0.99) * 1000:.0f} ms"
    )


async def main() -> None:
    args = arguments(
        __doc__,
        {"rounds": 1, "tokens": 8},
        rounds=3,
        tokens=32,
        old_python=(None, "a Python with llama-cpp-python[server] for the old engine"),
    )
    AsyncHTTPClient.configure(None, max_clients=64)
    print(f"engine {E.binary_path()}\nllama.cpp system_info: {E.system_info()}")
    await part_a(args.rounds, args.tokens)
    await part_b(args.rounds, args.tokens, args.old_python)
    await part_c(args.tokens, 8 if args.quick else 32)


if __name__ == "__main__":
    asyncio.run(main())
