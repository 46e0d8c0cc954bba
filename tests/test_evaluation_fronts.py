"""Evaluation verbs through the REST API and the CLI, against the stand-in router (no model engine)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

import aqua_lab.evaluation
from aqua_lab.platforms.local import LocalPlatform
from tests.helpers.cli import run_cli
from tests.helpers.fake_models import start_fake_deployment

pytestmark = pytest.mark.evaluation

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def fake(tmp_path):
    data_dir = tmp_path / "data"
    deployment_id, proc = start_fake_deployment(data_dir, tmp_path / "router")
    try:
        yield data_dir, deployment_id
    finally:
        platform = LocalPlatform(data_dir=data_dir)
        for e in platform.list_evaluations():
            platform.delete_evaluation(e.id)
        proc.kill()
        proc.wait()


@pytest.fixture
def jp_server_config(fake):
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}},
        "AquaLab": {"platform": "local", "data_dir": str(fake[0])},
    }


async def call(jp_fetch, *parts, method="GET", body=None, params=None, expect=200, raw=False):
    kwargs = {"method": method, "params": params or {}}
    if body is not None or method in ("POST", "PUT"):
        kwargs["body"] = body if isinstance(body, bytes) else json.dumps(body or {})
    try:
        response = await jp_fetch("aqua", *parts, **kwargs)
    except HTTPClientError as exc:
        assert exc.code == expect, (exc.code, exc.response.body if exc.response else None)
        return json.loads(exc.response.body)
    assert response.code == expect, response.body
    return response if raw else json.loads(response.body)


async def test_rest_create_watch_report_and_delete(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    body = {
        "evaluation_source_id": deployment_id,
        "evaluation_name": "rest",
        "dataset_path": "sample",
        "report_path": str(tmp_path / "reports"),
        "model_parameters": {"model": "vague", "max_tokens": 16},
        "metrics": [{"name": "rouge", "args": {}}, {"name": "bleu", "args": {}}],
    }
    created = await call(jp_fetch, "evaluations", method="POST", body=body, expect=201, raw=True)
    evaluation = json.loads(created.body)
    assert created.headers["Location"].endswith(f"/aqua/evaluations/{evaluation['id']}")
    for _ in range(600):
        evaluation = await call(jp_fetch, "evaluations", evaluation["id"])
        if evaluation["state"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            break
        await asyncio.sleep(0.1)
    assert evaluation["state"] == "SUCCEEDED", evaluation["details"]
    assert evaluation["models"][0]["rows_done"] == evaluation["models"][0]["rows_total"] == 36
    listed = await call(jp_fetch, "evaluations")
    assert [e["id"] for e in listed["data"]] == [evaluation["id"]]
    report = await call(jp_fetch, "evaluations", evaluation["id"], "report", params={"model": "vague"})
    assert [s["metric"] for s in report["metric_summary_result"]] == ["rouge", "bleu"]
    assert report["data"][0]["prediction"] == "I am not sure about that."
    html = await call(jp_fetch, "evaluations", evaluation["id"], "report", params={"format": "html"}, raw=True)
    assert html.headers["Content-Type"].startswith("text/html") and b"<svg" in html.body
    metrics = await call(jp_fetch, "evaluations", "metrics")
    assert {m["name"] for m in metrics["data"]} == {
        "bertscore",
        "rouge",
        "bleu",
        "perplexity_score",
        "text_readability",
        "pairwise_judge",
        "judge_score",
    }
    gone = await call(jp_fetch, "evaluations", evaluation["id"], method="DELETE")
    assert gone["state"] == "DELETED"
    missing = await call(jp_fetch, "evaluations", evaluation["id"], expect=404)
    assert "unknown evaluation" in missing["message"]


async def test_rest_bad_requests_are_4xx_naming_the_field(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\nnot json\n{"completion": "c"}\n')
    body = {
        "evaluation_source_id": deployment_id,
        "evaluation_name": "bad",
        "dataset_path": str(bad),
        "report_path": str(tmp_path / "r"),
        "model_parameters": {},
    }
    refused = await call(jp_fetch, "evaluations", method="POST", body=body, expect=422)
    assert [e["field"] for e in refused["errors"]] == ["dataset_path line 2", "dataset_path line 3: prompt"]
    missing = await call(jp_fetch, "evaluations", method="POST", body={"evaluation_name": "x"}, expect=422)
    assert "evaluation_source_id" in [e["field"] for e in missing["errors"]]
    elsewhere = await call(jp_fetch, "evaluations", params={"platform": "bundled"}, expect=409)
    assert "cannot list" in elsewhere["message"]
    assert "unknown evaluation" in (await call(jp_fetch, "evaluations", "nope", "report", expect=404))["message"]


def test_cli_create_get_report_on_the_local_platform(fake, tmp_path):
    data_dir, deployment_id = fake
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(data_dir)}
    created = run_cli(
        "evaluation",
        "create",
        "--platform",
        "local",
        "--evaluation_source_id",
        deployment_id,
        "--evaluation_name",
        "cli",
        "--dataset_path",
        "sample",
        "--report_path",
        str(tmp_path / "cli"),
        "--model_parameters",
        '{"model": "perfect", "max_tokens": 16}',
        "--metrics",
        '[{"name": "rouge", "args": {}}]',
        env=env,
    )
    assert created.returncode == 0, created.stderr
    evaluation = json.loads(created.stdout)
    assert evaluation["state"] in ("ACCEPTED", "IN_PROGRESS")
    platform = LocalPlatform(data_dir=data_dir)
    from aqua_lab.service import AquaLabService

    assert AquaLabService(platform).wait_evaluation(evaluation["id"], timeout=120).state == "SUCCEEDED"
    got = run_cli("evaluation", "get", "--evaluation_id", evaluation["id"], env=env)
    assert got.returncode == 0 and json.loads(got.stdout)["models"][0]["rows_done"] == 36
    report = run_cli("evaluation", "report", "--evaluation_id", evaluation["id"], "--model", "perfect", env=env)
    assert json.loads(report.stdout)["metric_summary_result"][0]["score"] == "Median rougeL: 1.000 (SD: 0.000)"
    assert (tmp_path / "cli" / "perfect" / "report.html").exists() and (tmp_path / "cli" / "comparison.html").exists()
    metrics = run_cli("evaluation", "metrics", env=env)
    names = [m["name"] for m in json.loads(metrics.stdout)]
    scorers = ["bertscore", "rouge", "bleu", "perplexity_score", "text_readability"]
    assert names == [*scorers, "pairwise_judge", "judge_score"]
    listed = run_cli("evaluation", "list", "--array", env=env)
    assert [e["id"] for e in json.loads(listed.stdout)] == [evaluation["id"]]
    bad = run_cli("evaluation", "get", "--evaluation_id", "nope", env=env)
    assert bad.returncode == 2 and "unknown evaluation 'nope'" in bad.stderr
    again = run_cli(
        "evaluation",
        "create",
        "--platform",
        "local",
        "--evaluation_source_id",
        deployment_id,
        "--evaluation_name",
        "cli",
        "--dataset_path",
        "sample",
        "--report_path",
        str(tmp_path / "cli"),
        "--model_parameters",
        "{}",
        env=env,
    )
    assert again.returncode == 2 and "already holds a report" in again.stderr


def test_the_evaluation_panel_shows_progress_then_the_comparison(fake):
    from aqua_lab.service import AquaLabService
    from aqua_lab.widgets import EvaluationPanel

    data_dir, deployment_id = fake
    panel = EvaluationPanel(AquaLabService(LocalPlatform(data_dir=data_dir)), deployment_id, poll_s=0.1)
    assert panel.deployment.value == deployment_id
    assert not {panel.shape, panel.block_storage, panel.experiment, panel.log_group} & set(panel.children)  # OCI's
    assert list(panel.model.options)[1:] == ["perfect", "vague", "slow", "broken"]
    panel.params.value = "{not json"
    panel.evaluate()
    assert "model_parameters: not valid JSON" in panel.errors["model_parameters"].value  # under its field
    assert "1 problem shown under its field" in panel.status.value
    panel.params.value = '{"max_tokens": 16}'
    panel.model.value = "perfect"
    panel.metrics["bertscore"].value = False
    # an uploaded dataset lands beside the reports and is what gets evaluated
    sample = Path(aqua_lab.evaluation.__file__).parent / "data" / "sample.jsonl"
    rows = b"".join(sample.read_bytes().splitlines(keepends=True)[:3])  # rows the stand-in models know
    panel.upload.value = (_uploaded("mine.csv", b"a,b"),)
    assert "mine.csv is not a .jsonl file" in panel.status.value and panel.dataset.value == "sample"
    panel.upload.value = (_uploaded("mine.jsonl", rows),)
    assert "uploaded mine.jsonl (3 lines)" in panel.status.value
    assert panel.dataset.value.endswith("mine.jsonl") and open(panel.dataset.value, "rb").read() == rows
    panel.evaluate()
    panel.worker.join(120)
    assert "SUCCEEDED" in panel.status.value, panel.status.value
    assert panel.bars["perfect"].value == 3 and panel.bars["perfect"].bar_style == "success"
    table, charts, link, show, view = panel.result.children
    assert "rougeL" in table.value and "1.000" in table.value
    assert charts.value.count("<svg") == 4 and "comparison.html" in link.value
    show.value = True  # the comparison report, inside the panel
    assert "<iframe" in view.value and "perfect" in view.value and "&lt;svg" in view.value
    show.value = False
    assert view.value == ""


def _uploaded(name: str, data: bytes) -> dict:
    """A FileUpload value entry as ipywidgets makes it from the browser's file."""
    now = datetime.now(UTC)
    return {"name": name, "type": "", "size": len(data), "content": memoryview(data), "last_modified": now}


def test_the_workspace_evaluate_tab_opens_on_the_chosen_deployment(fake):
    from aqua_lab.service import AquaLabService
    from aqua_lab.widgets import AquaLabWidget

    data_dir, deployment_id = fake
    app = AquaLabWidget(AquaLabService(LocalPlatform(data_dir=data_dir)))
    assert app.tabs.titles[-1] == "Evaluate"
    app.deployments.refresh()
    app.deployments.choice.value = deployment_id
    evaluate = next(b for b in app.deployments.children if getattr(b, "description", "") == "Evaluate")
    evaluate.click()
    assert app.tabs.selected_index == app.tabs.titles.index("Evaluate")
    (panel,) = app.evaluation_box.children
    assert panel.deployment.value == deployment_id
    assert list(panel.model.options)[1:] == ["perfect", "vague", "slow", "broken"]
    assert panel.metrics["bleu"].description == "BLEU (sacrebleu, 0–100)" and panel.metrics["rouge"].value
