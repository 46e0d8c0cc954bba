"""The pairwise judge: both orders asked for every pair, disagreeing orders counted as ties and as
inconsistencies, an unparsable answer retried once then kept as "unparsed", and its verdicts on the
leaderboard (source=judge).  The judge here is a stand-in that reads the answers it is shown."""

from __future__ import annotations

import asyncio
import math

import pytest

from aqua_lab.arena.judge import (
    MAX_RUBRIC_BYTES,
    check_rubric,
    judge_row,
    parse_verdict,
    summarise,
    verdict_rows,
)
from aqua_lab.arena.store import VoteStore
from aqua_lab.errors import InvalidInput

pytestmark = [pytest.mark.arena, pytest.mark.evaluation]

REFERENCE = "Paris"


def judge(kind: str, log: list):
    """A judge that prefers the answer equal to the reference ("fair"), always says A ("biased"),
    babbles once then obeys the strict prompt ("late"), or never gives a verdict ("mute")."""

    async def ask(messages):
        log.append(messages)
        text = messages[-1]["content"]
        first = text.split("[Answer A]\n")[1].split("\n\n[Answer B]")[0]
        if kind == "biased":
            return "Both are fine. [[A]]"
        if kind == "mute" or (kind == "late" and "exactly one of" not in messages[0]["content"]):
            return "I cannot decide."
        return "[[A]]" if first == REFERENCE else "[[B]]"

    return ask


def run(kind: str, answers: dict[str, str]):
    log: list = []
    verdicts = asyncio.run(judge_row(judge(kind, log), check_rubric(None), "Capital of France?", REFERENCE, answers))
    return verdicts, log


def test_every_pair_is_judged_in_both_orders():
    answers = {"right": REFERENCE, "wrong1": "Lyon", "wrong2": "Rome"}
    verdicts, log = run("fair", answers)
    assert len(log) == 2 * math.comb(3, 2)
    shown_first = {m[-1]["content"].split("[Answer A]\n")[1].split("\n")[0] for m in log}
    assert shown_first == {REFERENCE, "Lyon", "Rome"}
    by_pair = {(v.model_a, v.model_b): v.verdict for v in verdicts}
    assert by_pair[("right", "wrong1")] == "a" and by_pair[("right", "wrong2")] == "a"
    # between two wrong answers the stand-in always says B: the two orders disagree, a tie
    assert by_pair[("wrong1", "wrong2")] == "tie"
    assert summarise(verdicts).inconsistency_rate == pytest.approx(1 / 3)


def test_a_position_biased_judge_gives_ties_and_its_inconsistency_is_reported():
    verdicts, _ = run("biased", {"right": REFERENCE, "wrong": "Lyon"})
    assert [v.verdict for v in verdicts] == ["tie"]
    summary = summarise(verdicts)
    assert summary.inconsistent == 1 and summary.inconsistency_rate == 1.0


def test_an_unparsable_answer_is_retried_once_then_recorded_unparsed():
    verdicts, log = run("late", {"right": REFERENCE, "wrong": "Lyon"})
    assert len(log) == 4 and verdicts[0].verdict == "a"
    verdicts, log = run("mute", {"right": REFERENCE, "wrong": "Lyon"})
    assert len(log) == 4 and verdicts[0].verdict == "unparsed"
    summary = summarise(verdicts)
    assert summary.unparsed == 1 and summary.inconsistency_rate is None


def test_verdict_parsing():
    assert parse_verdict("A is better because ... [[B]]") == "B"
    assert parse_verdict("[[C]]") == "tie" and parse_verdict("tie") == "tie"
    assert parse_verdict("no idea") is None


def test_a_rubric_over_8_kib_is_refused_naming_the_field():
    with pytest.raises(InvalidInput) as refused:
        check_rubric("x" * (MAX_RUBRIC_BYTES + 1))
    assert refused.value.problems[0].field == "metrics.pairwise_judge.args.rubric"
    assert "the limit is 8192" in str(refused.value)


def test_judge_verdicts_reach_the_leaderboard_apart_from_votes(tmp_path):
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService

    service = AquaLabService(LocalPlatform(data_dir=tmp_path))
    rows = []
    for _ in range(8):
        verdicts, _ = run("fair", {"right": REFERENCE, "wrong": "Lyon"})
        rows.append(("Capital of France?", REFERENCE, verdicts))
    VoteStore(tmp_path / "local.sqlite").add(verdict_rows("local-gone", "eval-1", "smol", rows))
    board = service.leaderboard("local-gone", source="judge", resamples=50)
    assert [s.model for s in board.standings] == ["right", "wrong"] and board.votes == 8
    assert service.leaderboard("local-gone", source="both").votes == 8
    votes = service.votes("local-gone", "judge")
    assert votes[0].judge == "smol" and votes[0].evaluation_id == "eval-1"


# pairwise_judge and judge_score as evaluation metrics ---------------------------------------------------


