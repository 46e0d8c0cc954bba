"""The local platform under bad input and faults: a request cannot crash or disable a model, the
endpoint refuses what is not its owner's, a failing state file does not stop the supervisor, and
crashes are reported as crashes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import InvalidInput
from aqua_lab.planning.params import parse_params
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local import supervisor as R  # the supervisor reads its limits from its module
from aqua_lab.platforms.local.llama_flags import engine_args
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.platforms.local.router import MAX_BODY_BYTES, StreamWatch
from aqua_lab.platforms.local.store import Store
from aqua_lab.service import AquaLabService
from tests.helpers.smol import local_platform

pytestmark = pytest.mark.local
SMOL = SMOLLM2_ID


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    yield from local_platform(tmp_path_factory, "aqua_lab_reliability")


@pytest.fixture(scope="module")
def service(platform):
    return AquaLabService(platform)


@pytest.fixture(scope="module")
def two(service):
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOL, "gpu_count": 1, "model_name": "smol-a", "params": "--max-model-len 1024"},
            {"model_id": SMOL, "gpu_count": 1, "model_name": "smol-b"},
        ],
        instance_shape=service.shapes()[0].name,
        display_name="reliability",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=90)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details
    return deployment


def _post(deployment, path, body, headers=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {deployment.api_key}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{deployment.endpoint}{path}", data=data, headers={**auth, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _message(body: bytes) -> str:
    return json.loads(body)["error"]["message"]


def _hello(deployment, model="smol-a"):
    client = openai.OpenAI(base_url=deployment.endpoint, api_key=deployment.api_key)
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
    )
    return answer.choices[0].message.content


# the endpoint belongs to its owner --------------------------------------------------------------


def test_the_endpoint_needs_the_deployments_key(two):
    stranger = openai.OpenAI(base_url=two.endpoint, api_key="not-the-key")
    with pytest.raises(openai.AuthenticationError, match="needs its key"):
        stranger.chat.completions.create(model="smol-a", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    status, _ = _post(two, "/chat/completions", {}, headers={"Authorization": ""})
    assert status == 401
    assert _hello(two)  # the owner's key works


def test_a_cross_site_form_post_and_a_foreign_host_are_refused(two):
    body = {"model": "smol-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    status, answer = _post(two, "/chat/completions", body, headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in _message(answer)
    status, answer = _post(two, "/chat/completions", body, headers={"Host": "evil.example:80"})
    assert status == 421 and "loopback" in _message(answer)


def test_an_oversized_body_is_413_and_a_long_history_422_before_the_engine(two):
    status, answer = _post(two, "/chat/completions", None, raw=b'{"x": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}')
    assert status == 413 and f"limit of {MAX_BODY_BYTES} bytes" in _message(answer)
    history = [{"role": "user", "content": "hello there"}] * 1000
    status, answer = _post(two, "/chat/completions", {"model": "smol-a", "messages": history, "stream": True})
    assert status == 422 and "more than 512" in _message(answer)
    long = [{"role": "user", "content": "word " * 3000}]
    status, answer = _post(two, "/chat/completions", {"model": "smol-a", "messages": long, "stream": True})
    assert status == 422 and "context of 1024 tokens" in _message(answer)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("top_k", -2, "top_k -2 must be"),
        ("logit_bias", "junk", "token id"),
        ("temperature", "hot", "must be a number"),
        ("n", 3, "must be 1"),
        ("config_file", "/etc/passwd", "not a field a local model takes"),
        ("grammar", "no rules here", "GBNF grammar"),
    ],
)
def test_bad_fields_are_422_naming_the_field(two, field, value, says):
    body = {"model": "smol-b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, field: value}
    status, answer = _post(two, "/chat/completions", body)
    assert status == 422, answer
    assert says in _message(answer) and json.loads(answer)["error"]["param"] == field


def test_a_lone_surrogate_and_list_content_are_handled(two):
    raw = b'{"model": "smol-a", "messages": [{"role": "user", "content": "\\ud800"}], "stream": true}'
    status, answer = _post(two, "/chat/completions", None, raw=raw)
    assert status == 422 and "surrogate" in _message(answer)
    parts = [{"type": "text", "text": "Say hello."}]
    status, answer = _post(
        two, "/chat/completions", {"model": "smol-a", "messages": [{"role": "user", "content": parts}]}
    )
    assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"]


def test_a_broken_grammar_is_refused_and_no_number_of_them_disables_the_model(two, service):
    body = {
        "model": "smol-a",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        "grammar": "root ::= (",
    }
    for stream in (False, True, False, True, False):
        status, answer = _post(two, "/chat/completions", {**body, "stream": stream})
        assert status == 400 and "grammar" in answer.decode()
    states = {s.model_name: s for s in service.get_deployment(two.id).model_states}
    assert states["smol-a"].state == "ACTIVE" and states["smol-a"].restarts == 0
    assert _hello(two)


def test_concurrent_requests_are_decoded_together_by_the_slots(two):
    """Four streams to one model at once: llama-server's slots run them together."""
    client = openai.OpenAI(base_url=two.endpoint, api_key=two.api_key)

    async def go():
        aclient = openai.AsyncOpenAI(base_url=two.endpoint, api_key=two.api_key)

        async def one(i):
            text = ""
            stream = await aclient.chat.completions.create(
                model="smol-b", messages=[{"role": "user", "content": f"Count to {i + 3}."}], max_tokens=16, stream=True
            )
            async for chunk in stream:
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            return text

        return await asyncio.gather(*(one(i) for i in range(4)))

    answers = asyncio.run(go())
    assert all(answers), answers
    assert client.models.list().data


