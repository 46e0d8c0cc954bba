"""Local replicas and the router's per-model metrics: `instance_count` 2 runs two llama.cpp servers of
one model on their own cores; the router spreads streams over both by least outstanding requests,
skips a replica that died and counts what it passed on (checked against what this test sent)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aqua_lab.domain import DeploymentSpec, ScalingChange
from aqua_lab.errors import InvalidInput, Unsupported
from aqua_lab.planning.scaling import change_policy
from aqua_lab.platforms.local.engines import LLAMA_CPP, server_specs
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.router import OVERHEAD_HEADER
from aqua_lab.platforms.local.runtime import Server, Supervisor
from aqua_lab.platforms.local.store import Store
from aqua_lab.service import AquaLabService
from aqua_lab.widgets import MetricsPanel
from tests.helpers.cli import run_cli
from tests.helpers.smol import local_platform

pytestmark = pytest.mark.scaling

CONFIG = {
    "models": [
        {"params": "--served-model-name a --tensor-parallel-size 2", "model_path": "/m/a.gguf", "model_id": "a"},
        {"params": "--served-model-name b --tensor-parallel-size 2", "model_path": "/m/b.gguf", "model_id": "b"},
    ]
}


def test_replicas_split_each_models_cores():
    specs = server_specs(CONFIG, LLAMA_CPP, [0, 1, 2, 3], replicas=2)
    assert [(s.label, s.slots) for s in specs] == [("a#1", [0]), ("b#1", [2]), ("a#2", [1]), ("b#2", [3])]
    assert [s.slots for s in server_specs(CONFIG, LLAMA_CPP, [0, 1, 2, 3])] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="llama.cpp"):
        server_specs(CONFIG, "vllm", [0, 1], replicas=2)


def test_the_least_busy_active_replica_gets_the_request(tmp_path):
    config = {
        "deployment_id": "d",
        "engine": LLAMA_CPP,
        "slots": [0, 1],
        "replicas": 2,
        "multi_model_config": {"models": CONFIG["models"][:1]},
    }
    supervisor = Supervisor(config, Store(tmp_path / "s.sqlite"), tmp_path)
    one, two = (server for server, _ in supervisor.by_name["a"])
    assert isinstance(one, Server) and one.log_path.name == "a.log" and two.log_path.name == "a.2.log"
    one.state = two.state = "ACTIVE"
    one.in_flight, two.in_flight = 3, 1
    assert supervisor.server_for("a")[0] is two
    two.state = "RESTARTING"  # a dead replica is skipped however idle it looks
    assert supervisor.server_for("a")[0] is one
    assert supervisor.state_of("a") == "ACTIVE"
    assert "replica 2 is RESTARTING" in supervisor.model_view("a", supervisor.by_name["a"])["detail"]
    one.state = "FAILED"
    assert supervisor.server_for("a")[0] is two  # the one that may come back says why it cannot answer


def test_scaling_changes_name_their_field():
    with pytest.raises(InvalidInput, match="autoscaling"):
        change_policy(ScalingChange(instance_count=2, autoscaling={"maximum_instance_count": 2}))
    with pytest.raises(InvalidInput, match="nothing to change"):
        change_policy(ScalingChange())
    assert change_policy(ScalingChange(instance_count=3)) == {"policyType": "FIXED_SIZE", "instanceCount": 3}


# --------------------------------------------------------------------------------------------------
# for real: SmolLM2 on this CPU


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    yield from local_platform(tmp_path_factory, "aqua_lab_replicas")


@pytest.fixture(scope="module")
def service(platform):
    return AquaLabService(platform)


@pytest.fixture(scope="module")
def pair(service, platform):
    cores = platform.shape.gpu_count
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": cores, "model_name": "smol", "params": "--n_ctx 1024"}],
        instance_shape=platform.shape.name,
        display_name="two replicas",
        instance_count=2,
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=120)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details
    return deployment


def _auth(deployment):
    return {"Authorization": f"Bearer {deployment.api_key}", "Content-Type": "application/json"}


def _metrics(deployment) -> dict[tuple[str, tuple], float]:
    base = deployment.endpoint.removesuffix("/v1")
    request = urllib.request.Request(f"{base}/metrics", headers=_auth(deployment))
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(metrics, name, **labels) -> float:
    return sum(
        v for (n, lab), v in metrics.items() if n == name and all(dict(lab).get(k) == x for k, x in labels.items())
    )


def _stream(deployment, tokens=24, text="Count from one to twenty.", started: threading.Event | None = None):
    body = {
        "model": "smol",
        "stream": True,
        "max_tokens": tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": text}],
    }
    request = urllib.request.Request(
        f"{deployment.endpoint}/chat/completions", data=json.dumps(body).encode(), headers=_auth(deployment)
    )
    received = b""
    with urllib.request.urlopen(request, timeout=120) as response:
        overhead = float(response.headers[OVERHEAD_HEADER])
        while chunk := response.read1(4096):
            received += chunk
            if started is not None and b"delta" in received:
                started.set()
    return received, overhead


def _replicas(platform, deployment):
    status = json.loads((platform.data_dir / "deployments" / deployment.id / "status.json").read_text())
    return status["models"]["smol"]["replicas"]


def _completion(deployment, text):
    body = {"model": "smol", "max_tokens": 9, "temperature": 0, "messages": [{"role": "user", "content": text}]}
    request = urllib.request.Request(
        f"{deployment.endpoint}/chat/completions", data=json.dumps(body).encode(), headers=_auth(deployment)
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.mark.local
@pytest.mark.slow
def test_two_replicas_on_their_own_cores_share_eight_streams(pair, platform):
    assert pair.scaling.instance_count == 2 and pair.scaling.policy["instanceCount"] == 2
    replicas = _replicas(platform, pair)
    assert [r["state"] for r in replicas] == ["ACTIVE", "ACTIVE"]
    if platform.shape.gpu_count >= 2:
        assert not set(replicas[0]["cores"]) & set(replicas[1]["cores"])
    before = _metrics(pair)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _stream(pair), range(8)))
    assert all(r.rstrip().endswith(b"data: [DONE]") for r, _ in results)
    assert all(0 <= overhead < 50 for _, overhead in results)
    after = _metrics(pair)
    per_replica = [
        _total(after, "aqua_lab_requests_total", model="smol", replica=r, code="200")
        - _total(before, "aqua_lab_requests_total", model="smol", replica=r, code="200")
        for r in ("1", "2")
    ]
    assert sum(per_replica) == 8 and min(per_replica) >= 2, per_replica  # least outstanding: both got work
    assert _total(after, "aqua_lab_replicas", model="smol", state="ACTIVE") == 2
    assert _total(after, "aqua_lab_time_to_first_token_seconds_count", model="smol") >= 8


@pytest.mark.local
@pytest.mark.slow
def test_request_and_token_counts_are_exact(pair, service):
    before = _metrics(pair)
    answers = [_completion(pair, f"Name a colour, number {i}.") for i in range(4)]
    sent_tokens = sum(a["usage"]["completion_tokens"] for a in answers)
    after = _metrics(pair)
    assert (
        _total(after, "aqua_lab_requests_total", model="smol") - _total(before, "aqua_lab_requests_total", model="smol")
        == 4
    )
    assert (
        _total(after, "aqua_lab_generated_tokens_total", model="smol")
        - _total(before, "aqua_lab_generated_tokens_total", model="smol")
        == sent_tokens
    )
    summary = service.deployment_metrics(pair.id, 3600)
    (smol,) = summary.models
    assert smol.replicas == 2 and smol.requests >= 12 and smol.errors == 0
    assert smol.ttft_p50_ms and smol.ttft_p95_ms >= smol.ttft_p50_ms and smol.tokens_per_s > 0
    assert sum(p.requests for p in smol.series) == smol.requests
    panel = MetricsPanel(service, pair.id)
    panel.window.value = 3600.0
    assert "smol" in panel.view.value and panel.view.value.count("<svg") == 3
    assert panel.metrics.models[0].requests >= 12


@pytest.mark.local
@pytest.mark.slow
def test_a_killed_replica_cuts_only_its_own_streams_and_comes_back(pair, platform, service):
    starts = [threading.Event() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_stream, pair, 200, "Write a long story about a lighthouse.", e) for e in starts]
        assert all(e.wait(60) for e in starts)
        in_flight = _metrics(pair)
        victim_load = _total(in_flight, "aqua_lab_in_flight_requests", model="smol", replica="2")
        victim = _replicas(platform, pair)[1]["pid"]
        os.kill(victim, signal.SIGKILL)
        received = [f.result()[0] for f in futures]
    cut = [r for r in received if b"event: error" in r]
    finished = [r for r in received if r.rstrip().endswith(b"data: [DONE]")]
    assert victim_load >= 1 and len(cut) == victim_load and len(finished) == 4 - victim_load, (victim_load, received)
    assert all(b"model_unavailable" in r for r in cut)
    # while replica 2 restarts the model still answers, from replica 1
    assert _completion(pair, "Say hi.")["choices"][0]["message"]["content"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and [r["state"] for r in _replicas(platform, pair)] != ["ACTIVE", "ACTIVE"]:
        time.sleep(0.2)
    replicas = _replicas(platform, pair)
    assert [r["state"] for r in replicas] == ["ACTIVE", "ACTIVE"] and replicas[1]["restarts"] == 1
    assert replicas[1]["pid"] != victim
    assert _total(_metrics(pair), "aqua_lab_request_errors_total", model="smol", kind="model_unavailable") >= len(cut)


@pytest.mark.local
def test_metrics_need_the_key_and_health_does_not(pair):
    base = pair.endpoint.removesuffix("/v1")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/metrics", timeout=5)
    assert info.value.code == 401
    with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
        assert json.loads(response.read())["models"] == {"smol": "ACTIVE"}


def test_autoscaling_is_refused_on_one_machine(service, platform):
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1}],
        instance_shape=platform.shape.name,
        display_name="auto",
        autoscaling={"maximum_instance_count": 3},
    )
    with pytest.raises(Unsupported) as info:
        service.validate(spec)
    assert (
        "one machine" in str(info.value)
        and "instance_count N" in str(info.value)
        and "--platform oci" in str(info.value)
    )


@pytest.mark.local
@pytest.mark.cli
def test_the_cli_shows_metrics_and_scales_down_to_one_replica(pair, platform):
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(platform.data_dir)}
    ident = ("--platform", "local", "--model_deployment_id", pair.id)
    table = run_cli("deployment", "metrics", *ident, "--window", "1h", env=env)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("smol "))
    assert row.split()[-1] == "2"  # replicas
    full = json.loads(run_cli("deployment", "metrics", *ident, "--json", env=env).stdout)
    assert full["models"][0]["replicas"] == 2 and len(full["models"][0]["series"]) == 30
    bad = run_cli("deployment", "metrics", *ident, "--window", "a while", env=env)
    assert bad.returncode == 2 and "window" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    refused = run_cli("deployment", "update", *ident, "--autoscaling", '{"maximum_instance_count": 3}', env=env)
    assert refused.returncode == 2 and "cannot autoscale" in refused.stderr

    updated = run_cli("deployment", "update", *ident, "--instance_count", "1", env=env)
    assert updated.returncode == 0, updated.stderr
    scaling = json.loads(updated.stdout)["scaling"]
    assert scaling["instance_count"] == 1 and scaling["events"][-1]["from_count"] == 2
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and platform.get_deployment(pair.id).state != "ACTIVE":
        time.sleep(0.2)
    assert platform.get_deployment(pair.id).state == "ACTIVE"
    assert [r["state"] for r in _replicas(platform, pair)] == ["ACTIVE"]
    assert _completion(pair, "Say hi.")["choices"][0]["message"]["content"]
