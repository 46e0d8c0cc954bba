"""A model that fails to wake (issue 28, "Bad input and faults"): its weights replaced by a corrupt file
after create, or too little memory to load them again, or its server killed while it loads.  The
request that woke it is answered with the model's name and the cause in the engine's own words — a
503 JSON body when not streamed, ``event: error`` after the ``: loading`` comments when streamed —
the model is retried within its restart budget, and the other models keep answering throughout.

Both ways a model sleeps are covered: llama-server's own ``--sleep-idle-seconds`` (the process stays
and reloads its weights on the next request) and eviction to make room (``max_resident``: the server
is stopped and started again under the supervisor)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from aqua_lab.domain import ChatRequest, DeploymentSpec
from aqua_lab.errors import UpstreamError
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService
from tests.helpers.smol import needs_engine
from tests.test_sleep_wake import _until

pytestmark = [pytest.mark.local, pytest.mark.slow]

HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def service(tmp_path):
    needs_engine()
    platform = LocalPlatform(data_dir=tmp_path / "data", share=True)
    service = AquaLabService(platform)
    yield service
    for deployment in platform.list_deployments():
        platform.delete(deployment.id)


def _own_copy(service, tmp_path: Path) -> tuple[str, Path]:
    """A registered copy of SmolLM2 the test may damage (the bundled file stays as it is)."""
    path = tmp_path / "fragile.gguf"
    shutil.copy(smollm2_path(), path)
    return service.platform.register_model(str(path), name="fragile-copy").id, path


def _corrupt(path: Path) -> None:
    """Replaced, as a user overwriting a model would: a new file under the old name (a server still
    holding the old one mapped keeps it; the next load reads the new one)."""
    bad = path.with_suffix(".tmp")
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    os.replace(bad, path)


def _deploy(service, models, **extra):
    spec = DeploymentSpec(models=models, display_name="wake-faults", **extra)
    deployment = service.wait(service.create_deployment(spec).id, timeout=120)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details
    return deployment


def _states(service, deployment_id) -> dict[str, dict]:
    return {s["model_name"]: s for s in service.platform.store.model_states(deployment_id)}


def _chat(deployment, name: str, stream: bool = False, timeout: float = 90) -> httpx.Response:
    body = {"model": name, "messages": HI, "max_tokens": 4, "stream": stream}
    headers = {"Authorization": f"Bearer {deployment.api_key}"}
    return httpx.post(f"{deployment.endpoint}/chat/completions", json=body, headers=headers, timeout=timeout)


def _error_event(raw: bytes) -> dict:
    assert raw.startswith(b": loading model 'fragile': waking from sleep"), raw[:300]
    assert b"event: error\ndata: " in raw, raw[-600:]
    return json.loads(raw.split(b"event: error\ndata: ", 1)[1].split(b"\n\n", 1)[0])["error"]


@pytest.fixture
def deliberate_aborts(service):
    """The test makes llama-server abort on purpose: its journal stays out of the session's crash check."""
    yield
    (service.platform.data_dir / "exits.jsonl").unlink(missing_ok=True)


def _sleeping(service, deployment_id, name: str) -> dict:
    return _until(
        lambda: (s := _states(service, deployment_id)[name])["state"] == "SLEEPING" and s, 20, f"{name} sleeps"
    )


def _idle_pair(model_id: str) -> list[dict]:
    return [
        {"model_id": model_id, "gpu_count": 1, "model_name": "fragile", "idle_sleep_s": 1},
        {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "steady", "pinned": True},
    ]


