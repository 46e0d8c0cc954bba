"""Models that sleep when idle and wake on the next request (issue 28 item 1): llama-server's own
``--sleep-idle-seconds`` frees a model's weights and KV cache while its process stays; the supervisor
reads the sleep from ``/props`` (a sleeping server is alive and healthy: never restarted, never
FAILED), a request wakes it, a streamed one is told ``: loading`` until the model answers, and the
wake's time is on record.  A pinned model never sleeps."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import InvalidInput
from aqua_lab.platforms.local import LocalPlatform, engine_build
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService
from tests.helpers.bench import run_quick_bench
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.local


def _spec(**extra) -> DeploymentSpec:
    return DeploymentSpec(
        models=[
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "sleepy", "idle_sleep_s": 1},
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "awake", "pinned": True},
        ],
        display_name="sleep-wake",
        **extra,
    )


@pytest.mark.parametrize("seconds", [0, -5])
def test_an_idle_time_of_zero_or_less_is_refused_naming_the_field(seconds):
    for build in (
        lambda: _spec(idle_sleep_s=seconds),
        lambda: DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "idle_sleep_s": seconds}], display_name="x"
        ),
    ):
        with pytest.raises(ValidationError) as caught:
            build()
        assert "idle_sleep_s" in str(caught.value) and "greater than or equal to 1" in str(caught.value)


def test_a_pinned_model_with_an_idle_time_is_refused_at_create(tmp_path):
    platform = LocalPlatform(data_dir=tmp_path, share=True)
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "idle_sleep_s": 5, "pinned": True}], display_name="x"
    )
    with pytest.raises(InvalidInput) as caught:
        AquaLabService(platform).create_deployment(spec)
    assert "models[0].idle_sleep_s" in str(caught.value) and "pinned model never sleeps" in str(caught.value)
    assert platform.list_deployments() == []


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _states(platform, deployment_id) -> dict[str, dict]:
    return {s["model_name"]: s for s in platform.store.model_states(deployment_id)}


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.mark.slow
def test_an_idle_model_sleeps_and_the_next_request_wakes_it_with_a_loading_event(tmp_path):
    assert smollm2_path() is not None and engine_build.binary_path().is_file()
    platform = LocalPlatform(data_dir=tmp_path, share=True)
    service = AquaLabService(platform)
    deployment = service.wait(service.create_deployment(_spec()).id, timeout=120)
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        first = _states(platform, deployment.id)
        asleep = _until(
            lambda: (s := _states(platform, deployment.id))["sleepy"]["state"] == "SLEEPING" and s,
            15,
            "the idle model sleeps",
        )
        # asleep is not dead: same process, no restart, the deployment still ACTIVE; pinned stays up
        assert asleep["sleepy"]["pid"] == first["sleepy"]["pid"] and asleep["sleepy"]["restarts"] == 0
        assert "asleep since" in asleep["sleepy"]["detail"] and "freed" in asleep["sleepy"]["detail"]
        assert asleep["awake"]["state"] == "ACTIVE"
        assert service.get_deployment(deployment.id).state == "ACTIVE"
        time.sleep(1.5)  # more idle time: a sleeping model's supervisor must not take it for dead
        assert _states(platform, deployment.id)["sleepy"]["state"] == "SLEEPING"
        # its memory is given back (the pinned twin keeps its weights and KV cache): ≥ 90 % of it with
        # glibc told to trim (glibc's defaults kept 11.5 %: the heap the weights' loading had used)
        kept = _rss_kib(asleep["sleepy"]["pid"]) / _rss_kib(asleep["awake"]["pid"])
        assert kept < 0.105, f"asleep it keeps {kept:.1%} of a resident twin's RSS"
        assert Path(f"/proc/{asleep['sleepy']['pid']}/environ").read_bytes().count(b"MALLOC_TRIM_THRESHOLD_=") == 1

        got = run_cli(
            "deployment",
            "get",
            "--model_deployment_id",
            deployment.id,
            "--platform",
            "local",
            env={**os.environ, "AQUA_LAB_DATA_DIR": str(tmp_path)},
        )
        assert got.returncode == 0 and "SLEEPING" in got.stdout, got.stderr

        body = {"model": "sleepy", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 6}
        headers = {"Authorization": f"Bearer {deployment.api_key}"}
        with httpx.stream(
            "POST", f"{deployment.endpoint}/chat/completions", json={**body, "stream": True}, headers=headers
        ) as response:
            assert response.status_code == 200
            raw = b"".join(response.iter_bytes())
        assert raw.startswith(b": loading model 'sleepy': waking from sleep"), raw[:200]
        assert raw.rstrip().endswith(b"data: [DONE]")
        chunks = [json.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

        woke = _states(platform, deployment.id)["sleepy"]
        assert woke["state"] == "ACTIVE" and woke["pid"] == first["sleepy"]["pid"]
        assert "last wake took" in woke["detail"]
        wake_s = float(woke["detail"].split("took ")[1].split(" s")[0])
        assert 0 < wake_s < 10

        # asleep again, a request that does not stream simply waits for the wake
        _until(lambda: _states(platform, deployment.id)["sleepy"]["state"] == "SLEEPING", 15, "asleep again")
        plain = httpx.post(f"{deployment.endpoint}/chat/completions", json=body, headers=headers, timeout=60)
        assert plain.status_code == 200 and plain.json()["choices"][0]["message"]["content"]
        assert _states(platform, deployment.id)["sleepy"]["restarts"] == 0
    finally:
        service.delete(deployment.id)


@pytest.mark.slow
def test_the_wake_bench_runs_and_a_wake_is_faster_than_a_cold_create():
    result = run_quick_bench("wake_bench.py")
    assert result["loading_events"] == 1 and result["restarts"] == 0
    assert result["ttft_s"]["sleeping"] < 1.5 * result["ttft_s"]["cold_create"], result
    assert result["memory_freed"] > 0.5, result
