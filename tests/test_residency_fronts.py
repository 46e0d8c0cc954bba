"""Residency in every front (issue 28): a sleeping model's wake reaches REST chat and compare as
``event: loading`` (the widgets' status line says "waking <model>…"); each model's state shows when
it fell asleep and its last wake; each resident model's memory is measured (RSS, llama-server's own
buffer sizes) next to the capacity planner's estimate with the error in %; and OCI says it cannot
scale a deployment to zero instances."""

from __future__ import annotations

import json
import os
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.inference.sse import SSEParser
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService
from tests.helpers.cli import run_cli

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def test_the_sse_parser_yields_comments_only_when_asked():
    stream = b": loading model 'm': waking from sleep (0 s)\n\n: ping\ndata: {}\n\ndata: [DONE]\n\n"
    told = SSEParser(comments=True).feed(stream)
    assert [(e.comment, e.data) for e in told] == [
        (True, "loading model 'm': waking from sleep (0 s)"),
        (True, "ping"),
        (False, "{}"),
        (False, "[DONE]"),
    ]
    assert told[0].raw == b": loading model 'm': waking from sleep (0 s)\n"
    plain = SSEParser().feed(stream)
    assert [e.data for e in plain] == ["{}", "[DONE]"] and plain[0].raw.startswith(b": loading")


# a real deployment: 'sleepy' sleeps after 1 s idle, 'awake' is pinned ---------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("residency_fronts")


@pytest.fixture(scope="module")
def sleepy(data_dir):
    service = AquaLabService(LocalPlatform(data_dir=data_dir, share=True))
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "sleepy", "idle_sleep_s": 1},
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "awake", "pinned": True},
        ],
        display_name="residency-fronts",
    )
    deployment = None
    try:
        deployment = service.wait(service.create_deployment(spec).id, timeout=120)
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        yield service, deployment
    finally:
        if deployment is not None:
            service.delete(deployment.id)


@pytest.fixture
def jp_server_config(data_dir):
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}, "allow_unauthenticated_access": False},
        "AquaLab": {"platform": "local", "data_dir": str(data_dir)},
    }