def _judge_spec(deployment_id: str, tmp_path, metrics, dataset=None):
    from aqua_lab.domain import EvaluationSpec

    return EvaluationSpec.model_validate(
        {
            "evaluation_source_id": deployment_id,
            "evaluation_name": "judged",
            "dataset_path": str(dataset or _three_rows(tmp_path)),
            "report_path": str(tmp_path / "reports"),
            "model_parameters": {"max_tokens": 32, "temperature": 0},
            "metrics": metrics,
        }
    )


def _three_rows(tmp_path):
    import json

    from aqua_lab.evaluation.datasets import SAMPLE, load_dataset

    path = tmp_path / "three.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": r.prompt, "completion": r.completion}) + "\n" for r in load_dataset(SAMPLE)[:3])
    )
    return path


@pytest.fixture
def judged_deployment(tmp_path):
    """A stand-in router serving "perfect" (the reference) and "vague" (one sentence, never a verdict)."""
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService
    from tests.helpers.fake_models import start_fake_deployment

    workdir = tmp_path / "router"
    deployment_id, proc = start_fake_deployment(tmp_path / "data", workdir, served=("perfect", "vague"))
    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))
    try:
        yield service, deployment_id, workdir
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        proc.kill()
        proc.wait()


def test_judge_metrics_are_accepted_and_their_args_checked_naming_the_field():
    from aqua_lab.domain import EvaluationSpec
    from aqua_lab.evaluation.metrics import check_metrics

    spec = EvaluationSpec.model_validate(
        {
            "evaluation_source_id": "d",
            "evaluation_name": "n",
            "dataset_path": "sample",
            "report_path": "/tmp/r",
            "model_parameters": {},
            "metrics": [{"name": "pairwise_judge", "args": {"judge": "smol"}}, {"name": "judge_score"}],
        }
    )
    assert [n for n, _ in check_metrics(spec.metrics)] == ["pairwise_judge", "judge_score"]
    with pytest.raises(InvalidInput) as refused:
        check_metrics(
            [
                {"name": "pairwise_judge", "args": {"rubric": "x" * (MAX_RUBRIC_BYTES + 1)}},
                {"name": "pairwise_judge", "args": {"judge": {"url": "ftp://x", "model": "m", "colour": 1}}},
                {"name": "judge_score", "args": {"judge": 7, "max_tokens": 0}},
            ]
        )
    fields = [p.field for p in refused.value.problems]
    assert fields == [
        "metrics[0].args.rubric",
        "metrics[1].args.judge.colour",
        "metrics[1].args.judge.url",
        "metrics[2].args.judge",
        "metrics[2].args.max_tokens",
    ]
    assert "the limit is 8192" in str(refused.value)


def test_oci_refuses_judge_metrics_its_container_cannot_run():
    from aqua_lab.domain import Deployment, EvaluationSpec
    from aqua_lab.planning.evaluation import validate_evaluation

    deployment = Deployment.model_validate(
        {
            "id": "ocid1.datasciencemodeldeployment.oc1..x",
            "display_name": "d",
            "platform": "oci",
            "state": "ACTIVE",
            "instance_shape": "VM.GPU.A10.2",
            "models": [{"model_id": "ocid1.datasciencemodel.oc1..m", "model_name": "m", "gpu_count": 1}],
        }
    )
    spec = EvaluationSpec.model_validate(
        {
            "evaluation_source_id": deployment.id,
            "evaluation_name": "n",
            "dataset_path": "oci://b@ns/d.jsonl",
            "report_path": "oci://b@ns/r/",
            "model_parameters": {},
            "metrics": [{"name": "rouge"}, {"name": "pairwise_judge"}],
        }
    )
    with pytest.raises(InvalidInput) as refused:
        validate_evaluation(spec, deployment)
    problem = refused.value.problems[0]
    assert problem.field == "metrics[1].name" and "AQUA evaluation container on OCI" in str(refused.value)


def test_a_wrong_judge_is_refused_at_create_naming_the_field(judged_deployment, tmp_path):
    service, deployment_id, _ = judged_deployment
    cases = [
        ({"judge": "nobody"}, "metrics[0].args.judge", "'nobody' is not served"),
        (
            {"judge": {"deployment_id": "local-none", "model": "m"}},
            "metrics[0].args.judge.deployment_id",
            "no deployment",
        ),
        ({"judge": {"url": "http://127.0.0.1:9/v1", "model": "m"}}, "metrics[0].args.judge.url", "not reachable"),
        ({"rubric": "é" * 4097}, "metrics[0].args.rubric", "the limit is 8192"),
    ]
    for args, field, what in cases:
        with pytest.raises(InvalidInput) as refused:
            service.create_evaluation(_judge_spec(deployment_id, tmp_path, [{"name": "pairwise_judge", "args": args}]))
        assert refused.value.problems[0].field == field and what in str(refused.value), (args, str(refused.value))
    assert service.list_evaluations() == []  # nothing stored half


