"""What a new user found trying issue 27's judge, leaderboard and notebook runner: a pairwise judge of one
model refused at create on every platform; overlapping intervals worded by why they overlap (few
comparisons, or many that found no difference), the same on every front; the self-preference warning
kept for an evaluation's whole life, and the evaluated deployment named in ``source``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aqua_lab.arena.leaderboard import TIE, WIN_A, WIN_B, leaderboard
from aqua_lab.arena.store import VoteStore
from aqua_lab.errors import InvalidInput
from tests import test_evaluation_oci_notebook as on_notebook
from tests.helpers.cli import run_cli
from tests.test_judge import _judge_spec, judged_deployment  # noqa: F401 — a fixture used here

pytestmark = [pytest.mark.arena, pytest.mark.evaluation]

# the emulator's OCI deployment (two models) and a service built by name, as the notebook runner needs
emulator, deployment, service = on_notebook.emulator, on_notebook.deployment, on_notebook.service

ROOT = Path(__file__).resolve().parent.parent
ONE_MODEL = (
    "metrics[0].name: pairwise_judge compares two or more models — drop model_parameters.model to evaluate "
    "every model, or use judge_score for one"
)


# 1. a pairwise judge needs two models -------------------------------------------------------------------


def _refused(create) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        create()
    return refused.value


def test_a_pairwise_judge_of_one_chosen_model_is_refused_at_create_locally(judged_deployment, tmp_path):  # noqa: F811
    svc, deployment_id, _ = judged_deployment
    spec = _judge_spec(deployment_id, tmp_path, [{"name": "pairwise_judge"}])
    one = spec.model_copy(update={"model_parameters": {**spec.model_parameters, "model": "perfect"}})
    error = _refused(lambda: svc.create_evaluation(one))
    assert [p.field for p in error.problems] == ["metrics[0].name"] and str(error) == ONE_MODEL
    assert svc.list_evaluations() == []  # nothing started, nothing stored
    # one model is what judge_score is for: accepted
    scored = one.model_copy(update={"metrics": [m.model_copy(update={"name": "judge_score"}) for m in one.metrics]})
    created = svc.create_evaluation(scored)
    assert created.models[0].model == "perfect"


@pytest.mark.oci
def test_a_pairwise_judge_of_one_chosen_model_is_refused_by_the_notebook_runner_and_on_oci(
    service, deployment, tmp_path
):
    one = {"max_tokens": 8, "model": on_notebook.MISTRAL}
    spec = on_notebook._spec(deployment, tmp_path, [{"name": "pairwise_judge"}], model_parameters=one)
    error = _refused(lambda: service.create_evaluation(spec))
    assert str(error) == ONE_MODEL
    assert not [e for e in service.list_evaluations() if e.name == spec.evaluation_name and e.model == one["model"]]
    # AQUA's job (runner service) says both: its container cannot judge, and one model has no pair
    oci = spec.model_copy(
        update={"runner": "service", "dataset_path": "oci://b@ns/d.jsonl", "report_path": "oci://b@ns/r/"}
    )
    error = _refused(lambda: service.create_evaluation(oci))
    said = [str(p) for p in error.problems]
    assert "AQUA evaluation container on OCI" in said[0] and said[1] == ONE_MODEL, said


@pytest.mark.cli
@pytest.mark.oci
def test_cli_notebook_runner_refuses_a_pairwise_judge_of_one_model_in_one_line(service, deployment, tmp_path):
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in on_notebook.ROWS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQUA_LAB_")}
    env.update(
        {
            "OCI_CONFIG_LOCATION": str(service.config_file),
            "AQUA_LAB_OCI_ENDPOINT": service.url,
            "AQUA_LAB_COMPARTMENT_OCID": on_notebook.HOME,
            "AQUA_LAB_SERVICE_COMPARTMENT_OCID": on_notebook.SERVICE,
            "PROJECT_OCID": on_notebook.PROJECT,
            "AQUA_LAB_DATA_DIR": str(tmp_path / "data"),
        }
    )
    done = run_cli(
        *("evaluation", "create", "--platform", "oci", "--runner", "notebook"),
        *("--evaluation_source_id", deployment.id, "--evaluation_name", "one"),
        *("--dataset_path", str(dataset), "--report_path", str(tmp_path / "reports")),
        *("--model_parameters", json.dumps({"model": on_notebook.MISTRAL}), "--metrics", '[{"name":"pairwise_judge"}]'),
        env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "metrics[0].name: pairwise_judge compares two or more models" in done.stderr


# 2. why intervals overlap --------------------------------------------------------------------------------


def _board(outcomes: list[int]):
    return leaderboard(["g1", "g2"], [0] * len(outcomes), [1] * len(outcomes), outcomes, resamples=50)


def test_many_ties_say_no_difference_found_and_few_comparisons_say_compare_more():
    ties = _board([TIE] * 36)
    assert ties.standings[0].unresolved == ["g2"]
    assert ties.notes == ["g1 and g2: 36 comparisons, all ties: no difference found"]
    few = _board([WIN_A, WIN_B, TIE])
    assert few.notes == [
        "Not enough comparisons to tell apart g1 and g2: only 3 comparisons, their intervals overlap — compare more"
    ]
    mixed = _board([WIN_A, WIN_B] * 20)
    assert mixed.notes == ["g1 and g2: 40 comparisons, their intervals overlap: no clear difference found"]
    apart = _board([WIN_A] * 40)
    assert apart.notes == [] and apart.standings[0].unresolved == []


@pytest.mark.cli
@pytest.mark.widgets
def test_every_front_shows_the_same_words_for_judged_pairs_that_all_tied(tmp_path):
    from aqua_lab.evaluation.report import judge_leaderboard, judge_leaderboard_html
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService
    from aqua_lab.widgets.arena import leaderboard_html

    said = "g1 and g2: 36 comparisons, all ties: no difference found"
    verdicts = [{"model_a": "g1", "model_b": "g2", "verdict": "tie"}] * 36
    VoteStore(tmp_path / "local.sqlite").add(
        [
            {"id": f"judge-e-{i}", "deployment_id": "local-gone", "source": "judge", "verdict": "tie"}
            | {"model_a": "g1", "model_b": "g2", "record": {"judge": "j", "evaluation_id": "e"}}
            for i in range(36)
        ]
    )
    board = AquaLabService(LocalPlatform(data_dir=tmp_path)).leaderboard("local-gone", source="judge", resamples=50)
    assert board.votes == 36 and board.notes == [said]
    # CLI
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(tmp_path)}
    cli = run_cli("deployment", "leaderboard", "--platform", "local", "--model_deployment_id", "local-gone", "--source",
                  "judge", env=env)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert said in cli.stdout and "not enough comparisons" not in cli.stdout.lower()
    # widgets
    html = leaderboard_html(board)
    assert said in html and "not enough comparisons" not in html.lower()
    # the evaluation report's judge section
    section = judge_leaderboard_html(judge_leaderboard({"verdicts": verdicts}, ["g1", "g2"]))
    assert said in section and "not enough comparisons" not in section.lower()
    # the sidebar shows the board's notes and words none of its own
    ts = (ROOT / "labextension" / "src" / "leaderboard.ts").read_text()
    render = ts.split("export function renderLeaderboard")[1].split("\n}\n")[0]
    assert "board.notes" in render and "enough comparisons" not in ts.lower()


# 3. the self-preference warning for the evaluation's whole life, and source.name ------------------------


@pytest.mark.local
def test_a_local_evaluation_keeps_its_self_preference_warning_once_succeeded(judged_deployment, tmp_path):  # noqa: F811
    svc, deployment_id, _ = judged_deployment
    created = svc.create_evaluation(_judge_spec(deployment_id, tmp_path, [{"name": "pairwise_judge"}]))
    assert created.details.count("self-preference") == 1
    done = svc.wait_evaluation(created.id, timeout=120)
    assert done.state == "SUCCEEDED" and "the judge perfect is one of the judged models" in done.details
    assert svc.evaluation_status(created.id).lifecycle_details == done.details
    assert [e.details for e in svc.list_evaluations()] == [done.details]
    assert done.source.id == deployment_id and done.source.name == svc.get_deployment(deployment_id).display_name
    judge = json.loads((tmp_path / "reports" / "comparison.json").read_text())["judge"]
    assert "self-preference" in judge["warning"]
    assert "self-preference" in (tmp_path / "reports" / "comparison.html").read_text()


@pytest.mark.oci
def test_a_notebook_evaluation_keeps_its_self_preference_warning_and_names_its_source(service, deployment, tmp_path):
    created = service.create_evaluation(on_notebook._spec(deployment, tmp_path, [{"name": "pairwise_judge"}]))
    assert created.details.count("self-preference") == 1
    done, _ = on_notebook._watch(service, created.id)
    try:
        assert done.state == "SUCCEEDED" and done.details.count("self-preference") == 1, done.details
        assert service.evaluation_status(created.id).lifecycle_details == done.details
        assert done.source.id == deployment.id
        assert done.source.name == deployment.display_name == "modelDeployment_multmodel_model1_model2"
        assert "self-preference" in service.evaluation_report(created.id, fmt="html")
    finally:
        service.delete_evaluation(created.id)
