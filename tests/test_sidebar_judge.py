"""The sidebar's Evaluate form chooses the judge of the judge metrics (issue 27 item 2): a model of the
deployment (default: its first), a model of another deployment, or an external endpoint; the rubric
prefilled with the server's default, its bytes counted against the 8 KiB limit; the server's refusals
under their fields; and the create answer's self-preference warning shown on the evaluation.  Driven in
headless Chromium on a live two-SmolLM2 local deployment; screenshots (light and dark) land in
build/screenshots/evaluations-judge-*."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from aqua_lab.arena.judge import DEFAULT_RUBRIC, MAX_RUBRIC_BYTES
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.service import AquaLabService
from tests.helpers.smol import deploy_smol, deploy_two_smol
from tests.test_sidebar import SHOTS, drive, lab  # noqa: F401 (lab is the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.local, pytest.mark.slow, pytest.mark.arena, pytest.mark.evaluation]

ROWS = [
    {"prompt": "What is the capital of France?", "completion": "Paris."},
    {"prompt": "How many legs has a spider?", "completion": "Eight."},
    {"prompt": "What colour is the sky on a clear day?", "completion": "Blue."},
]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that wants a key it is not given."""

    def do_GET(self):  # noqa: N802 (the handler's name)
        body = b'{"error": {"message": "invalid api key"}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_the_sidebar_form_picks_the_second_model_as_judge_edits_the_rubric_and_shows_the_warning(
    lab,  # noqa: F811
    tmp_path,
    refusing_endpoint,
    monkeypatch,
):
    monkeypatch.setenv("AQUA_LAB_SHARE_CORES", "1")  # a third model server on two cores: slower, not refused
    url = lab("/")
    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))  # the data dir JupyterLab uses
    dataset = tmp_path / "three.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    deployment = other = None
    try:
        deployment = deploy_two_smol(service, "judged")
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        other = deploy_smol(service, "another", ("smol-c",))
        assert other.state == "ACTIVE", other.lifecycle_details
        found = drive(
            url,
            str(dataset),
            "http://127.0.0.1:9/v1",  # nothing listens on the discard port
            refusing_endpoint,
            script="evaluations-judge.mjs",
            timeout=600,
        )
        stored = service.get_evaluation(found["evaluationId"]) if found.get("evaluationId") else None
        verdicts = service.leaderboard(deployment.id, source="judge", resamples=0).votes
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        for d in (deployment, other):
            if d is not None:
                service.delete(d.id)
    assert "error" not in found, found["error"]
    assert found["consoleErrors"] == []

    # the section: only with a judge metric, the deployment's models with the first as default
    assert found["hiddenBefore"] and found["shownAfter"]
    assert found["hereOptions"] == ["smol-a (default)", "smol-b"]
    assert found["otherOptions"] == ["smol-c @ another"] and found["otherChoice"]
    assert found["keyType"] == "password"
    assert found["defaultRubric"] == DEFAULT_RUBRIC  # from GET evaluations/config
    assert found["countDefault"].startswith(f"{len(DEFAULT_RUBRIC.encode())} / {MAX_RUBRIC_BYTES} bytes (8 KiB)")
    assert found["countTooLong"].startswith(f"9000 / {MAX_RUBRIC_BYTES} bytes") and "too long" in found["countTooLong"]

    # the server's refusals, said once each (both metrics would repeat them) under the field to fix
    assert "rubric: is 9000 bytes; the limit is 8192 (8 KiB)" in found["rubricError"]
    assert found["rubricError"].count("9000 bytes") == 1
    assert "judge.url: the judge at http://127.0.0.1:9/v1 is not reachable" in found["urlError"]
    assert f"judge.api_key_env: the judge at {refusing_endpoint} refused the key (401)" in found["keyError"]
    assert found["urlErrorAfterFix"] == ""  # the earlier refusal went with the fix
    # sent as the widgets' panel sends them: the judge as chosen, the rubric only when not the default
    assert found["sent"][:3] == [
        {"judge": {"deployment_id": other.id, "model": "smol-c"}, "rubric": "x" * 9000},
        {"judge": {"url": "http://127.0.0.1:9/v1", "model": "gpt-judge", "api_key_env": None}},
        {"judge": {"url": refusing_endpoint, "model": "gpt-judge", "api_key_env": None}},
    ]

    # the second model judges with the edited rubric; the create's warning shown, kept to the end
    assert found["judgeChoice"]
    edited = f"{DEFAULT_RUBRIC} Prefer the shorter answer when both are correct."
    assert found["sent"][3:] == [{"judge": "smol-b", "rubric": edited}]
    assert found["countEdited"].startswith(f"{len(edited.encode())} / {MAX_RUBRIC_BYTES}")
    assert "the judge smol-b is one of the judged models" in found["warning"]
    assert "self-preference" in found["warning"]
    assert found["warningAtEnd"] == found["warning"]
    assert found["state"] == "SUCCEEDED", found.get("failed")
    assert found["headers"][:2] == ["model", "rouge1"], found["headers"]
    assert verdicts == len(ROWS)  # one pair a row, judged in both orders: one verdict each
    judged = [m for m in stored.metrics if m.name == "pairwise_judge"]
    assert judged and judged[0].args["judge"]["model"] == "smol-b" and judged[0].args["rubric"] == edited
    for name in ("evaluations-judge-form", "evaluations-judge-rubric-too-long", "evaluations-judge-done"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
        assert (SHOTS / f"{name}-dark.png").stat().st_size > 10_000
