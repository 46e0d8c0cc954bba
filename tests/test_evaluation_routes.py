"""The per-evaluation routes a UI polls and draws from (status, metrics, config, dataset upload) and
ADS's paths for the same verbs, against the stand-in router (no model engine)."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest

from aqua_lab.domain import EvaluationSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.server.limits import MAX_UPLOAD_BYTES
from aqua_lab.service import AquaLabService
from tests import test_evaluation_fronts as fronts
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.evaluation

# the stand-in deployment, its server config and the request helper: the front tests' own
fake, jp_server_config, call = fronts.fake, fronts.jp_server_config, fronts.call

pytest_plugins = ["pytest_jupyter.jupyter_server"]

GOOD = '{"prompt": "a", "completion": "b"}\n'
ROWS = '{"prompt": "2+2?", "completion": "4", "category": "math"}\n{"prompt": "Sky?", "completion": "blue"}\n'


def spec(deployment_id, tmp_path, **extra):
    return {
        "evaluation_source_id": deployment_id,
        "evaluation_name": "routes",
        "dataset_path": "sample",
        "report_path": str(tmp_path / "reports"),
        "model_parameters": {"max_tokens": 16},
        "metrics": [{"name": "rouge", "args": {}}, {"name": "bleu", "args": {}}],
        **extra,
    }


async def test_status_polls_progress_then_metrics_give_every_models_scores(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    created = await call(jp_fetch, "evaluations", method="POST", body=spec(deployment_id, tmp_path), expect=201)
    seen = []
    for _ in range(600):
        status = await call(jp_fetch, "evaluations", created["id"], "status")
        seen.append(status)
        if status["finished"]:
            break
        await asyncio.sleep(0.1)
    assert status["state"] == status["lifecycle_state"] == "SUCCEEDED", status["lifecycle_details"]
    served = {"perfect", "vague", "slow", "broken"}
    assert {m["model"] for m in status["models"]} == served
    assert status["rows_total"] == 4 * 36 and status["eta_s"] is None
    assert all(s["rows_done"] <= s["rows_total"] for s in seen)
    assert "data" not in json.dumps(status)  # the light poll carries no report rows

    metrics = await call(jp_fetch, "evaluations", created["id"], "metrics")
    by_model = {m["model"]: m for m in metrics["models"]}
    assert set(by_model) == served
    perfect = {s["name"]: s for s in by_model["perfect"]["metrics"]}
    vague = {s["name"]: s for s in by_model["vague"]["metrics"]}
    assert set(perfect) == {"rouge", "bleu"}
    # the fake "perfect" model answers the reference itself; "vague" answers the same sentence always
    assert perfect["rouge"]["summary"]["rouge1"]["median"] == pytest.approx(1.0)
    assert vague["rouge"]["summary"]["rouge1"]["median"] < 0.5
    assert perfect["rouge"]["summary"]["rouge1"]["count"] == 36
    headline = perfect["rouge"]["headline"]
    assert by_model["perfect"]["metric_summary_result"][0]["score"].startswith(f"Median {headline}: 1.000")
    # the same numbers as the report itself
    report = await call(jp_fetch, "evaluations", created["id"], "report", params={"model": "vague"})
    assert report["metric_results"]["rouge"]["summary"]["rougeL"] == vague["rouge"]["summary"]["rougeL"]
    one = await call(jp_fetch, "evaluations", created["id"], "metrics", params={"model": "vague"})
    assert [m["model"] for m in one["models"]] == ["vague"]
    wrong = await call(jp_fetch, "evaluations", created["id"], "metrics", params={"model": "nope"}, expect=422)
    assert wrong["errors"][0]["field"] == "model" and "perfect" in wrong["errors"][0]["fix"]


async def test_the_html_report_runs_no_script_and_loads_nothing(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    body = spec(deployment_id, tmp_path, model_parameters={"model": "vague", "max_tokens": 8})
    created = await call(jp_fetch, "evaluations", method="POST", body=body, expect=201)
    for _ in range(600):
        if (await call(jp_fetch, "evaluations", created["id"], "status"))["finished"]:
            break
        await asyncio.sleep(0.1)
    html = await call(jp_fetch, "evaluations", created["id"], "report", params={"format": "html"}, raw=True)
    policy = html.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "script-src" not in policy
    assert b"<svg" in html.body
    # ADS's report answer: the same page, base64 in JSON
    ads = await call(jp_fetch, "evaluation", created["id"], "report")
    assert ads["evaluation_id"] == created["id"]
    assert base64.b64decode(ads["content"]) == html.body


async def test_metrics_before_the_end_are_409_and_status_names_unknown_ids(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    body = spec(deployment_id, tmp_path, model_parameters={"model": "slow", "max_tokens": 8})
    created = await call(jp_fetch, "evaluations", method="POST", body=body, expect=201)
    early = await call(jp_fetch, "evaluations", created["id"], "metrics", expect=409)
    assert "its report comes when it SUCCEEDED" in early["message"]
    canceled = await call(jp_fetch, "evaluation", created["id"], "cancel", method="PUT")  # ADS's verb
    assert canceled["state"] == "CANCELED"
    status = await call(jp_fetch, "evaluation", created["id"], "status")
    assert status["lifecycle_state"] == "CANCELED" and status["finished"]
    missing = await call(jp_fetch, "evaluations", "no-such-evaluation", "status", expect=404)
    assert "unknown evaluation" in missing["message"]


async def test_ads_paths_list_create_read_and_delete_through_the_same_verbs(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    body = spec(deployment_id, tmp_path, model_parameters={"model": "perfect", "max_tokens": 8})
    created = await call(jp_fetch, "evaluation", method="POST", body=body, expect=201)
    assert created["state"] == "ACCEPTED" and created["model"] == "perfect"
    listed = await call(jp_fetch, "evaluations")
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert [e["id"] for e in (await call(jp_fetch, "evaluation"))["data"]] == [created["id"]]
    assert (await call(jp_fetch, "evaluation", created["id"]))["name"] == "routes"
    supported = await call(jp_fetch, "evaluation", "metrics")
    assert "rouge" in {m["name"] for m in supported["data"]}
    config = await call(jp_fetch, "evaluation", "config")
    assert config["model_params"]["max_tokens"] > 0 and config["sample_rows"] == 36
    assert config["reports_dir"].startswith(str(fake[0]))
    assert set(config["default_metrics"]) <= {m["name"] for m in config["metrics"]}
    gone = await call(jp_fetch, "evaluation", created["id"], method="DELETE")
    assert gone["state"] == "DELETED"
    refused = await call(jp_fetch, "evaluation", method="POST", body={"evaluation_name": "x"}, expect=422)
    assert "evaluation_source_id" in [e["field"] for e in refused["errors"]]


async def test_an_uploaded_dataset_is_stored_once_and_evaluates(jp_fetch, fake, tmp_path):
    data_dir, deployment_id = fake
    upload = {"filename": "mine.jsonl", "content": ROWS}
    stored = await call(jp_fetch, "evaluations", "datasets", method="POST", body=upload, expect=201)
    assert stored["rows"] == 2 and stored["categories"] == {"": 1, "math": 1}
    assert stored["dataset_path"].startswith(str(data_dir / "datasets"))
    again = await call(jp_fetch, "evaluations", "datasets", method="POST", body=upload, expect=201)
    assert again["dataset_path"] == stored["dataset_path"]
    body = spec(deployment_id, tmp_path, dataset_path=stored["dataset_path"], model_parameters={"model": "perfect"})
    created = await call(jp_fetch, "evaluations", method="POST", body=body, expect=201)
    assert created["models"][0]["rows_total"] == 2


@pytest.mark.parametrize(
    ("upload", "field", "words"),
    [
        ({"filename": "d.jsonl", "content": GOOD + "not json\n"}, "content line 2", "JSON"),
        ({"filename": "d.jsonl", "content": '{"prompt": "a"}\n'}, "content line 1: completion", "missing"),
        ({"filename": "d.jsonl", "content": '{"prompt": "", "completion": "b"}\n'}, "content line 1: prompt", "empty"),
        ({"filename": "d.jsonl", "content": "\n\n"}, "content", "no rows"),
        ({"filename": "d.csv", "content": ROWS}, "filename", ".jsonl"),
        ({"filename": "d.jsonl"}, "content", "required"),
    ],
)
async def test_a_bad_upload_is_422_naming_the_line_and_field(jp_fetch, fake, upload, field, words):
    refused = await call(jp_fetch, "evaluations", "datasets", method="POST", body=upload, expect=422)
    problems = {p["field"]: p for p in refused["errors"]}
    assert field in problems, refused
    assert words.lower() in (problems[field]["message"] + " " + (problems[field]["fix"] or "")).lower()
    assert not (fake[0] / "datasets").exists() or not any((fake[0] / "datasets").iterdir())


async def test_an_upload_over_its_limit_is_413_saying_the_limit_and_the_way_out(jp_fetch, fake):
    content = '{"prompt": "p", "completion": "c"}\n' * (MAX_UPLOAD_BYTES // 30)
    body = json.dumps({"filename": "big.jsonl", "content": content}).encode()
    refused = await call(jp_fetch, "evaluations", "datasets", method="POST", body=body, expect=413)
    assert f"the limit is {MAX_UPLOAD_BYTES} bytes" in refused["message"]
    assert "path on the server's machine" in refused["message"]
    document = await call(jp_fetch, "openapi.json")
    upload = document["paths"]["/aqua/evaluations/datasets"]["post"]
    assert str(MAX_UPLOAD_BYTES) in upload["responses"]["413"]["description"]
    for path in ("/aqua/evaluations/{evaluation_id}/status", "/aqua/evaluation/{evaluation_id}/cancel"):
        assert path in document["paths"]
    assert "put" in document["paths"]["/aqua/evaluation/{evaluation_id}/cancel"]


async def test_a_path_with_a_nul_byte_is_422_on_its_field_not_a_crash(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    for field in ("dataset_path", "report_path"):
        body = spec(deployment_id, tmp_path, **{field: "/tmp/a\x00b"})
        refused = await call(jp_fetch, "evaluations", method="POST", body=body, expect=422)
        assert [e["field"] for e in refused["errors"]] == [field]
        assert "NUL" in refused["errors"][0]["message"]
    refused = await call(jp_fetch, "models", method="POST", body={"path": "/tmp/m\x00.gguf"}, expect=422)
    assert refused["errors"][0]["field"] == "path"


def test_cli_status_prints_the_same_light_poll(fake, tmp_path):
    data_dir, deployment_id = fake
    service = AquaLabService(LocalPlatform(data_dir=data_dir))
    created = service.create_evaluation(
        EvaluationSpec.model_validate(spec(deployment_id, tmp_path, model_parameters={"model": "perfect"}))
    )
    service.wait_evaluation(created.id, timeout=120)
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(data_dir)}
    shown = run_cli("evaluation", "status", "--evaluation_id", created.id, env=env)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["lifecycle_state"] == "SUCCEEDED" and status["finished"]
    assert [(m["model"], m["rows_done"], m["rows_total"]) for m in status["models"]] == [("perfect", 36, 36)]
    missing = run_cli("evaluation", "status", "--evaluation_id", "nope", env=env)
    assert missing.returncode == 2 and "unknown evaluation 'nope'" in missing.stderr
