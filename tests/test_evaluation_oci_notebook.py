"""aqua_lab's own evaluation runner against an OCI deployment (issue 27 item 5, ``runner: notebook``):
the emulator's deployment answers through the signed ``/predict`` the OCI chat uses, the job runs on
this machine with the local runner's progress, reports and metrics, and the judge's verdicts reach the
deployment's leaderboard keyed by its OCID.  AQUA's container job stays the default (``runner: service``)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from aqua_lab.domain import EvaluationSpec
from aqua_lab.emulator import write_api_key_config
from aqua_lab.errors import InvalidInput
from aqua_lab.platforms.oci import OciPlatform, Settings, resolve_auth
from aqua_lab.platforms.registry import PlatformSettings
from aqua_lab.service import AquaLabService
from tests import test_evaluation_oci as on_oci  # its import sets the SDK's retry variables for the job too
from tests.helpers.cli import run_cli

HOME, SERVICE, PROJECT, MISTRAL, FALCON = on_oci.HOME, on_oci.SERVICE, on_oci.PROJECT, on_oci.MISTRAL, on_oci.FALCON
# the same fixtures: the emulator (the seed's service models, an Object Storage) and the seed's two-model
# deployment, made through this module's service
emulator, deployment = on_oci.emulator, on_oci.deployment

pytestmark = [pytest.mark.evaluation, pytest.mark.oci]

pytest_plugins = ["pytest_jupyter.jupyter_server"]

ROWS = [
    {"prompt": "what is an activation function?", "completion": "a function applied to a neuron's output"},
    {"prompt": "name a prime number", "completion": "seven is a prime number"},
    {"prompt": "what colour is the sky?", "completion": "the sky is blue on a clear day"},
]


@pytest.fixture(scope="module")
def service(emulator, tmp_path_factory):
    """Built by name, as the server, the widgets and the CLI build it: the job rebuilds it from these."""
    config = write_api_key_config(emulator, tmp_path_factory.mktemp("oci"))
    settings = PlatformSettings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        oci_config_file=str(config),
        compartment_id=HOME,
        project_id=PROJECT,
        service_compartment_id=SERVICE,
        oci_endpoint=emulator.url,
    )
    service = AquaLabService("oci", settings)
    service.config_file, service.url = config, emulator.url
    return service


class _Judge(BaseHTTPRequestHandler):
    """An external llama.cpp-like judge: ``/models`` owned by ``llamacpp``; prefers the falcon answer."""

    asked: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "judge", "object": "model", "owned_by": "llamacpp"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).asked.append(body)
        text = body["messages"][-1]["content"]
        first = text.split("[Answer A]\n")[1].split("\n\n[Answer B]")[0]
        verdict = "[[A]]" if first.startswith(FALCON) else "[[B]]"
        self._send({"choices": [{"message": {"role": "assistant", "content": verdict}}]})


@pytest.fixture
def judge_url():
    _Judge.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def _spec(deployment, tmp_path, metrics, **overrides) -> EvaluationSpec:
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return EvaluationSpec.model_validate(
        {
            "evaluation_source_id": deployment.id,
            "evaluation_name": "judged on oci",
            "dataset_path": str(dataset),
            "report_path": str(tmp_path / "reports"),
            "model_parameters": {"max_tokens": 8},
            "metrics": metrics,
            "runner": "notebook",
            **overrides,
        }
    )


def _watch(service, evaluation_id, timeout=90):
    """(the last evaluation, every (state, rows done) the status showed)."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.evaluation_status(evaluation_id)
        if not seen or seen[-1] != (status.state, status.rows_done):
            seen.append((status.state, status.rows_done))
        if status.finished:
            return service.get_evaluation(evaluation_id), seen
        time.sleep(0.05)
    raise AssertionError(f"{evaluation_id} still {seen[-1]} after {timeout}s")


def test_the_notebook_runner_evaluates_an_oci_deployment_and_its_judge_feeds_the_leaderboard(
    service, deployment, judge_url, tmp_path
):
    metrics = [{"name": "rouge"}, {"name": "pairwise_judge", "args": {"judge": {"url": judge_url, "model": "judge"}}}]
    created = service.create_evaluation(_spec(deployment, tmp_path, metrics))
    assert created.id.startswith("nbeval-") and created.deployment_id == deployment.id
    assert [m.model for m in created.models] == [MISTRAL, FALCON]
    assert created.id in [e.id for e in service.list_evaluations()]

    done, seen = _watch(service, created.id)
    assert done.state == "SUCCEEDED", done.details
    assert seen[-1] == ("SUCCEEDED", 2 * len(ROWS))
    assert all(m.state == "SUCCEEDED" and m.rows_done == len(ROWS) for m in done.models)

    comparison = json.loads(service.evaluation_report(created.id))
    judge = comparison["judge"]
    # 2 × C(2, 2) requests a row, both orders; the judge is llama.cpp-like: its answer under a grammar
    assert judge["requests_per_row"] == 2 * math.comb(2, 2) and judge["requests"] == 2 * len(ROWS)
    assert len(_Judge.asked) == 2 * len(ROWS) and all("grammar" in body for body in _Judge.asked)
    assert judge["constrained"] is True and judge["unparsed"] == 0 and judge["inconsistency_rate"] == 0
    assert judge["win_rate"] == {MISTRAL: 0.0, FALCON: 1.0}
    # the answers came from the deployment through its signed /predict (the emulator names the model)
    falcon = json.loads(service.evaluation_report(created.id, FALCON))
    assert all(row["prediction"].startswith(FALCON) for row in falcon["data"])
    assert "rouge" in json.dumps(falcon["metric_summary_result"]).lower()
    assert "Pairwise judge" in service.evaluation_report(created.id, fmt="html")

    board = service.leaderboard(deployment.id, source="judge", resamples=20)
    assert board.deployment_id == deployment.id and board.votes == len(ROWS)
    assert [s.model for s in board.standings][0] == FALCON


