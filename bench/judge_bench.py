"""The pairwise judge's cost and agreement (issue 27): judge requests per row (2 × C(N, 2), both orders
of every pair), the judge pass's wall time against the generation pass's, how busy the judge's slots
were, and how often the judge prefers a right answer to a wrong one.

N SmolLM2 models (one core each; models beyond the machine's cores go to a second deployment that
shares their cores, said in the output) answer rows of the bundled sample; then the first of them
judges every row, with the evaluation job's own generation (``runner.generate``) and judge
(``evaluation_job.judge_pass``: a llama.cpp judge answers under a grammar).  The two passes run one
after the other here so each is timed alone (the job overlaps them: a row is judged once every model
answered it).  Slot use is the time-integral of the judge's requests in flight over concurrency × wall.

``--agreement``: no generation; on each row model "right" answers with the reference and model "wrong"
with another row's reference (a derangement), and the first model judges both orders: the share of
pairs whose verdict is "right" (agreement), the share of single-order answers that preferred it, and
the inconsistency rate, constrained (grammar) and free-text.  It measures the plumbing, not judge quality.

    python bench/judge_bench.py [--models 3] [--rows 20] [--max_tokens 48]
    python bench/judge_bench.py --agreement [--rows 20]
    python bench/judge_bench.py --quick          # 2 models, 3 rows: the plumbing, in about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from pathlib import Path


class SlotMeter:
    """Requests in flight over time, to say which share of the judge's slots were kept busy."""

    def __init__(self) -> None:
        self.in_flight, self.busy, self.last, self.peak = 0, 0.0, None, 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.busy += self.in_flight * (now - self.last)
        self.last = now

    def wrap(self, ask):
        async def measured(messages, *grammar):
            self._tick()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                return await ask(messages, *grammar)
            finally:
                self._tick()
                self.in_flight -= 1

        return measured


