"""Local evaluations end to end through the service, with a stand-in router (tests/helpers/
fake_models.py) in place of real model servers: the detached job, progress, reports, resume after
kill -9, cancel, delete, bad requests.  The same against real SmolLM2 servers is in the ``local``
tests."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from aqua_lab.domain import EvaluationSpec
from aqua_lab.errors import Conflict, InvalidInput, NotFound, Unsupported
from aqua_lab.evaluation.datasets import SAMPLE, load_dataset
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.service import AquaLabService
from tests.helpers.fake_models import requests_seen, start_fake_deployment

pytestmark = pytest.mark.evaluation

ROWS = len(load_dataset(SAMPLE))


@pytest.fixture
def fake_deployment(tmp_path):
    """A local deployment ACTIVE on this machine whose 'runtime' is the stand-in router."""
    workdir = tmp_path / "router"
    deployment_id, proc = start_fake_deployment(tmp_path / "data", workdir)
    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))
    try:
        yield service, deployment_id, workdir
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        proc.kill()
        proc.wait()


def _spec(deployment_id: str, report: Path, **extra) -> EvaluationSpec:
    fields = {
        "evaluation_source_id": deployment_id,
        "evaluation_name": "fake eval",
        "dataset_path": SAMPLE,
        "report_path": str(report),
        "model_parameters": {"max_tokens": 32},
        "metrics": [{"name": "rouge"}, {"name": "bleu"}, {"name": "bertscore"}, {"name": "perplexity_score"}],
    }
    fields.update(extra)
    return EvaluationSpec.model_validate(fields)


def test_every_model_is_scored_side_by_side_with_reports(fake_deployment, tmp_path):
    service, deployment_id, workdir = fake_deployment
    created = service.create_evaluation(_spec(deployment_id, tmp_path / "one", model_parameters={"model": "perfect"}))
    assert created.state in ("ACCEPTED", "IN_PROGRESS") and [m.model for m in created.models] == ["perfect"]
    done = service.wait_evaluation(created.id, timeout=120)
    assert done.state == "SUCCEEDED", done.details
    perfect = json.loads(service.evaluation_report(created.id, "perfect"))
    assert perfect["metric_summary_result"][2]["score"] == "Median F1: 1.000 (SD: 0.000)"
    assert perfect["model_params"] == {"model": "perfect"}
    assert len(perfect["data"]) == ROWS and perfect["data"][0]["rouge1"] == 1.0

    metrics = [*_spec(deployment_id, tmp_path).model_dump()["metrics"], {"name": "text_readability", "args": {}}]
    both = service.create_evaluation(_spec(deployment_id, tmp_path / "all", metrics=metrics))  # every model
    assert [m.model for m in both.models] == ["perfect", "vague", "slow", "broken"]
    result = service.wait_evaluation(both.id, timeout=120)
    assert result.state == "SUCCEEDED", result.details
    states = {m.model: (m.state, m.rows_done, m.rows_failed) for m in result.models}
    assert states["perfect"] == ("SUCCEEDED", ROWS, 0) and states["vague"] == ("SUCCEEDED", ROWS, 0)
    assert states["broken"] == ("FAILED", ROWS, ROWS)
    assert "broken: 36 of 36 rows failed" in result.details
    comparison = json.loads(service.evaluation_report(both.id))
    f1 = comparison["metrics"]["bertscore_f1"]["models"]
    assert f1["perfect"]["median"] == pytest.approx(1.0) and f1["vague"]["median"] < 0.5
    assert f1["broken"]["count"] == 0
    html = service.evaluation_report(both.id, fmt="html")
    assert html.count("<svg") == len(comparison["metrics"]) and "model server crashed" in html
    assert (tmp_path / "all" / "vague" / "report.html").exists() and result.comparison_report
    # every model answered every row once (broken: until it was taken as down)
    sent = [r for r in requests_seen(workdir) if r["model"] == "vague"]
    answers, forced = [r for r in sent if not r["forced"]], [r for r in sent if r["forced"]]
    assert len(answers) == ROWS and {r["max_tokens"] for r in answers} == {32}
    # perplexity: each reference forced once too (llama.cpp grammar), its tokens at ln 0.25 → 4.0
    assert len(forced) == ROWS
    vague = json.loads(service.evaluation_report(both.id, "vague"))
    assert vague["metric_summary_result"][3]["score"] == "Median perplexity: 4.0 (SD: 0.0)"
    # text_readability: textstat's score of each answer, as textstat computes it on that answer
    import textstat

    from aqua_lab.evaluation.readability import serve_cmudict

    serve_cmudict()
    row = vague["data"][0]
    assert row["flesch_reading_ease"] == pytest.approx(textstat.flesch_reading_ease(row["prediction"]))
    assert vague["metric_summary_result"][4]["score"].startswith("Median flesch_reading_ease: ")
    assert [e.id for e in service.list_evaluations()] == [created.id, both.id]


def test_a_killed_job_resumes_without_generating_a_row_twice(fake_deployment, tmp_path):
    service, deployment_id, workdir = fake_deployment
    spec = _spec(deployment_id, tmp_path / "r", model_parameters={"model": "slow"}, metrics=[{"name": "rouge"}])
    created = service.create_evaluation(spec)
    platform = service.platform
    while service.get_evaluation(created.id).models[0].rows_done < 6:
        time.sleep(0.1)
    seen = service.get_evaluation(created.id)
    assert seen.state == "IN_PROGRESS" and seen.models[0].eta_s is not None
    pid = platform.evaluation_store.get(created.id)["runner_pid"]
    os.killpg(pid, signal.SIGKILL)
    time.sleep(0.3)
    result = service.wait_evaluation(created.id, timeout=120)  # looking at it restarts the job
    assert result.state == "SUCCEEDED" and platform.evaluation_store.get(created.id)["restarts"] == 1
    prompts = [r["prompt"] for r in requests_seen(workdir) if r["model"] == "slow" and not r["forced"]]
    # at most the rows in flight at the kill (4) are asked again; none is missing
    assert set(prompts) == {r.prompt for r in load_dataset(SAMPLE)}
    assert ROWS <= len(prompts) <= ROWS + 4
    report = json.loads(service.evaluation_report(created.id, "slow"))
    assert [d["index"] for d in report["data"]] == list(range(ROWS)) and all(d["rouge1"] == 1.0 for d in report["data"])


def test_cancel_stops_the_job_and_delete_forgets_it(fake_deployment, tmp_path):
    service, deployment_id, workdir = fake_deployment
    created = service.create_evaluation(_spec(deployment_id, tmp_path / "c", model_parameters={"model": "slow"}))
    while service.get_evaluation(created.id).models[0].rows_done < 2:
        time.sleep(0.05)
    canceled = service.cancel_evaluation(created.id)
    assert canceled.state == "CANCELED" and canceled.models[0].state == "CANCELED"
    asked = len(requests_seen(workdir))
    time.sleep(1)
    assert len(requests_seen(workdir)) == asked  # no more requests after the cancel
    assert canceled.models[0].rows_done < ROWS
    with pytest.raises(Conflict, match="is CANCELED"):
        service.evaluation_report(created.id)
    with pytest.raises(Conflict, match="already CANCELED"):
        service.cancel_evaluation(created.id)
    assert service.delete_evaluation(created.id).state == "DELETED"
    with pytest.raises(NotFound, match="unknown evaluation"):
        service.get_evaluation(created.id)


def test_bad_requests_name_the_field(fake_deployment, tmp_path):
    service, deployment_id, _ = fake_deployment
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(InvalidInput) as err:
        service.create_evaluation(_spec(deployment_id, tmp_path / "x", dataset_path=str(bad)))
    assert [p.field for p in err.value.problems] == ["dataset_path line 2: completion"]
    with pytest.raises(InvalidInput) as err:
        service.create_evaluation(
            _spec(
                deployment_id,
                tmp_path / "x",
                model_parameters={"model": "nope", "stream": True},
                metrics=[{"name": "rouge", "args": {"colour": 1}}],
            )
        )
    assert [p.field for p in err.value.problems] == [
        "model_parameters.model",
        "model_parameters.stream",
        "metrics[0].args.colour",
    ]
    with pytest.raises(InvalidInput, match="report_path"):
        service.create_evaluation(_spec(deployment_id, "oci://b@n/r"))
    with pytest.raises(InvalidInput) as unknown:  # the id came in a field: the error names it
        service.create_evaluation(_spec("local-nosuchdeployment", tmp_path / "x"))
    assert (
        unknown.value.problems[0].field == "evaluation_source_id" and "deployment list" in unknown.value.problems[0].fix
    )


def test_a_platform_that_does_not_run_evaluations_refuses_every_verb_with_a_409():
    service = AquaLabService("bundled")
    verbs = {
        "list": lambda: service.list_evaluations(),
        "get": lambda: service.get_evaluation("e"),
        "cancel": lambda: service.cancel_evaluation("e"),
        "delete": lambda: service.delete_evaluation("e"),
        "report": lambda: service.evaluation_report("e"),
    }
    for verb, call in verbs.items():
        with pytest.raises(Unsupported, match="bundled platform cannot list, read or cancel evaluations") as err:
            call()
        assert isinstance(err.value, Conflict), verb  # the server answers 409
    with pytest.raises(Unsupported, match="does not run evaluation jobs"):
        service.create_evaluation(_spec("d", Path("r")))


def test_each_model_is_asked_at_its_servers_concurrency_times_its_replicas():
    from aqua_lab.platforms.local.engines import LLAMA_CPP
    from aqua_lab.platforms.local.evaluation_job import model_concurrency

    config = {
        "models": [
            {"params": "--served-model-name a --parallel 3", "model_path": "/a.gguf", "model_id": "a"},
            {"params": "--served-model-name b --parallel 1", "model_path": "/b.gguf", "model_id": "b"},
        ]
    }
    one = SimpleNamespace(record={"multi_model_config": config})  # a DeploymentRecord's one field read
    two = SimpleNamespace(record={"multi_model_config": config, "instance_count": 2})
    assert model_concurrency(one, ["a", "b"], LLAMA_CPP) == {"a": 3, "b": 1}
    # the router spreads a model's requests over its replicas: each has its own slots
    assert model_concurrency(two, ["a", "b"], LLAMA_CPP) == {"a": 6, "b": 2}


def test_each_model_is_placed_on_the_cores_its_servers_are_pinned_to():
    from aqua_lab.platforms.local.engines import LLAMA_CPP, VLLM
    from aqua_lab.platforms.local.evaluation_job import model_cores

    config = {
        "models": [
            {"params": "--served-model-name a", "model_path": "/a.gguf", "model_id": "a", "gpu_count": 1},
            {"params": "--served-model-name b", "model_path": "/b.gguf", "model_id": "b", "gpu_count": 1},
        ]
    }
    row = SimpleNamespace(record={"multi_model_config": config, "slots": [2, 3]})
    platform = LocalPlatform.__new__(LocalPlatform)
    platform.engine, platform.shape = LLAMA_CPP, None
    platform._machine_slots = lambda: [0, 1, 2, 3]
    assert model_cores(platform, row, ["a", "b"]) == {"a": {2}, "b": {3}}
    platform.engine = VLLM  # GPUs, not cores: every core is spare
    assert model_cores(platform, row, ["a", "b"]) is None


def test_a_finished_model_is_scored_on_spare_cores_while_the_other_generates():
    import threading

    from aqua_lab.evaluation.datasets import Row
    from aqua_lab.evaluation.metrics import check_metrics
    from aqua_lab.evaluation.runner import Prediction, score_model
    from aqua_lab.platforms.local.evaluation_scorer import SpareCoreScorer

    rows = [Row(i, f"question {i}?", f"answer {i}") for i in range(6)]
    done = {m: {r.index: Prediction(r.index, m, f"answer {r.index} from {m}") for r in rows} for m in ("a", "b")}
    chosen = check_metrics([{"name": "rouge"}, {"name": "bleu"}])
    cores = {0, 1}
    scorer = SpareCoreScorer(rows, ["a", "b"], chosen, {"a": {0}, "b": {1}}, cores=cores)
    time.sleep(0.3)
    assert scorer.overlapped == []  # both servers busy: no spare core, nothing scored
    seen_cores = []
    original = score_model

    def spy(*args, **kwargs):
        seen_cores.append((threading.current_thread().name, kwargs.get("threads")))
        return original(*args, **kwargs)

    import aqua_lab.platforms.local.evaluation_scorer as module

    module.score_model = spy
    try:
        scorer.finished("a", done["a"])
        deadline = time.monotonic() + 20
        while scorer.overlapped != ["a"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scorer.overlapped == ["a"]  # on core 0, which a's server left, while b generates
        scores = scorer.scores(done)
    finally:
        module.score_model = original
    assert [s.model for s in scores] == ["a", "b"]
    assert seen_cores == [("evaluation-scoring", 1), ("MainThread", 2)]  # b on every core once all are spare
    for s in scores:
        expected = score_model(rows, s.model, done[s.model], chosen)
        assert [m.rows for m in s.metrics] == [m.rows for m in expected.metrics]


# --------------------------------------------------------------------------------------------------
# real model servers


@pytest.mark.local
@pytest.mark.slow
def test_a_real_two_model_deployment_is_evaluated_side_by_side(tmp_path):
    """Two SmolLM2 servers (llama-server) answer the sample; reports match the libraries called
    directly on the same answers; perplexity comes from the logprobs llama-server returns."""
    from rouge_score import rouge_scorer

    from tests.helpers.cli import run_cli
    from tests.helpers.smol import deploy_two_smol

    data_dir = tmp_path / "data"
    service = AquaLabService(LocalPlatform(data_dir=data_dir))
    deployment = deploy_two_smol(service, "evaluated")
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        env = {**os.environ, "AQUA_LAB_DATA_DIR": str(data_dir)}
        created = run_cli(
            "evaluation",
            "create",
            "--platform",
            "local",
            "--evaluation_source_id",
            deployment.id,
            "--evaluation_name",
            "smol vs smol",
            "--dataset_path",
            SAMPLE,
            "--report_path",
            str(tmp_path / "reports"),
            "--model_parameters",
            '{"max_tokens": 24, "temperature": 0}',
            "--metrics",
            '[{"name": "rouge", "args": {}}, {"name": "bleu", "args": {}}, {"name": "bertscore", "args": {}},'
            ' {"name": "perplexity_score", "args": {}}]',
            env=env,
        )
        assert created.returncode == 0, created.stderr
        evaluation_id = json.loads(created.stdout)["id"]
        seen = []
        result = service.wait_evaluation(
            evaluation_id, timeout=600, progress=lambda e: seen.append([m.rows_done for m in e.models])
        )
        assert result.state == "SUCCEEDED", result.details
        assert any(0 < done < ROWS for step in seen for done in step), seen  # progress while it ran
        got = json.loads(run_cli("evaluation", "get", "--evaluation_id", evaluation_id, env=env).stdout)
        assert [(m["model"], m["rows_done"], m["rows_failed"]) for m in got["models"]] == [
            ("smol-a", ROWS, 0),
            ("smol-b", ROWS, 0),
        ]
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        for model in ("smol-a", "smol-b"):
            report = json.loads((tmp_path / "reports" / model / "report.json").read_text())
            assert len(report["data"]) == ROWS and all(d["prediction"] for d in report["data"])
            for d in report["data"][:5]:
                direct = scorer.score(d["reference"], d["prediction"])["rougeL"].fmeasure
                assert d["rougeL"] == pytest.approx(direct)
            assert all(d["perplexity_score"] and d["perplexity_score"] >= 1.0 for d in report["data"])
            assert report["metric_results"]["perplexity_score"]["note"].startswith("perplexity of the reference")
        comparison = json.loads(run_cli("evaluation", "report", "--evaluation_id", evaluation_id, env=env).stdout)
        assert comparison["models"] == ["smol-a", "smol-b"]
        assert set(comparison["metrics"]["bertscore_f1"]["models"]) == {"smol-a", "smol-b"}
        assert (tmp_path / "reports" / "comparison.html").read_text().count("<svg") == len(comparison["metrics"])
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        service.delete(deployment.id)