def _asleep(service, deployment_id: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = {s.model_name: s for s in service.get_deployment(deployment_id).model_states}
        if states["sleepy"].state == "SLEEPING":
            return states
        time.sleep(0.2)
    raise AssertionError("'sleepy' did not fall asleep within 20 s")


async def _sse(jp_serverapp, jp_http_port, jp_base_url, path: str, body: dict) -> list:
    parser, events = SSEParser(), []
    request = HTTPRequest(
        f"http://127.0.0.1:{jp_http_port}{jp_base_url}aqua/{path}",
        method="POST",
        body=json.dumps(body),
        headers={"Authorization": f"token {jp_serverapp.identity_provider.token}"},
        streaming_callback=lambda chunk: events.extend(parser.feed(chunk)),
        request_timeout=120,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 200, response.body
    return events


@pytest.mark.local
@pytest.mark.server
@pytest.mark.slow
async def test_rest_chat_and_compare_tell_that_a_sleeping_model_wakes(
    sleepy, jp_serverapp, jp_fetch, jp_http_port, jp_base_url
):
    service, deployment = sleepy
    asleep = _asleep(service, deployment.id)
    # REST shows the sleep with its time
    got = json.loads((await jp_fetch("aqua", "deployments", deployment.id)).body)
    shown = {s["model_name"]: s for s in got["model_states"]}
    assert shown["sleepy"]["state"] == "SLEEPING" and shown["sleepy"]["asleep_since"], shown["sleepy"]
    assert asleep["sleepy"].asleep_since == shown["sleepy"]["asleep_since"]

    body = {"model": "sleepy", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 6}
    events = await _sse(jp_serverapp, jp_http_port, jp_base_url, f"deployments/{deployment.id}/chat", body)
    kinds = [e.event for e in events]
    assert kinds[0] == "loading" and "loading" not in kinds[kinds.index("message") :], kinds
    loading = json.loads(events[0].data)
    assert loading["model"] == "sleepy" and loading["message"].startswith("waking sleepy…"), loading
    assert events[-1].done
    text = "".join(
        json.loads(e.data)["choices"][0]["delta"].get("content") or ""
        for e in events
        if e.event == "message" and not e.done and json.loads(e.data)["choices"]
    )
    assert text.strip()

    woke = {
        s["model_name"]: s
        for s in json.loads((await jp_fetch("aqua", "deployments", deployment.id)).body)["model_states"]
    }["sleepy"]
    assert woke["state"] == "ACTIVE" and woke["asleep_since"] is None
    assert 0 < woke["last_wake_s"] < 10 and woke["last_woke_at"], woke

    # compare: the sleeping model's loading event is tagged with its name, the pinned one never has one
    _asleep(service, deployment.id)
    body = {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 6}
    events = await _sse(jp_serverapp, jp_http_port, jp_base_url, f"deployments/{deployment.id}/compare", body)
    loads = [json.loads(e.data) for e in events if e.event == "loading"]
    assert loads and {x["model"] for x in loads} == {"sleepy"}, [e.event for e in events]
    assert {json.loads(e.data)["model"] for e in events if e.event == "done"} == {"sleepy", "awake"}


@pytest.mark.local
@pytest.mark.slow
def test_the_chat_widget_says_which_model_wakes(sleepy):
    from aqua_lab.widgets.chat import ChatPanel

    service, deployment = sleepy
    _asleep(service, deployment.id)
    panel = ChatPanel(service, deployment.id)
    panel.model.value = "sleepy"
    panel.max_tokens.value = 6
    seen: list[str] = []
    panel.status.observe(lambda change: seen.append(change["new"]), "value")
    panel.ask("Say hi")
    panel.worker.join(120)
    assert any("waking sleepy…" in s for s in seen), seen
    assert "waking" not in panel.status.value  # gone once the model answered
    assert panel.answers["sleepy"].strip()


@pytest.mark.local
@pytest.mark.slow
def test_each_resident_model_shows_its_memory_measured_next_to_the_plan(sleepy, data_dir):
    service, deployment = sleepy
    states = {s.model_name: s for s in service.get_deployment(deployment.id).model_states}
    memory = states["awake"].memory
    assert memory is not None and memory.rss_mib and memory.planned_mib
    # llama-server's own figures, from its log: SmolLM2's Q4_1 weights are ~92 MiB
    assert 80 < memory.weights_mib < 110 and memory.kv_cache_mib > 0 and memory.compute_mib > 0, memory
    assert memory.error_pct == pytest.approx((memory.planned_mib - memory.rss_mib) / memory.rss_mib * 100, abs=0.2)
    print(f"SmolLM2 planner error: {memory.error_pct:+.1f}% (planned {memory.planned_mib} MiB, RSS {memory.rss_mib})")

    got = run_cli(
        "deployment",
        "get",
        "--model_deployment_id",
        deployment.id,
        "--platform",
        "local",
        env={**os.environ, "AQUA_LAB_DATA_DIR": str(data_dir)},
    )
    assert got.returncode == 0, got.stderr
    shown = {s["model_name"]: s for s in json.loads(got.stdout)["model_states"]}
    assert shown["awake"]["memory"]["rss_mib"] > 0 and shown["awake"]["memory"]["error_pct"] is not None


@pytest.mark.local
@pytest.mark.slow
def test_the_deployments_widget_shows_sleep_wake_and_memory_bars(sleepy):
    from aqua_lab.widgets.deploy import DeploymentsPanel, state_line

    service, deployment = sleepy
    _asleep(service, deployment.id)
    panel = DeploymentsPanel(service)
    panel.refresh(deployment.id)
    table = panel.table.value
    assert "sleepy <b>SLEEPING</b>" in table and "asleep " in table and "(since " in table, table
    # the pinned model is resident: planned and measured bars, with the planner's error
    assert "awake <b>ACTIVE</b>" in table and "planned <span" in table and "MiB RSS · plan " in table, table
    # asleep: the plan next to what its process still holds, no engine buffers; a key to the colours
    assert "asleep <span" in table and "% of the plan)" in table and "KV cache <span" in table, table
    line = state_line(service.get_deployment(deployment.id))
    assert "sleepy: sleeping (asleep " in line, line


@pytest.mark.scaling
@pytest.mark.parametrize(
    "args",
    [
        ["--instance_count", "0"],
        ["--autoscaling", '{"minimum_instance_count": 0, "maximum_instance_count": 2}'],
    ],
)
def test_a_count_of_zero_instances_says_a_deployment_cannot_scale_to_zero(args, tmp_path):
    got = run_cli(
        "deployment",
        "update",
        "--model_deployment_id",
        "ocid1.datasciencemodeldeployment.oc1..x",
        "--platform",
        "oci",
        *args,
        env={**os.environ, "AQUA_LAB_DATA_DIR": str(tmp_path)},
    )
    assert got.returncode != 0 and "cannot scale to zero" in got.stderr, got.stderr
    assert "OCI Data Science refuses an instance count of 0" in got.stderr and "deactivate" in got.stderr


@pytest.mark.scaling
def test_a_wire_policy_of_zero_instances_says_the_same():
    from aqua_lab.planning import scaling

    problems = scaling.check_wire(
        {"policyType": "FIXED_SIZE", "instanceCount": 0}, lambda path: f"scaling_policy.{path}"
    )
    assert [p.field for p in problems] == ["scaling_policy.instanceCount"]
    assert "cannot scale to zero" in problems[0].message and "deactivate" in problems[0].fix