def test_the_default_judge_is_a_model_of_the_oci_deployment_asked_through_its_signed_predict(
    service, deployment, tmp_path
):
    created = service.create_evaluation(_spec(deployment, tmp_path, [{"name": "pairwise_judge"}]))
    assert "self-preference" in created.details  # the deployment's first model judges its own answers
    done, _ = _watch(service, created.id)
    assert done.state == "SUCCEEDED", done.details
    judge = json.loads(service.evaluation_report(created.id))["judge"]
    # not a llama.cpp server: the free-text prompt, every answer parsed (the emulator echoes the prompt,
    # whose last verdict is the tie's), no request failed on its signature
    assert judge["constrained"] is False and judge["errors"] == 0 and judge["unparsed"] == 0
    assert judge["judge"] == MISTRAL and judge["requests"] == 2 * len(ROWS)


def test_a_notebook_evaluation_shows_its_progress_and_is_cancelled_like_a_local_one(
    emulator, service, deployment, tmp_path
):
    emulator.inject(r"/predict$", delay_s=0.5, count=1000)
    try:
        created = service.create_evaluation(_spec(deployment, tmp_path, [{"name": "rouge"}]))
        deadline = time.monotonic() + 60
        while service.evaluation_status(created.id).state != "IN_PROGRESS" and time.monotonic() < deadline:
            time.sleep(0.05)
        cancelled = service.cancel_evaluation(created.id)
        assert cancelled.state == "CANCELED" and cancelled.details == "canceled by the user"
    finally:
        with emulator._lock:
            emulator.faults.clear()
    assert service.get_evaluation(created.id).state == "CANCELED"
    gone = service.delete_evaluation(created.id)
    assert gone.state == "DELETED" and created.id not in [e.id for e in service.list_evaluations()]


def test_the_runner_is_validated_and_the_service_job_still_refuses_the_judge(service, deployment, tmp_path):
    with pytest.raises(ValidationError) as bad:
        _spec(deployment, tmp_path, [{"name": "rouge"}], runner="laptop")
    assert "runner" in str(bad.value) and "'service' or 'notebook'" in str(bad.value)

    oci_paths = {"dataset_path": "oci://b@ns/d.jsonl", "report_path": "oci://b@ns/r/", "runner": "service"}
    with pytest.raises(InvalidInput) as refused:
        service.create_evaluation(_spec(deployment, tmp_path, [{"name": "pairwise_judge"}], **oci_paths))
    assert refused.value.problems[0].field == "metrics[0].name" and "runner notebook" in str(refused.value)

    with pytest.raises(InvalidInput) as remote:
        service.create_evaluation(_spec(deployment, tmp_path, [{"name": "rouge"}], dataset_path="oci://b@ns/d.jsonl"))
    assert remote.value.problems[0].field == "dataset_path" and "on this machine" in str(remote.value)

    # a platform object cannot be rebuilt in the job's process: refused, naming the field
    platform = OciPlatform(
        resolve_auth(config_file=service.config_file),
        Settings(compartment_id=HOME, project_id=PROJECT, service_compartment_id=SERVICE, endpoint=service.url),
    )
    with pytest.raises(InvalidInput) as unbuilt:
        AquaLabService(platform).create_evaluation(_spec(deployment, tmp_path, [{"name": "rouge"}]))
    assert unbuilt.value.problems[0].field == "runner" and "by name" in str(unbuilt.value)


def test_cli_runner_option_is_one_of_two_words(service):
    env = {**os.environ, "AQUA_LAB_OCI_ENDPOINT": service.url, "OCI_CONFIG_LOCATION": str(service.config_file)}
    base = ["--evaluation_source_id", "x", "--evaluation_name", "n", "--dataset_path", "d", "--report_path", "r"]
    bad = run_cli("evaluation", "create", *base, "--model_parameters", "{}", "--runner", "laptop", env=env)
    assert bad.returncode == 2 and "--runner" in bad.stderr and "notebook" in bad.stderr


@pytest.fixture
def jp_server_config(service):
    settings = service._settings  # the same OCI settings as the service the other tests use
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}},
        "AquaLab": {
            "platform": "oci",
            "data_dir": settings.data_dir,
            "oci_config_file": settings.oci_config_file,
            "oci_endpoint": settings.oci_endpoint,
            "compartment_id": HOME,
            "project_id": PROJECT,
            "service_compartment_id": SERVICE,
        },
    }


@pytest.mark.server
async def test_rest_runner_field_makes_a_notebook_evaluation_watched_and_reported_like_a_local_one(
    jp_fetch, deployment, tmp_path
):
    from tests.test_evaluation_fronts import call

    body = _spec(deployment, tmp_path, [{"name": "rouge"}]).model_dump(mode="json")
    bad = await call(jp_fetch, "evaluations", method="POST", body={**body, "runner": "job"}, expect=422)
    assert "runner" in json.dumps(bad)
    created = await call(jp_fetch, "evaluations", method="POST", body=body, params={"platform": "oci"}, expect=201)
    assert created["id"].startswith("nbeval-")
    for _ in range(600):
        status = await call(jp_fetch, "evaluations", created["id"], "status", params={"platform": "oci"})
        if status["finished"]:
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "SUCCEEDED" and status["rows_done"] == status["rows_total"] == 2 * len(ROWS)
    listed = await call(jp_fetch, "evaluations", params={"platform": "oci"})
    assert created["id"] in [e["id"] for e in listed["data"]]
    report = await call(jp_fetch, "evaluations", created["id"], "report", params={"platform": "oci"})
    assert report["models"] == [MISTRAL, FALCON]
