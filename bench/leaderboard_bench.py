"""How long does a leaderboard take?  100 000 votes over 12 models, 200 bootstrap resamples: the
Bradley-Terry fit alone, and read from the vote store (SQLite) the way the service reads it.
The issue's bar is 2 s for the whole.

    python bench/leaderboard_bench.py            # 100 000 votes, 5 repeats
    python bench/leaderboard_bench.py --quick    # 10 000 votes, 50 resamples, 1 repeat (what the test runs)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli import arguments

from aqua_lab.arena.leaderboard import leaderboard
from aqua_lab.arena.store import VoteStore

VERDICTS = np.array(["a", "b", "tie"])


def votes(n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, k)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    p = 1 / (1 + np.exp(theta[b] - theta[a]))
    u = rng.random(n)
    return a, b, np.where(u < 0.1, 2, np.where(rng.random(n) < p, 0, 1))


def main() -> None:
    args = arguments(
        __doc__, {"votes": 10_000, "resamples": 50, "repeats": 1}, votes=100_000, models=12, resamples=200, repeats=5
    )
    names = [f"model-{i}" for i in range(args.models)]
    a, b, o = votes(args.votes, args.models)
    fits = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        board = leaderboard(names, a, b, o, resamples=args.resamples)
        fits.append(time.perf_counter() - start)
    print(
        f"fit: {args.votes} votes, {args.models} models, {board.resamples} resamples: "
        f"median {statistics.median(fits) * 1000:.0f} ms (max {max(fits) * 1000:.0f} ms)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = VoteStore(Path(tmp) / "local.sqlite")
        store.add(
            [
                {
                    "id": f"v{i}",
                    "deployment_id": "d",
                    "source": "vote",
                    "model_a": names[x],
                    "model_b": names[y],
                    "verdict": str(VERDICTS[z]),
                    "record": {},
                }
                for i, (x, y, z) in enumerate(zip(a.tolist(), b.tolist(), o.tolist(), strict=True))
            ]
        )
        whole = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            outcomes = store.outcomes("d", ("vote",))
            index = {m: i for i, m in enumerate(names)}
            code = {"a": 0, "b": 1, "tie": 2}
            leaderboard(
                names,
                [index[x] for x, _, _ in outcomes],
                [index[y] for _, y, _ in outcomes],
                [code[v] for _, _, v in outcomes],
                resamples=args.resamples,
            )
            whole.append(time.perf_counter() - start)
    print(
        f"read from the store and fitted: median {statistics.median(whole) * 1000:.0f} ms "
        f"(max {max(whole) * 1000:.0f} ms); read and fitted / the fit alone: "
        f"{statistics.median(whole) / statistics.median(fits):.2f}×"
    )


if __name__ == "__main__":
    main()
