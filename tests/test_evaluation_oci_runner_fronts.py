"""The fronts' runner choice for an OCI evaluation (issue 27 item 5): the widgets' Evaluate panel and
the sidebar's Evaluate form offer "Run on: OCI job (AQUA's container) | this notebook (aqua_lab's
runner)"; the notebook runner hides the job's own fields and enables the judge metrics, which AQUA's
job keeps disabled with the reason shown, and its evaluations show rows-done progress bars like a
local one's.  Against the emulator: its deployment answers through the signed ``/predict``."""

from __future__ import annotations

import json
import time

import pytest

from tests.test_evaluation_oci_notebook import (  # noqa: F401  (the emulator, a by-name service, its deployment)
    FALCON,
    HOME,
    MISTRAL,
    PROJECT,
    SERVICE,
    deployment,
    emulator,
    service,
)
from tests.test_sidebar import SHOTS, drive, lab  # noqa: F401 - lab is a fixture

pytestmark = [pytest.mark.evaluation, pytest.mark.oci]


def _shown(widget) -> bool:
    return widget.layout.display != "none"


def test_the_panel_runs_a_pairwise_judge_evaluation_of_an_oci_deployment_in_the_notebook(
    service,  # noqa: F811
    deployment,  # noqa: F811
    emulator,  # noqa: F811
):
    from aqua_lab.widgets import EvaluationPanel

    panel = EvaluationPanel(service, deployment.id, poll_s=0.05)
    made = []
    try:
        # AQUA's job by default: its fields shown, the judge metrics disabled with the reason shown
        assert panel.runner in panel.children and panel.runner.value == "service"
        assert [label for label, _ in panel.runner.options] == [
            "OCI job (AQUA's container)",
            "this notebook (aqua_lab's runner: judge metrics, leaderboard)",
        ]
        assert _shown(panel.shape) and _shown(panel.log_group) and _shown(panel.experiment)
        judge = panel.metrics["pairwise_judge"]
        assert judge.disabled and panel.metrics["judge_score"].disabled
        assert "Pairwise judge and Judge score need aqua_lab&#x27;s runner" in panel.runner_note.value
        assert "choose Run on “this notebook”" in panel.runner_note.value
        assert "cannot call a judge" in judge.tooltip
        assert panel.report_path.value == "" and panel.report_path.placeholder.startswith("oci://")

        # the notebook: the job's fields hidden, the judge metrics enabled, a report folder here
        panel.runner.value = "notebook"
        assert not _shown(panel.shape) and not _shown(panel.log_group) and not _shown(panel.experiment)
        assert not judge.disabled and panel.runner_note.value == ""
        assert panel.report_path.value.startswith("/") and not panel.report_path.value.startswith("oci://")
        judge.value = True
        panel.metrics["bertscore"].value = False  # rouge: quick to score
        assert _shown(panel.judge_box)
        panel.params.value = '{"max_tokens": 8}'
        assert panel.spec().runner == "notebook" and panel.spec().dataset_path == "sample"

        # slow answers until the bars have moved, so the panel is seen counting rows
        emulator.inject(r"/predict$", delay_s=0.05, count=10_000)
        try:
            panel.evaluate()
            assert panel.evaluation is not None, panel.status.value
            made.append(panel.evaluation.id)
            assert panel.evaluation.id.startswith("nbeval-")
            assert set(panel.bars) == {MISTRAL, FALCON} and panel.chips == {}
            moved: set[tuple[str, int]] = set()
            deadline = time.monotonic() + 150
            while panel.worker.is_alive() and time.monotonic() < deadline:
                moved |= {(m, bar.value) for m, bar in panel.bars.items() if 0 < bar.value < bar.max}
                if len(moved) >= 2:
                    with emulator._lock:
                        emulator.faults.clear()
                time.sleep(0.02)
            panel.worker.join(60)
        finally:
            with emulator._lock:
                emulator.faults.clear()
        assert "SUCCEEDED" in panel.status.value, panel.status.value
        assert moved, "no bar showed rows done while the evaluation ran"
        for bar in panel.bars.values():
            assert bar.value == bar.max == 36 and bar.bar_style == "success"  # the bundled sample's rows
        # the judge's verdicts came back: the comparison has the judge's section and the leaderboard its votes
        table = panel.result.children[0].value
        assert MISTRAL in table and FALCON in table
        board = service.leaderboard(deployment.id, source="judge", resamples=10)
        assert board.votes >= 36

        # back to AQUA's job: its fields again, the judge unticked and disabled, the bucket asked for again
        panel.runner.value = "service"
        assert _shown(panel.shape) and judge.disabled and not judge.value
        assert panel.report_path.value == "" and "choose Run on" in panel.runner_note.value
    finally:
        for evaluation_id in made:
            service.delete_evaluation(evaluation_id)