def test_a_corrupt_model_file_on_wake_is_answered_with_the_model_and_the_cause(service, tmp_path, deliberate_aborts):
    model_id, path = _own_copy(service, tmp_path)
    deployment = _deploy(service, _idle_pair(model_id))
    _sleeping(service, deployment.id, "fragile")
    _corrupt(path)

    refused = _chat(deployment, "fragile")  # llama-server aborts reloading it: the request learns why
    assert refused.status_code == 503, refused.text
    message = refused.json()["error"]["message"]
    assert message.startswith("model 'fragile' stopped answering: crashed: SIGABRT while waking from sleep")
    assert "this GGUF file is version" in message and f"failed to load model, '{path}'" in message, message
    assert "restarting (1/3)" in message and refused.headers["Retry-After"]
    assert _chat(deployment, "steady").status_code == 200  # the other model answers meanwhile

    # each restart reads the same bad file: the budget runs out, the model is FAILED saying why
    failed = _until(lambda: (s := _states(service, deployment.id)["fragile"])["state"] == "FAILED" and s, 30, "FAILED")
    assert failed["restarts"] == 3 and "after 3 restarts" in failed["detail"]
    assert "this GGUF file is version" in failed["detail"] and "[Inferior" not in failed["detail"]
    got = service.get_deployment(deployment.id)
    assert got.state == "NEEDS_ATTENTION" and "this GGUF file is version" in got.lifecycle_details
    # no deadlock: the failed model is refused at once, the other still answers
    started = time.monotonic()
    again = _chat(deployment, "fragile", timeout=10)
    assert again.status_code == 503 and "this GGUF file is version" in again.json()["error"]["message"]
    assert time.monotonic() - started < 5
    assert _chat(deployment, "steady").status_code == 200
    journal = [json.loads(line) for line in (service.platform.data_dir / "exits.jsonl").read_text().splitlines()]
    assert journal[0]["signal"] == "SIGABRT" and {e.get("code") for e in journal[1:]} == {1}


def test_a_wake_out_of_memory_ends_the_stream_with_the_cause_and_is_retried(service, tmp_path, deliberate_aborts):
    model_id, _ = _own_copy(service, tmp_path)
    deployment = _deploy(service, _idle_pair(model_id))
    asleep = _sleeping(service, deployment.id, "fragile")
    # that one server may grow by 16 MiB only: reloading its weights cannot get the memory
    pid = asleep["pid"]
    size = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmSize:"))
    resource.prlimit(pid, resource.RLIMIT_AS, ((size + 16 * 1024) * 1024, resource.RLIM_INFINITY))

    streamed = _chat(deployment, "fragile", stream=True)
    assert streamed.status_code == 200  # the loading comments went out first
    error = _error_event(streamed.content)
    assert error["message"].startswith("model 'fragile' stopped answering: crashed: SIGABRT while waking from sleep")
    assert "insufficient memory" in error["message"] and "restarting (1/3)" in error["message"], error
    assert b"[DONE]" not in streamed.content
    assert _chat(deployment, "steady").status_code == 200

    # a new process has no such limit: the retry loads it, and it answers again
    back = _until(lambda: (s := _states(service, deployment.id)["fragile"])["state"] == "ACTIVE" and s, 30, "back")
    assert back["restarts"] == 1 and back["pid"] != pid
    answered = _chat(deployment, "fragile")
    assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"]


class _Watch:
    """Every (state, restarts, detail) a model shows in the store, seen every 20 ms in a thread."""

    def __init__(self, service, deployment_id: str, name: str):
        self.seen: list[tuple[str, int, str | None]] = []
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.is_set():
                s = _states(service, deployment_id)[name]
                if not self.seen or self.seen[-1] != (s["state"], s["restarts"], s["detail"]):
                    self.seen.append((s["state"], s["restarts"], s["detail"]))
                time.sleep(0.02)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[str, int, str | None]]:
        self._stop.set()
        self._thread.join(5)
        return self.seen


def _kill_while_loading(service, deployment_id: str, hold: bool) -> int:
    """SIGKILL the model's server while it is LOADING (``hold``: stopped first, where its load would
    be over before the kill lands); returns its pid."""
    loading = _until(
        lambda: (s := _states(service, deployment_id)["fragile"])["state"] == "LOADING" and s["pid"] and s,
        30,
        "fragile LOADING",
    )
    if hold:
        os.kill(loading["pid"], signal.SIGSTOP)
    assert _states(service, deployment_id)["fragile"]["state"] == "LOADING"
    os.kill(loading["pid"], signal.SIGKILL)
    return loading["pid"]


