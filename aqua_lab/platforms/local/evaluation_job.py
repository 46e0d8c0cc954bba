"""The detached job of one local evaluation: ``python -m aqua_lab.platforms.local.evaluation_job
<data dir> <evaluation id>``.

Every model of the evaluation answers the dataset through the deployment's router (models in
parallel), each answer appended to ``predictions.jsonl`` as it comes, so a killed job resumes where
it stopped.  A model that has finished is scored on the cores its servers left free while the others
still generate (:mod:`.evaluation_scorer`); the rest are scored on every core at the end, and the
reports written.  SIGTERM (cancel) stops new requests.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from ...inference import client
from .engines import LLAMA_CPP
from .evaluations import FINISHED, EvaluationStore, evaluation_dir

if TYPE_CHECKING:
    from .store import DeploymentRecord

#: requests in flight per model when its server's own concurrency is unknown
CONCURRENCY = 4
PROGRESS_EVERY_S = 0.3


def model_concurrency(deployment_row: DeploymentRecord | None, models: list[str], engine: str) -> dict[str, int]:
    """Each model at the concurrency its servers decode together (llama.cpp's slots, vLLM's
    max-num-seqs, times the replicas the router spreads it over): more would only queue in the
    engine, fewer would leave slots idle."""
    from .engines import server_specs

    found: dict[str, int] = {}
    record = deployment_row.record if deployment_row is not None else {}
    try:
        replicas = int(record.get("instance_count") or 1)
        for spec in server_specs(record["multi_model_config"], engine, [0], replicas):
            for name in spec.names:
                found[name] = found.get(name, 0) + spec.concurrency
    except (KeyError, TypeError, ValueError):
        pass  # no record, or an unusual one: the default
    return {m: max(1, found.get(m, CONCURRENCY)) for m in models}


def model_cores(platform, deployment_row: DeploymentRecord | None, models: list[str]) -> dict[str, set[int]] | None:
    """The CPU cores each model's llama.cpp servers are pinned to (every replica's), as the
    deployment's runtime pins them; None for vLLM (its slots are GPUs) or an unusual record."""
    from .capacity import slots_of
    from .engines import server_specs

    if getattr(platform, "engine", None) != LLAMA_CPP or not deployment_row:
        return None
    try:
        record = deployment_row.record
        slots = slots_of(record, platform._machine_slots())
        specs = server_specs(
            record["multi_model_config"], platform.engine, slots, int(record.get("instance_count") or 1)
        )
    except (KeyError, TypeError, ValueError):
        return None
    found: dict[str, set[int]] = {m: set() for m in models}
    for spec in specs:
        for name in spec.names:
            if name in found:
                found[name] |= set(spec.slots)
    return found