def _chat(platform, where: dict):
    """A chat to each model through the router of the deployment that serves it."""
    from aqua_lab.inference import client

    async def chat(model: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        url, headers = platform.inference_request(where[model], "/v1/chat/completions", data, False)
        return await client.post_json(url, data, headers)

    return chat


def _judging(platform, deployment, rows, models, judge: str, max_tokens: int, meter: SlotMeter | None = None):
    from aqua_lab.evaluation.metrics import check_metrics
    from aqua_lab.platforms.local.evaluation_job import judge_pass

    [(_, args)] = check_metrics([{"name": "pairwise_judge", "args": {"judge": judge, "max_tokens": max_tokens}}])
    row = platform.store.deployment(deployment.id)
    judging = judge_pass(platform, deployment, row, rows, models, {"pairwise_judge": args})
    if meter is not None:
        judging._ask = meter.wrap(judging._ask)  # the judge's own requests, inside its concurrency gate
    return judging


async def passes(platform, deployments, rows, models, max_tokens: int) -> dict:
    from aqua_lab.evaluation.runner import generate
    from aqua_lab.platforms.local.evaluation_job import model_concurrency

    where = {m.model_name: d for d in deployments for m in d.models}
    concurrency = {}
    for d in deployments:
        names = [m.model_name for m in d.models]
        concurrency.update(model_concurrency(platform.store.deployment(d.id), names, platform.engine))
    started = time.perf_counter()
    params = {"max_tokens": max_tokens, "temperature": 0}
    done = await generate(rows, models, _chat(platform, where), params, concurrency=concurrency)
    generation_s = time.perf_counter() - started

    meter = SlotMeter()
    judging = _judging(platform, deployments[0], rows, models, models[0], max_tokens, meter)
    slots = judging._gate._value
    started = time.perf_counter()
    await judging.finish(done)
    judge_s = time.perf_counter() - started
    report = judging.pairwise_report()
    n = len(models)
    return {
        "models": n,
        "rows": len(rows),
        "requests_per_row_expected": 2 * math.comb(n, 2),
        "requests_per_row_made": report["requests_per_row"],
        "judge_requests": report["requests"],
        "retries": report["retries"],
        "unparsed": report["unparsed"],
        "errors": report["errors"],
        "last_error": report["last_error"],
        "constrained": report["constrained"],
        "inconsistency_rate": report["inconsistency_rate"],
        "generation_concurrency": concurrency,
        "generation_s": round(generation_s, 2),
        "judge_s": round(judge_s, 2),
        "judge_over_generation": round(judge_s / generation_s, 2) if generation_s else None,
        "judge_concurrency": slots,
        "judge_peak_in_flight": meter.peak,
        "judge_slots_busy": round(meter.busy / (slots * judge_s), 3) if judge_s else None,
    }


async def agreement(platform, deployment, rows, judge: str, max_tokens: int, constrained: bool) -> dict:
    """Right (the reference) against wrong (another row's reference), both orders, one judge."""
    from aqua_lab.evaluation.runner import Prediction

    wrong = [rows[(i + 1) % len(rows)].completion for i in range(len(rows))]  # a derangement
    done = {
        "right": {r.index: Prediction(r.index, "right", r.completion) for r in rows},
        "wrong": {r.index: Prediction(r.index, "wrong", wrong[i]) for i, r in enumerate(rows)},
    }
    judging = _judging(platform, deployment, rows, ["right", "wrong"], judge, max_tokens)
    judging.constrained = constrained
    started = time.perf_counter()
    await judging.finish(done)
    report = judging.pairwise_report()
    orders = [o for v in report["verdicts"] for o in v["orders"]]
    # the first order showed model_a first, the second model_b: position bias is picking what came first
    first_shown = [(v["orders"][0] == v["model_a"]) + (v["orders"][1] == v["model_b"]) for v in report["verdicts"]]
    pairs = report["pairs"]
    return {
        "constrained": constrained,
        "pairs": pairs,
        "agreement": round(sum(v["winner"] == "right" for v in report["verdicts"]) / pairs, 3),
        "orders_preferring_right": round(sum(o == "right" for o in orders) / len(orders), 3),
        "orders_first_shown": round(sum(first_shown) / len(orders), 3),
        "inconsistency_rate": report["inconsistency_rate"],
        "unparsed": report["unparsed"],
        "errors": report["errors"],
        "requests": report["requests"],
        "judge_s": round(time.perf_counter() - started, 2),
    }


def deploy(service, n: int, cores: int) -> tuple[list, str | None]:
    """N SmolLM2 models: as many as there are cores in one deployment, the rest in a second one that
    shares their cores (slower, said in the note)."""
    from aqua_lab.domain import DeploymentSpec
    from aqua_lab.platforms.local.models import SMOLLM2_ID

    names = [f"smol-{i}" for i in range(n)]
    groups = [names[:cores], names[cores:]]
    deployments = []
    try:
        for i, group in enumerate(g for g in groups if g):
            spec = DeploymentSpec(
                models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": name} for name in group],
                instance_shape=service.shapes()[0].name,
                display_name=f"judge bench {i}",
                share_cores=i > 0,
            )
            deployments.append(service.create_deployment(spec))
        deployments = [service.wait(d.id, timeout=300) for d in deployments]
    except BaseException:
        for d in deployments:
            service.delete(d.id)
        raise
    note = f"{n} models on {cores} cores: {len(groups[1])} share(s) the cores of the others" if groups[1] else None
    return deployments, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--max_tokens", type=int, default=48)
    parser.add_argument("--agreement", action="store_true", help="right vs wrong answers: how often the judge agrees")
    parser.add_argument("--quick", action="store_true", help="2 models, 3 rows")
    args = parser.parse_args()
    if args.quick:
        args.models, args.rows = 2, 3
    if args.agreement:
        args.models = 1

    from aqua_lab.evaluation.datasets import SAMPLE, load_dataset
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService

    cores = len(os.sched_getaffinity(0))
    rows = (load_dataset(SAMPLE) * math.ceil(args.rows / 36))[: args.rows]
    rows = [type(r)(i, r.prompt, r.completion, r.category) for i, r in enumerate(rows)]
    print(f"load average {os.getloadavg()[0]:.1f} on {cores} cores at the start (other work shares this machine)")
    with tempfile.TemporaryDirectory(prefix="judge-bench-") as tmp:
        service = AquaLabService(LocalPlatform(data_dir=Path(tmp)))
        deployments, note = deploy(service, args.models, cores)
        try:
            for d in deployments:
                assert d.state == "ACTIVE", d.lifecycle_details
            models = [m.model_name for d in deployments for m in d.models]
            if args.agreement:
                found = {
                    "agreement": [
                        asyncio.run(agreement(service.platform, deployments[0], rows, models[0], args.max_tokens, c))
                        for c in (True, False)
                    ]
                }
            else:
                found = asyncio.run(passes(service.platform, deployments, rows, models, args.max_tokens))
        finally:
            for d in deployments:
                service.delete(d.id)
    if note:
        found["note"] = note
        print(note)
    if args.agreement:
        for a in found["agreement"]:
            how = "constrained (grammar)" if a["constrained"] else "free text"
            print(
                f"{how}: judge prefers the right answer in {a['agreement']:.0%} of {a['pairs']} pairs "
                f"({a['orders_preferring_right']:.0%} of single orders; first shown chosen in "
                f"{a['orders_first_shown']:.0%}), inconsistency {a['inconsistency_rate']}, unparsed {a['unparsed']}"
            )
        print(json.dumps(found))
        return
    k, made, expected = found["models"], found["requests_per_row_made"], found["requests_per_row_expected"]
    print(f"judge requests per row: {made} = 2 × C({k}, 2) = {expected}")
    print(f"judge requests: {found['judge_requests']} ({found['retries']} retries of unparsed answers)")
    if found["errors"]:
        raise SystemExit(f"{found['errors']} judge requests failed: {found['last_error']}")
    ratio = found["judge_over_generation"]
    print(f"generation {found['generation_s']} s, judge {found['judge_s']} s: judge / generation = {ratio:.2f}×")
    print(f"judge concurrency {found['judge_concurrency']}, slots busy {found['judge_slots_busy']:.1%}")
    print(json.dumps(found))


if __name__ == "__main__":
    main()