def test_the_runner_choice_is_only_on_oci(tmp_path):
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService
    from aqua_lab.widgets import EvaluationPanel

    panel = EvaluationPanel(AquaLabService(LocalPlatform(data_dir=tmp_path)))
    # locally aqua_lab's runner always runs it: no choice, the judge metrics there to tick
    assert panel.runner not in panel.children and not panel.metrics["pairwise_judge"].disabled
    assert panel.in_notebook and "runner" not in panel.spec().model_fields_set


@pytest.mark.browser
@pytest.mark.server
def test_the_sidebar_form_picks_this_notebook_and_runs_the_judge_on_an_oci_deployment(
    lab,  # noqa: F811
    service,  # noqa: F811
    deployment,  # noqa: F811
    emulator,  # noqa: F811
    tmp_path,
):
    url = lab(
        "/",
        extra=(
            "--AquaLab.platform=oci",
            f"--AquaLab.oci_config_file={service.config_file}",
            f"--AquaLab.compartment_id={HOME}",
            f"--AquaLab.project_id={PROJECT}",
            f"--AquaLab.service_compartment_id={SERVICE}",
            f"--AquaLab.oci_endpoint={emulator.url}",
        ),
    )
    reports = tmp_path / "reports"
    emulator.inject(r"/predict$", delay_s=0.05, count=10_000)  # answers slow enough for a poll to see rows move
    try:
        found = drive(url, str(reports), script="evaluations-oci-runner.mjs", timeout=400)
    finally:
        with emulator._lock:
            emulator.faults.clear()
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
    assert found["consoleErrors"] == [], found["consoleErrors"]
    assert found["runnerLabels"] == [
        "OCI job (AQUA’s container)",
        "this notebook (aqua_lab’s runner: judge metrics, leaderboard)",
    ]
    # AQUA's job: its fields, the judge metrics disabled and why
    job = found["job"]
    assert job["runner"] == "service" and job["jobShapeVisible"] and job["logGroupVisible"]
    assert job["datasetNoteVisible"] and job["judgeDisabled"] and job["judgeScoreDisabled"]
    assert "choose Run on “this notebook”" in job["note"] and "cannot call a judge model" in job["judgeTitle"]
    assert job["report"] == "" and job["reportPlaceholder"].startswith("oci://")
    assert "Pairwise judge and Judge score need aqua_lab’s runner" in job["note"]
    assert job["datasetPlaceholder"].startswith("oci://")
    # this notebook: the job's fields gone, the judge metrics there to tick, a folder on the server for reports
    notebook = found["notebook"]
    assert notebook["runner"] == "notebook" and not notebook["judgeDisabled"] and not notebook["judgeScoreDisabled"]
    assert not notebook["jobShapeVisible"] and not notebook["logGroupVisible"] and not notebook["datasetNoteVisible"]
    assert notebook["note"] == "" and notebook["judgeTitle"] == ""
    assert notebook["datasetPlaceholder"] == "/path/on/the/server/dataset.jsonl"
    assert notebook["report"].startswith("~/aqua-lab-reports/evaluation-")  # the form's name, a time stamp
    # made by aqua_lab's runner, its progress counted in rows per model (no indeterminate bar), then the judge
    assert found["evaluationId"].startswith("nbeval-") and found["state"] == "SUCCEEDED", found.get("details")
    progress = found["progress"]
    assert set(progress["done"]) == {MISTRAL, FALCON} and progress["indeterminate"] == 0
    for model, seen in progress["done"].items():
        assert seen[-1] == "36/36" and len(seen) >= 2, (model, seen)  # the bundled sample, seen moving
    assert any("pairwise_judge" in m for m in found["meta"]) and any(str(reports) in m for m in found["meta"])
    # the judge asked both orders of the one pair for each of the 36 rows, through the signed predict
    judge = json.loads((reports / "comparison.json").read_text())["judge"]
    assert judge["requests"] == 2 * 36 and judge["errors"] == 0 and judge["judge"] == MISTRAL
    assert "Pairwise judge" in (reports / "comparison.html").read_text()
    for name in ("job", "notebook", "done"):
        for suffix in ("", "-dark"):
            assert (SHOTS / f"evaluations-oci-runner-{name}{suffix}.png").stat().st_size > 5000