@pytest.mark.local
def test_a_judge_without_verdicts_is_retried_once_reported_unparsed_and_the_evaluation_succeeds(
    judged_deployment, tmp_path
):
    import json

    service, deployment_id, workdir = judged_deployment
    metrics = [
        {"name": "rouge"},
        {"name": "pairwise_judge", "args": {"judge": "vague"}},
        {"name": "judge_score", "args": {"judge": "vague"}},
    ]
    created = service.create_evaluation(_judge_spec(deployment_id, tmp_path, metrics))
    assert "self-preference" in created.details
    done = service.wait_evaluation(created.id, timeout=120)
    assert done.state == "SUCCEEDED", done.details
    asked = [json.loads(line) for line in (workdir / "requests.jsonl").read_text().splitlines()]
    judge_asks = [a for a in asked if a["prompt"].startswith("[Question]")]
    # pairwise: 3 rows × 2 orders × 2 tries; judge_score: 3 rows × 2 models × 2 tries
    assert len(judge_asks) == 12 + 12 and {a["model"] for a in judge_asks} == {"vague"}
    comparison = json.loads((tmp_path / "reports" / "comparison.json").read_text())
    judge = comparison["judge"]
    assert (judge["requests"], judge["requests_per_row"], judge["pairs"], judge["unparsed"], judge["retries"]) == (
        12,
        2,
        3,
        3,
        6,
    )
    assert judge["inconsistency_rate"] is None and "self-preference" in judge["warning"]
    assert "Pairwise judge" in (tmp_path / "reports" / "comparison.html").read_text()
    report = json.loads((tmp_path / "reports" / "perfect" / "report.json").read_text())
    assert "3 answer(s) the judge gave no rating for" in report["metric_results"]["judge_score"]["note"]
    assert service.leaderboard(deployment_id, source="judge").votes == 0  # unparsed: not on the leaderboard


@pytest.mark.local
@pytest.mark.slow
def test_a_real_smollm2_judge_judges_both_orders_and_feeds_the_leaderboard(tmp_path):
    """Two SmolLM2 servers answer three rows; smol-b, one of them, judges (self-preference warned).
    The router's own request count for smol-b proves 2 × C(2, 2) × 3 = 6 judge requests (+ retries
    of unparsed answers, which the report counts)."""
    import json

    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService
    from tests.helpers.smol import deploy_two_smol

    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))
    deployment = deploy_two_smol(service, "judged")
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        metrics = [{"name": "pairwise_judge", "args": {"judge": "smol-b", "max_tokens": 48}}]
        created = service.create_evaluation(_judge_spec(deployment.id, tmp_path, metrics))
        assert "self-preference" in created.details
        done = service.wait_evaluation(created.id, timeout=400)
        assert done.state == "SUCCEEDED", done.details
        judge = json.loads((tmp_path / "reports" / "comparison.json").read_text())["judge"]
        assert judge["pairs"] == 3 and len(judge["verdicts"]) == 3
        assert judge["requests"] == 6 + judge["retries"] and judge["retries"] >= judge["unparsed"] * 2
        served = {m.model_name: m.requests for m in service.deployment_metrics(deployment.id, 900).models}
        assert served["smol-b"] - 3 == judge["requests"] and served["smol-a"] == 3, served
        board = service.leaderboard(deployment.id, source="judge", resamples=20)
        assert set(board.models) == {"smol-a", "smol-b"}
        assert board.votes == judge["pairs"] - judge["unparsed"]
        print("judge:", {k: judge[k] for k in ("requests", "retries", "unparsed", "inconsistency_rate", "win_rate")})
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        service.delete(deployment.id)


def test_each_row_is_judged_once_every_model_has_answered_it_while_others_still_generate():
    from aqua_lab.arena.judge import JudgePass
    from aqua_lab.evaluation.datasets import Row
    from aqua_lab.evaluation.runner import generate

    rows = [Row(i, f"q{i}", REFERENCE) for i in range(4)]
    events: list = []

    async def chat(model, body):
        await asyncio.sleep(0.01 if model == "right" else 0.03)
        events.append(("answer", model, body["messages"][0]["content"]))
        return {"choices": [{"message": {"content": REFERENCE if model == "right" else "Lyon"}}]}

    log: list = []
    fair = judge("fair", log)

    async def ask(messages):
        events.append(("judge",))
        return await fair(messages)

    async def main():
        judging = JudgePass(rows, ["right", "wrong"], ask, check_rubric(None), concurrency=2)
        done = await generate(rows, ["right", "wrong"], chat, concurrency=1, on_row_answered=judging.row_answered)
        await judging.finish(done)
        return judging

    judging = asyncio.run(main())
    assert len(log) == 2 * len(rows)
    assert events.index(("judge",)) < max(i for i, e in enumerate(events) if e[0] == "answer")
    report = judging.pairwise_report()
    assert report["win_rate"] == {"right": 1.0, "wrong": 0.0} and report["requests_per_row"] == 2
    assert [v["winner"] for v in report["verdicts"]] == ["right"] * 4