# streams never end silently ---------------------------------------------------------------------


def test_a_stream_without_done_or_with_an_engine_error_becomes_an_error_event():
    watch = StreamWatch()
    out = watch.feed(b'data: {"choices": []}\n\ndata: {"cho')
    assert out == b'data: {"choices": []}\n\n' and not watch.done
    tail = watch.end("smol-a")
    assert b"event: error" in tail and b"incomplete_stream" in tail
    watch = StreamWatch()
    out = watch.feed(b'data: {"error": {"message": "context exceeded", "code": 400}}\n\n')
    assert out.startswith(b"event: error\ndata: ") and b"context exceeded" in out
    watch = StreamWatch()
    watch.feed(b"data: [DONE]\n\n")
    assert watch.done


# flags that could escape the sandbox ------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ("--n_ctx 512 --hos 0.0.0.0", "--hos abbreviates --host"),  # refused as the owned flag it reaches
        ("--host 0.0.0.0", "--host is set by aqua_lab"),
        ("--por 9999", "--por abbreviates --port"),
        ("--model_a other", "--model_a is not an option"),
        ("--model /etc/passwd", "--model is set by aqua_lab"),
        ("--config_file /etc/passwd", "--config_file is not an option"),
        ("--threads 16", "--threads is set by aqua_lab"),
        ("--max-num-seqs 0", "below 1"),
        ("--cache-type-k q9", "one of"),
    ],
)
def test_engine_flags_outside_the_allow_list_are_refused_at_create(service, platform, params, says):
    spec = DeploymentSpec(
        models=[{"model_id": SMOL, "gpu_count": 1, "params": params}],
        instance_shape=platform.shape.name,
        display_name="escape",
    )
    with pytest.raises(InvalidInput, match=says):
        service.create_deployment(spec)
    assert not [d for d in platform.list_deployments() if d.display_name == "escape"]


def test_llama_flags_translate_the_per_request_context_and_slots():
    engine = engine_args(parse_params("--max-model-len 1024 --max-num-seqs 3 --cache-type-k q8_0 --jinja"))
    assert (engine.context, engine.slots) == (1024, 3)
    assert engine.args == ["--cache-type-k", "q8_0", "--jinja"]
    assert engine_args(parse_params("--n_ctx 512")).context == 512  # what older deployments saved


# the endpoint stays where it was ----------------------------------------------------------------


def test_deactivate_and_activate_after_traffic_keep_the_endpoint(two, service):
    assert _hello(two, "smol-b")
    service.deactivate(two.id)
    again = service.wait(service.activate(two.id).id, timeout=90)
    assert again.state == "ACTIVE" and again.endpoint == two.endpoint
    assert _hello(again, "smol-b")


# a failing state file ---------------------------------------------------------------------------


class FlakyStore(Store):
    """The real store, but writes can be made to fail as a full disk or a locked file would."""

    broken = False

    def update_model(self, *args, **kwargs):
        if self.broken:
            raise sqlite3.OperationalError("database or disk is full")
        return super().update_model(*args, **kwargs)

    def set_state_unless(self, *args, **kwargs):
        if self.broken:
            raise sqlite3.OperationalError("database or disk is full")
        return super().set_state_unless(*args, **kwargs)


def _one_model_supervisor(tmp_path: Path) -> R.Supervisor:
    store = FlakyStore(tmp_path / "local.sqlite")
    store.add_deployment(
        {"id": "local-flaky", "display_name": "flaky", "state": "CREATING", "shape": "LOCAL.CPU.1",
         "deployment_type": "MULTI", "record": {"models": []}, "router_port": None},
        [{"model_name": "smol", "model_id": SMOL}],
    )  # fmt: skip
    config = {
        "deployment_id": "local-flaky",
        "engine": "llama_cpp",
        "slots": [0],
        "engine_key": "k",
        "multi_model_config": {
            "models": [{"params": "--served-model-name smol --max-model-len 256 --max-num-seqs 1",
                        "model_path": str(smollm2_path()), "model_id": SMOL}]
        },
    }  # fmt: skip
    return R.Supervisor(config, store, tmp_path)


@contextlib.asynccontextmanager
async def _watching(supervisor: R.Supervisor):
    """The supervisor's watch running as it does in a runtime, stopped with every server it started."""
    watcher = asyncio.create_task(supervisor.watch())
    try:
        yield watcher
    finally:
        supervisor.stopping = True
        supervisor.stop()
        await asyncio.wait_for(watcher, 5)


