"""The pairwise judge's cost (issue 27): judge requests per row (2 × C(N, 2), both orders of every
pair), the judge pass's wall time against the generation pass's, and how busy the judge's slots were.

N SmolLM2 models (one core each; fewer when the machine has fewer cores, said in the output) answer
the bundled sample's rows; then the first of them judges every row, with the evaluation job's own
generation (``runner.generate``) and judge (``evaluation_job.judge_pass``).  The two passes run one
after the other here so each is timed alone (the job overlaps them: a row is judged once every model
answered it).  Slot use is the time-integral of the judge's requests in flight over concurrency × wall.

    python bench/judge_bench.py [--models 3] [--rows 20] [--max_tokens 48]
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
        async def measured(messages):
            self._tick()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                return await ask(messages)
            finally:
                self._tick()
                self.in_flight -= 1

        return measured


async def passes(platform, deployment, rows, models, max_tokens: int) -> dict:
    from aqua_lab.evaluation.metrics import check_metrics
    from aqua_lab.evaluation.runner import generate
    from aqua_lab.inference import client
    from aqua_lab.platforms.local.evaluation_job import judge_pass, model_concurrency

    row = platform.store.deployment(deployment.id)

    async def chat(model: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        url, headers = platform.inference_request(deployment, "/v1/chat/completions", data, False)
        return await client.post_json(url, data, headers)

    concurrency = model_concurrency(row, models, platform.engine)
    started = time.perf_counter()
    done = await generate(rows, models, chat, {"max_tokens": max_tokens, "temperature": 0}, concurrency=concurrency)
    generation_s = time.perf_counter() - started

    [(_, args)] = check_metrics([{"name": "pairwise_judge", "args": {"judge": models[0], "max_tokens": max_tokens}}])
    judging = judge_pass(platform, deployment, row, rows, models, {"pairwise_judge": args})
    meter = SlotMeter()
    judging._ask = meter.wrap(judging._ask)  # the judge's own requests, inside its concurrency gate
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
        "inconsistency_rate": report["inconsistency_rate"],
        "generation_concurrency": concurrency,
        "generation_s": round(generation_s, 2),
        "judge_s": round(judge_s, 2),
        "judge_over_generation": round(judge_s / generation_s, 2) if generation_s else None,
        "judge_concurrency": slots,
        "judge_peak_in_flight": meter.peak,
        "judge_slots_busy": round(meter.busy / (slots * judge_s), 3) if judge_s else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--max_tokens", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="2 models, 3 rows")
    args = parser.parse_args()
    if args.quick:
        args.models, args.rows = 2, 3

    from aqua_lab.domain import DeploymentSpec
    from aqua_lab.evaluation.datasets import SAMPLE, load_dataset
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.platforms.local.models import SMOLLM2_ID
    from aqua_lab.service import AquaLabService

    cores = len(os.sched_getaffinity(0))
    n = min(args.models, cores)
    note = f"{args.models} models asked, {n} deployed: one core each on {cores} cores" if n < args.models else None
    rows = (load_dataset(SAMPLE) * math.ceil(args.rows / 36))[: args.rows]
    rows = [type(r)(i, r.prompt, r.completion, r.category) for i, r in enumerate(rows)]
    with tempfile.TemporaryDirectory(prefix="judge-bench-") as tmp:
        service = AquaLabService(LocalPlatform(data_dir=Path(tmp)))
        spec = DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": f"smol-{i}"} for i in range(n)],
            instance_shape=service.shapes()[0].name,
            display_name="judge bench",
        )
        deployment = service.wait(service.create_deployment(spec).id, timeout=300)
        try:
            assert deployment.state == "ACTIVE", deployment.lifecycle_details
            found = asyncio.run(
                passes(service.platform, deployment, rows, [m.model_name for m in deployment.models], args.max_tokens)
            )
        finally:
            service.delete(deployment.id)
    if note:
        found["note"] = note
        print(note)
    k, made, expected = found["models"], found["requests_per_row_made"], found["requests_per_row_expected"]
    print(f"judge requests per row: {made} = 2 × C({k}, 2) = {expected}")
    print(f"judge requests: {found['judge_requests']} ({found['retries']} retries of unparsed answers)")
    ratio = found["judge_over_generation"]
    print(f"generation {found['generation_s']} s, judge {found['judge_s']} s: judge / generation = {ratio:.2f}×")
    print(f"judge concurrency {found['judge_concurrency']}, slots busy {found['judge_slots_busy']:.1%}")
    print(json.dumps(found))


if __name__ == "__main__":
    main()
