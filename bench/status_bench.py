"""Does a burst of aqua_lab reads slow Jupyter down?  ``GET /api/status`` latency (p50/p99) while
waves of 100 concurrent ``GET aqua/deployments`` run, on this tree's server and — side by side in
the same run — on a baseline checkout's (``--baseline``: e.g. a worktree of main before the change).

Each server gets the same local state: ``--deployments`` deployments in its SQLite file (rows only,
whose runtime is a sleeping process, so no model competes for the cores).

    python bench/status_bench.py --baseline /path/to/main [--samples 200] [--concurrency 100]
    python bench/status_bench.py --load-path api/status   # the floor: waves of Jupyter's own route
    python bench/status_bench.py --quick   # small, and this tree against itself when no --baseline (the test)

On a 2-core machine the floor is what Jupyter itself pays for 100 requests queued on its event loop
(~250 ms p99 with Jupyter's trivial ``/api/status`` as the load): aqua_lab's reads should add
nothing to it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import arguments
from server_bench import TOKEN, quantile, start_server
from tornado.httpclient import AsyncHTTPClient

from aqua_lab.platforms.local.store import Store

AUTH = {"Authorization": f"token {TOKEN}"}


def seed(data_dir: str, count: int, holder: int) -> None:
    store = Store(Path(data_dir) / "local.sqlite")
    for i in range(count):
        deployment_id = f"local-bench{i:02d}"
        store.add_deployment(
            {
                "id": deployment_id,
                "display_name": f"bench {i}",
                "state": "ACTIVE",
                "shape": "LOCAL",
                "deployment_type": "MULTI",
                "router_port": 1,
                "record": {"models": [{"model_id": "m", "model_name": f"m{j}", "gpu_count": 1} for j in range(2)]},
            },
            [{"model_name": f"m{j}", "model_id": "m"} for j in range(2)],
        )
        store.update_deployment(deployment_id, runtime_pid=holder)  # alive: the platform checks it


async def status_samples(base: str, samples: int, interval: float = 0.01) -> list[float]:
    out = []
    http = AsyncHTTPClient()
    for _ in range(samples):
        start = time.perf_counter()
        await http.fetch(f"{base}api/status", headers=AUTH)
        out.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(interval)
    return out


def waves(base: str, concurrency: int, stop, answered, path: str = "aqua/deployments") -> None:
    """Waves of ``concurrency`` simultaneous deployment lists until ``stop`` is set, counted in
    ``answered``.  It runs in its own process: the client's work must not delay the sampler's loop."""

    async def run() -> None:
        AsyncHTTPClient.configure(None, max_clients=concurrency + 8)
        http = AsyncHTTPClient()
        while not stop.is_set():
            replies = await asyncio.gather(
                *[http.fetch(f"{base}{path}", headers=AUTH, raise_error=False) for _ in range(concurrency)]
            )
            assert all(r.code == 200 for r in replies), {r.code for r in replies}
            with answered.get_lock():
                answered.value += len(replies)

    asyncio.run(run())


async def measure(label: str, tree: str, args: argparse.Namespace, holder: int) -> dict[str, float]:
    data_dir = tempfile.mkdtemp(prefix="aqua_lab_status_bench_")
    seed(data_dir, args.deployments, holder)
    proc, base = start_server(data_dir, {"PYTHONPATH": tree})
    try:
        await status_samples(base, 20)  # warm up
        idle = await status_samples(base, args.samples)
        stop, answered = multiprocessing.Event(), multiprocessing.Value("i", 0)
        load = multiprocessing.Process(target=waves, args=(base, args.concurrency, stop, answered, args.load_path))
        load.start()
        while not answered.value:  # the load is on
            await asyncio.sleep(0.05)
        started, before = time.perf_counter(), answered.value
        loaded = await status_samples(base, args.samples)
        rate = (answered.value - before) / (time.perf_counter() - started)
        stop.set()
        load.join(60)
    finally:
        proc.terminate()
        proc.wait(10)
    result = {
        "idle p50": quantile(idle, 50),
        "idle p99": quantile(idle, 99),
        "loaded p50": quantile(loaded, 50),
        "loaded p99": quantile(loaded, 99),
        "lists/s": rate,
    }
    print(
        f"  {label:<9} idle p50 {result['idle p50']:6.2f} ms  p99 {result['idle p99']:6.2f} ms │ under load "
        f"p50 {result['loaded p50']:6.2f} ms  p99 {result['loaded p99']:7.2f} ms │ {rate:6.0f} lists/s answered"
    )
    return result


async def main_async(args: argparse.Namespace) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    here = str(Path(__file__).resolve().parent.parent)
    trees = [("this tree", here)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    print(
        f"GET /api/status (n={args.samples}) while waves of {args.concurrency} concurrent GET aqua/deployments run "
        f"({args.deployments} deployments listed)"
    )
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    try:
        for _ in range(args.rounds):  # interleaved, so that a busy moment on the machine hits both
            for label, tree in trees:
                results[label].append(await measure(label, tree, args, holder.pid))
    finally:
        holder.terminate()
    if args.baseline:
        mine = statistics.median(r["loaded p99"] for r in results["this tree"])
        base = statistics.median(r["loaded p99"] for r in results["baseline"])
        rate = statistics.median(r["lists/s"] for r in results["this tree"]) / statistics.median(
            r["lists/s"] for r in results["baseline"]
        )
        print(
            f"\n/api/status p99 under load (median of {args.rounds} rounds): this tree {mine:.1f} ms, baseline "
            f"{base:.1f} ms → {base / mine:.1f}x lower (goal ≤ 50 ms); deployment lists answered {rate:.2f}x"
        )


def main() -> None:
    args = arguments(
        __doc__,
        {"samples": 30, "concurrency": 10, "deployments": 2, "rounds": 1},
        baseline=(None, "a checkout of aqua_lab to compare with (its repository root); --quick: this one"),
        samples=200,
        concurrency=100,
        deployments=8,
        rounds=2,
        load_path=("aqua/deployments", "what the waves ask for (api/status: Jupyter's own floor)"),
    )
    if args.quick:
        args.baseline = args.baseline or str(Path(__file__).resolve().parent.parent)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