async def _until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


def test_the_supervisor_survives_a_state_file_that_refuses_writes(tmp_path):
    supervisor = _one_model_supervisor(tmp_path)
    server = supervisor.servers[0]

    async def scenario():
        async with _watching(supervisor) as watcher:
            await _until(lambda: server.state == "ACTIVE")
            supervisor.store.broken = True
            victim = server.proc.pid
            os.kill(victim, signal.SIGKILL)
            await _until(lambda: server.restarts == 1 and server.state == "ACTIVE")  # restarted regardless
            assert watcher.done() is False
            status = json.loads((tmp_path / "status.json").read_text())
            assert "database or disk is full" in status["store_error"]
            assert status["models"]["smol"]["state"] == "ACTIVE"
            supervisor.store.broken = False
            await _until(lambda: supervisor.store.model_states("local-flaky")[0]["restarts"] == 1)
            assert supervisor.store.model_states("local-flaky")[0]["state"] == "ACTIVE"
            await _until(lambda: supervisor.store_error is None)

    asyncio.run(scenario())
    assert server.proc.poll() is not None


def test_the_platform_shows_the_runtimes_states_when_the_store_is_behind(platform, two):
    status = {
        "time": time.time() + 1,
        "state": "ACTIVE",
        "details": None,
        "store_error": "cannot write the state file x: database or disk is full",
        "models": {"smol-b": {"state": "RESTARTING", "restarts": 2, "detail": "killed by SIGKILL"}},
    }
    path = platform.data_dir / "deployments" / two.id / "status.json"
    saved = path.read_text() if path.exists() else None
    path.write_text(json.dumps(status))
    try:
        seen = platform.get_deployment(two.id)
        assert "database or disk is full" in seen.lifecycle_details
        assert {s.model_name: s.restarts for s in seen.model_states}["smol-b"] == 2
    finally:
        path.write_text(saved) if saved else path.unlink()


def test_a_create_whose_state_write_fails_leaves_no_directory(tmp_path, monkeypatch):
    local = LocalPlatform(data_dir=tmp_path)

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(local.store, "add_deployment", full)
    spec = DeploymentSpec(
        models=[{"model_id": SMOL, "gpu_count": 1}], instance_shape=local.shape.name, display_name="x"
    )
    with pytest.raises(sqlite3.OperationalError):
        AquaLabService(local).create_deployment(spec)
    assert not list((tmp_path / "deployments").iterdir())


# crashes are crashes ----------------------------------------------------------------------------


def test_a_server_that_crashes_on_its_first_request_is_failed_at_once_with_why(tmp_path):
    supervisor = _one_model_supervisor(tmp_path)
    server = supervisor.servers[0]

    async def scenario():
        async with _watching(supervisor):
            await _until(lambda: server.state == "ACTIVE")
            os.kill(server.proc.pid, signal.SIGSEGV)  # as ggml's AMX kernel did on its first decode
            await _until(lambda: server.state == "FAILED")

    asyncio.run(scenario())
    assert server.restarts == 0
    assert server.detail.startswith("llama.cpp crashed: SIGSEGV in its first request; fix: add --no-repack")
    assert "Last log lines" in server.detail
    state = supervisor.store.deployment("local-flaky")
    assert state.state == "FAILED" and "crashed: SIGSEGV" in state.details
    journal = tmp_path / "exits.jsonl"
    assert json.loads(journal.read_text())["signal"] == "SIGSEGV"
    journal.unlink()  # the crash was this test's doing: keep it out of the session's crash check


def test_the_restart_budget_refills_after_a_healthy_period(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "HEALTHY_RESET_S", 0.5)
    supervisor = _one_model_supervisor(tmp_path)
    server = supervisor.servers[0]

    async def scenario():
        async with _watching(supervisor):
            await _until(lambda: server.state == "ACTIVE")
            for _ in range(R.MAX_RESTARTS + 1):  # one more kill than the budget, spread out
                os.kill(server.proc.pid, signal.SIGKILL)
                await _until(lambda: server.restarts >= 1 and server.state == "ACTIVE")
                await _until(lambda: server.restarts == 0, timeout=10)
            assert server.state == "ACTIVE"

    asyncio.run(scenario())


# registering what is not a model ----------------------------------------------------------------


def test_registering_a_fifo_or_a_crafted_gguf_header_is_a_clear_422(platform, tmp_path):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="not a regular file"):
        platform.register_model(str(fifo))
    crafted = tmp_path / "crafted.gguf"
    import struct

    crafted.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62) + b"x" * 16)
    with pytest.raises(InvalidInput, match="damaged file"):
        platform.register_model(str(crafted))


def test_an_unreadable_state_file_is_a_clear_503_naming_it(tmp_path):
    from aqua_lab.errors import Unavailable

    broken = tmp_path / "local.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Unavailable, match="local.sqlite cannot be used .*mv "):
        LocalPlatform(data_dir=tmp_path).list_deployments()
    broken.unlink()  # broken on purpose: not a leftover for the session's clean-up check