def _in_thread(call):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", call()), daemon=True)
    thread.start()
    return thread, box


def test_a_server_killed_while_it_wakes_from_its_own_sleep_is_reported_and_restarted(service, tmp_path):
    deployment = _deploy(service, _idle_pair(SMOLLM2_ID))
    asleep = _sleeping(service, deployment.id, "fragile")
    os.kill(asleep["pid"], signal.SIGSTOP)  # it would load in a blink: the wake stays LOADING
    watch = _Watch(service, deployment.id, "fragile")
    try:
        thread, box = _in_thread(lambda: _chat(deployment, "fragile"))
        killed = _kill_while_loading(service, deployment.id, hold=False)
        thread.join(30)
        back = _until(lambda: (s := _states(service, deployment.id)["fragile"])["state"] == "ACTIVE" and s, 30, "up")
    finally:
        seen = watch.stop()
    assert killed == asleep["pid"]
    refused = box["result"]
    assert refused.status_code == 503, refused.text
    message = refused.json()["error"]["message"]
    assert message == (
        "model 'fragile' stopped answering: killed by SIGKILL while waking from sleep (loading its weights "
        "again); restarting (1/3)"
    )
    restarting = [s for s in seen if s[0] == "RESTARTING"]
    assert restarting and restarting[0][1] == 1 and "killed by SIGKILL while waking" in restarting[0][2], seen
    assert back["restarts"] == 1 and back["pid"] != killed
    assert _chat(deployment, "fragile").status_code == 200 and _chat(deployment, "steady").status_code == 200


def test_a_server_killed_while_it_is_started_again_to_wake_is_retried_and_the_request_answered(service):
    models = [{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n} for n in ("steady", "fragile")]
    deployment = _deploy(service, models, max_resident=1)
    assert _states(service, deployment.id)["fragile"]["state"] == "SLEEPING"
    watch = _Watch(service, deployment.id, "fragile")
    try:
        thread, box = _in_thread(lambda: _chat(deployment, "fragile"))
        killed = _kill_while_loading(service, deployment.id, hold=True)
        thread.join(60)
    finally:
        seen = watch.stop()
    answered = box["result"]  # the wake waited for the retry: the request itself is answered
    assert answered.status_code == 200, answered.text
    assert answered.json()["choices"][0]["message"]["content"]
    restarting = [s for s in seen if s[0] == "RESTARTING"]
    assert restarting and "killed by SIGKILL while waking from sleep" in restarting[0][2], seen
    assert "restarting (1/3)" in restarting[0][2]
    now = _states(service, deployment.id)
    assert now["fragile"]["state"] == "ACTIVE" and now["fragile"]["restarts"] == 1 and now["fragile"]["pid"] != killed
    assert now["steady"]["state"] == "SLEEPING" and now["steady"]["restarts"] == 0  # made room, not restarted
    assert _chat(deployment, "steady").status_code == 200


def test_an_evicted_model_whose_file_went_bad_is_refused_with_why_in_the_stream(service, tmp_path):
    model_id, path = _own_copy(service, tmp_path)
    models = [
        {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "steady"},
        {"model_id": model_id, "gpu_count": 1, "model_name": "fragile"},
    ]
    deployment = _deploy(service, models, max_resident=1)
    _corrupt(path)
    streamed = _chat(deployment, "fragile", stream=True)
    assert streamed.status_code == 200
    error = _error_event(streamed.content)
    assert error["message"].startswith("model 'fragile' could not wake: exited with code 1")
    assert "this GGUF file is version" in error["message"] and "after 3 restarts" in error["message"], error
    assert "Last log lines" not in error["message"]
    assert _chat(deployment, "steady").status_code == 200  # woken again, in the room the failed one left
    assert _states(service, deployment.id)["fragile"]["state"] == "FAILED"
    # what the notebook's chat (REST, widgets) reports: the same cause, naming the model
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(service.chat(deployment.id, ChatRequest(model="fragile", messages=HI, max_tokens=4)))
    assert caught.value.status == 503, caught.value
    assert "'fragile'" in str(caught.value) and "this GGUF file is version" in str(caught.value)