def read_predictions(path: Path) -> dict[str, dict[int, object]]:
    from ...evaluation.runner import Prediction

    done: dict[str, dict[int, Prediction]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            p = Prediction.from_dict(json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue  # the half-written last line of a killed job
        done.setdefault(p.model, {})[p.index] = p
    return done


def serving_platform(data_dir: Path, record: dict):
    """The platform that serves the evaluated deployment: this machine's, or the one the record names
    (``runner: notebook`` on OCI), rebuilt from the settings the service had."""
    found = record.get("platform")
    if not found:
        from .platform import LocalPlatform

        return LocalPlatform(data_dir=data_dir)
    from ..registry import PlatformSettings, build_platform

    return build_platform(found["name"], PlatformSettings(**found["settings"]))


def local_row(platform, deployment_id: str) -> DeploymentRecord | None:
    """The local store's row of a deployment (its servers' slots and cores); None on another platform."""
    store = getattr(platform, "store", None)
    return store.deployment(deployment_id) if store is not None else None


async def run(data_dir: Path, evaluation_id: str) -> int:
    from ...arena.judge import verdict_rows
    from ...arena.store import VoteStore
    from ...evaluation.datasets import parse_dataset
    from ...evaluation.metrics import JUDGED
    from ...evaluation.report import model_report, write_reports
    from ...evaluation.runner import generate, judge_score_result
    from .evaluation_scorer import SpareCoreScorer

    store = EvaluationStore(data_dir / "local.sqlite")
    row = store.get(evaluation_id)
    if row is None or row["state"] in FINISHED:
        return 0
    record = row["record"]
    platform = serving_platform(data_dir, record)
    llama_cpp = getattr(platform, "engine", None) == LLAMA_CPP
    directory = evaluation_dir(data_dir, evaluation_id)
    rows = parse_dataset((directory / "dataset.jsonl").read_bytes())
    models, metrics = record["models"], [(m["name"], m["args"]) for m in record["metrics"]]
    judged = {n: a for n, a in metrics if n in JUDGED}
    metrics = [(n, a) for n, a in metrics if n not in JUDGED]
    params = record["spec"]["model_parameters"]
    predictions_file = directory / "predictions.jsonl"
    resume = read_predictions(predictions_file)
    # rows a previous run failed on are tried again; only answered ones count as done
    resume = {m: {i: p for i, p in ps.items() if not p.error} for m, ps in resume.items()}
    if not store.set_state_unless(evaluation_id, "IN_PROGRESS", None, FINISHED):
        return 0
    now = time.time()
    for m in models:
        store.update_model(evaluation_id, m, state="IN_PROGRESS", started_on=now, rows_done=len(resume.get(m, {})))

    wants_perplexity = any(n == "perplexity_score" for n, _ in metrics)
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, cancel.set)
    deployment = platform.get_deployment(row["deployment_id"])

    async def chat(model: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        url, headers = platform.inference_request(deployment, "/v1/chat/completions", data, False)
        return await client.post_json(url, data, headers)

    out = open(predictions_file, "a")  # noqa: SIM115 — open for the whole run, one line per answer
    last: dict[str, float] = {}

    def on_prediction(p) -> None:
        out.write(json.dumps(p.as_dict()) + "\n")
        out.flush()

    def progress(model: str, done: int, total: int, failed: int) -> None:
        if done == total or time.monotonic() - last.get(model, 0) > PROGRESS_EVERY_S:
            last[model] = time.monotonic()
            store.update_model(evaluation_id, model, rows_done=done, rows_failed=failed)

    deployment_row = local_row(platform, row["deployment_id"])
    judging = judge_pass(platform, deployment, deployment_row, rows, models, judged) if judged else None
    scorer = SpareCoreScorer(rows, models, metrics, model_cores(platform, deployment_row, models))
    generation_started = time.perf_counter()
    finished_s: dict[str, float] = {}

    def model_done(model: str, predictions: dict) -> None:
        finished_s[model] = round(time.perf_counter() - generation_started, 2)
        scorer.finished(model, predictions)

    try:
        done = await generate(
            rows,
            models,
            chat,
            params,
            concurrency=model_concurrency(deployment_row, models, getattr(platform, "engine", "")),
            want_logprobs=wants_perplexity,
            # llama-server can be made to generate the reference (a grammar) and report its logprobs
            score_reference=wants_perplexity and llama_cpp,
            resume=resume,
            on_prediction=on_prediction,
            progress=progress,
            cancel=cancel,
            on_model_done=model_done,
            on_row_answered=judging.row_answered if judging else None,
        )
        generation_s = time.perf_counter() - generation_started
        if judging and not cancel.is_set():
            await judging.finish(done)
    finally:
        out.close()
    if cancel.is_set() or (store.get(evaluation_id) or {}).get("state") == "CANCELED":
        scorer.close()
        store.set_state_unless(evaluation_id, "CANCELED", "canceled by the user", ("SUCCEEDED", "FAILED"))
        for m in models:
            store.update_model(evaluation_id, m, state="CANCELED")
        return 0

    scoring_started = time.perf_counter()
    vanished = deployment_gone(platform, row["deployment_id"])
    reports = []
    for scores in scorer.scores(done):
        if judging and judging.scores:
            scores.metrics.append(
                judge_score_result(rows, judging.ratings[scores.model], f"rated 1-10 by {judging.label}")
            )
        if vanished and scores.generation.get("failed"):
            scores.generation["failure_reason"] = f"{vanished}; {scores.generation.get('failure_reason')}"
        meta = {
            "evaluation_id": evaluation_id,
            "evaluation_name": row["name"],
            "evaluation_source_id": row["deployment_id"],
            "model_parameters": params,
        }
        reports.append(model_report(rows, scores, meta))
    judge_section = None
    if judging and judging.pairwise:
        judge_section = judging.pairwise_report()
        # on the deployment's leaderboard (source judge), stored whole or not at all
        VoteStore(Path(record.get("votes_path") or data_dir / "local.sqlite")).add(
            verdict_rows(
                row["deployment_id"],
                evaluation_id,
                judging.label,
                [(r.prompt, r.completion, vs) for r, vs in judging.ordered_verdicts()],
            ),
            replace=True,
        )
    written = write_reports(Path(record["report_path"]), reports, judge_section)
    _write_stats(
        directory,
        generation_s,
        time.perf_counter() - scoring_started,
        overlapped=scorer.overlapped,
        finished_s=finished_s,
        judge_s=round(scoring_started - generation_started - generation_s, 3) if judging else None,
        judge_requests=(judge_section or {}).get("requests", 0) + (judging.score_requests if judging else 0),
    )
    state, details, model_states = outcome({r["model"]: r["generation"] for r in reports}, len(rows), vanished)
    for r in reports:
        store.update_model(
            evaluation_id,
            r["model"],
            state=model_states[r["model"]],
            rows_done=len(rows),
            rows_failed=r["generation"]["failed"],
            report=written[r["model"]],
        )
    store.set_state_unless(evaluation_id, state, details, FINISHED)
    return 0


def judge_pass(platform, deployment, deployment_row, rows, models: list[str], judged: dict[str, dict]):
    """The :class:`~aqua_lab.arena.judge.JudgePass` of the evaluation's judge metrics (pairwise_judge,
    judge_score: one judge, the first metric's, asks for both), with a chat to the judge: a model of
    this deployment or of another one through the platform (each request signed on its own where the
    platform signs: OCI's ``/predict``), or an external endpoint.  A llama.cpp judge answers under a
    grammar (:func:`judge_constrained`)."""
    from ...arena.judge import JudgePass, check_rubric
    from ...arena.judge_target import SELF_PREFERENCE, endpoint_headers, judge_name, normalised

    args = judged.get("pairwise_judge") or judged["judge_score"]
    judge = normalised(args["judge"])
    judge["model"] = judge.get("model") or models[0]
    engine = getattr(platform, "engine", "")
    if judge.get("url"):
        base, key = judge["url"].rstrip("/"), endpoint_headers(judge)

        def request(body: bytes) -> tuple[str, dict]:
            return base + "/chat/completions", {"content-type": "application/json", **key}

        concurrency = CONCURRENCY
        constrained = llama_server(base, key)
    else:
        target = platform.get_deployment(judge["deployment_id"]) if judge.get("deployment_id") else deployment

        def request(body: bytes) -> tuple[str, dict]:
            return platform.inference_request(target, "/v1/chat/completions", body, False)

        own = deployment_row if target is deployment else local_row(platform, target.id)
        concurrency = model_concurrency(own, [judge["model"]], engine)[judge["model"]]
        constrained = engine == LLAMA_CPP

    async def ask(messages: list[dict[str, str]], grammar: str | None = None) -> str:
        body = {"model": judge["model"], "messages": messages, "temperature": 0, "max_tokens": args["max_tokens"]}
        if grammar:
            body["grammar"] = grammar
        data = json.dumps(body).encode()
        url, headers = request(data)
        response = await client.post_json(url, data, headers, model=judge["model"])
        choice = (response.get("choices") or [{}])[0]
        return (choice.get("message") or {}).get("content") or ""

    judged_self = not judge.get("url") and not judge.get("deployment_id") and judge["model"] in models
    return JudgePass(
        rows,
        models,
        ask,
        check_rubric(args["rubric"]),
        pairwise="pairwise_judge" in judged,
        scores="judge_score" in judged,
        concurrency=concurrency,
        label=judge_name(judge),
        warning=SELF_PREFERENCE.format(model=judge["model"]) if judged_self else None,
        constrained=constrained,
    )


def llama_server(base_url: str, headers: dict[str, str]) -> bool:
    """Whether an external judge is a llama.cpp server, which takes a ``grammar``: its ``/models``
    names ``llamacpp`` as the owner.  Anything else (or no answer) gets the free-text prompt, which
    every OpenAI-compatible server takes."""
    from ...errors import AquaLabError
    from ...inference.client import get_json_blocking
    from ...inference.timeouts import Timeouts

    try:
        found = get_json_blocking(base_url + "/models", headers, Timeouts(connect_s=5, first_byte_s=10, total_s=15))
    except (AquaLabError, OSError, ValueError):
        return False
    data = found.get("data") if isinstance(found, dict) else None
    return any(isinstance(m, dict) and m.get("owned_by") == "llamacpp" for m in data or [])


def deployment_gone(platform, deployment_id: str) -> str | None:
    """Why the evaluated deployment can answer no more (deleted, deactivated, failed), or None."""
    from ...errors import NotFound

    try:
        deployment = platform.get_deployment(deployment_id)
    except NotFound:
        return f"deployment {deployment_id} was deleted while the evaluation ran"
    if deployment.state in ("CREATING", "ACTIVE", "NEEDS_ATTENTION", "UPDATING"):
        return None
    how = {"DELETING": "was deleted", "INACTIVE": "was deactivated"}.get(deployment.state, f"became {deployment.state}")
    why = (deployment.lifecycle_details or "").strip().splitlines()[:1] if deployment.state == "FAILED" else []
    return f"deployment {deployment_id} {how} while the evaluation ran" + (f" ({why[0]})" if why else "")


def outcome(generation: dict[str, dict], rows: int, vanished: str | None) -> tuple[str, str | None, dict[str, str]]:
    """The evaluation's state and details and each model's state, from what each model answered.
    FAILED when no model answered or rows failed because the deployment went away (that run compared
    nothing fairly); SUCCEEDED otherwise, the details saying how many rows of which model failed and
    why (a model that answered nothing is FAILED itself and shows beside the others in the report)."""
    failed = {m: g["failed"] for m, g in generation.items() if g["failed"]}
    lost = vanished and failed
    states = {
        m: "FAILED" if not g["answered"] or (lost and g["failed"]) else "SUCCEEDED" for m, g in generation.items()
    }
    counts = "; ".join(f"{m}: {n} of {rows} rows failed" for m, n in failed.items())
    if lost:
        return "FAILED", f"{counts}: {vanished}; the rows answered before are in the report", states
    if not any(g["answered"] for g in generation.values()):
        first = next(iter(generation.values()), {}).get("failure_reason") or "no answers"
        return "FAILED", f"no model answered: {first}", states
    reasons = "; ".join(
        f"{m}: {n} of {rows} rows failed: {generation[m].get('failure_reason')}" for m, n in failed.items()
    )
    return "SUCCEEDED", reasons or None, states


def _write_stats(directory: Path, generation_s: float, scoring_s: float, **extra) -> None:
    """Where this run's time and memory went (read by bench/evaluation_bench.py): ``scoring_s`` is
    the time after generation; ``overlapped``, the models scored while others still generated;
    ``finished_s``, when each model had every row."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {
        "generation_s": round(generation_s, 3),
        "scoring_s": round(scoring_s, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux: KiB
        "job_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        **extra,
    }
    (directory / "stats.json").write_text(json.dumps(stats))


def main(argv: list[str]) -> int:
    data_dir, evaluation_id = Path(argv[0]), argv[1]
    try:
        return asyncio.run(run(data_dir, evaluation_id))
    except Exception as exc:
        traceback.print_exc()
        store = EvaluationStore(data_dir / "local.sqlite")
        store.set_state_unless(evaluation_id, "FAILED", f"{type(exc).__name__}: {exc}", FINISHED)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
