"""More models than fit (issue 28 item 2): a local deployment may list more models than this
machine's cores hold at once; validate says how many are resident together, the least recently used
model that is not pinned is put to sleep (its server stopped) when a request wakes another, a pinned
model never sleeps, and a wake storm is answered or refused with 503 + Retry-After, never hung."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import InvalidInput
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService

pytestmark = pytest.mark.local


def _spec(names, pinned=(), **extra) -> DeploymentSpec:
    models = [{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n, "pinned": n in pinned} for n in names]
    return DeploymentSpec(models=models, display_name="lru", **extra)


@pytest.fixture
def service(tmp_path):
    return AquaLabService(LocalPlatform(data_dir=tmp_path))


def test_validate_says_how_many_models_are_resident_together(service):
    cores = service.platform.shape.gpu_count
    names = [f"m{i}" for i in range(cores + 4)]
    validated = service.validate(_spec(names, pinned=("m0",)))
    assert validated.resident_limit == cores
    note = next(w for w in validated.warnings if "resident together" in w)
    assert f"at most {cores} of its {len(names)} models are resident together" in note
    assert (
        "least recently used model that is not pinned goes to sleep first" in note
        and "pinned, never asleep: m0" in note
    )


def test_a_pinned_set_that_cannot_fit_together_is_refused_naming_the_field(service):
    cores = service.platform.shape.gpu_count
    names = [f"m{i}" for i in range(cores + 1)]
    with pytest.raises(InvalidInput) as caught:
        service.validate(_spec(names, pinned=names))
    assert "models[0].pinned" in str(caught.value) and f"need {cores + 1} cores together" in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        service.validate(_spec([*names, "x"], max_resident=cores + 1))
    assert "max_resident" in str(caught.value) and f"at most {cores} fit (by cores)" in str(caught.value)
    assert service.platform.list_deployments() == []


def _states(platform, deployment_id):
    return {m["model_name"]: m for m in platform.store.model_states(deployment_id)}


def _chat(deployment, name: str, timeout: float = 90) -> httpx.Response:
    body = {"model": name, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4}
    headers = {"Authorization": f"Bearer {deployment.api_key}"}
    return httpx.post(f"{deployment.endpoint}/chat/completions", json=body, headers=headers, timeout=timeout)


@pytest.fixture
def deploy(service):
    made = []

    def create(spec):
        deployment = service.wait(service.create_deployment(spec).id, timeout=120)
        made.append(deployment.id)
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        return deployment

    yield create
    for deployment_id in made:
        service.delete(deployment_id)


@pytest.mark.slow
def test_the_least_recently_used_model_sleeps_when_another_wakes(service, deploy):
    platform = service.platform
    deployment = deploy(_spec(["a", "b", "c"], max_resident=2))
    first = _states(platform, deployment.id)
    assert [first[n]["state"] for n in "abc"] == ["ACTIVE", "ACTIVE", "SLEEPING"]
    assert "not resident" in first["c"]["detail"]

    assert _chat(deployment, "a").status_code == 200  # b is now the least recently used
    assert _chat(deployment, "c").status_code == 200
    after = _states(platform, deployment.id)
    assert (after["a"]["state"], after["b"]["state"], after["c"]["state"]) == ("ACTIVE", "SLEEPING", "ACTIVE")
    assert after["a"]["pid"] == first["a"]["pid"], "a stayed resident"
    assert "least recently used" in after["b"]["detail"] and "make room for 'c'" in after["b"]["detail"]

    assert _chat(deployment, "b").status_code == 200  # now a is the least recently used
    last = _states(platform, deployment.id)
    assert (last["a"]["state"], last["b"]["state"], last["c"]["state"]) == ("SLEEPING", "ACTIVE", "ACTIVE")
    assert all(m["restarts"] == 0 for m in last.values())
    got = service.get_deployment(deployment.id)
    assert got.state == "ACTIVE"
    woke = {m.model_name: m for m in got.model_states}["b"]
    assert woke.last_wake_s is not None and woke.last_woke_at is not None


@pytest.mark.slow
def test_a_pinned_model_never_sleeps_while_the_others_take_turns(service, deploy):
    platform = service.platform
    deployment = deploy(_spec(["p", "x", "y"], pinned=("p",), max_resident=2))
    pid = _states(platform, deployment.id)["p"]["pid"]
    for name in ["x", "y", "x", "y"]:
        assert _chat(deployment, name).status_code == 200
        states = _states(platform, deployment.id)
        assert states["p"]["state"] == "ACTIVE" and states["p"]["pid"] == pid
        assert states[name]["state"] == "ACTIVE"
        assert states["y" if name == "x" else "x"]["state"] == "SLEEPING"


async def _storm(deployment, names: list[str], per_model: int) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {deployment.api_key}"}
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:

        async def one(name: str) -> httpx.Response:
            body = {"model": name, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4}
            return await client.post(f"{deployment.endpoint}/chat/completions", json=body)

        return await asyncio.gather(*(one(n) for n in names for _ in range(per_model)))


@pytest.mark.slow
def test_a_wake_storm_is_answered_or_refused_with_retry_after_and_nothing_crashes(service, deploy, tmp_path):
    platform = service.platform
    names = [f"s{i}" for i in range(5)]
    deployment = deploy(_spec(names, max_resident=2))
    before = _states(platform, deployment.id)
    assert sum(m["state"] == "SLEEPING" for m in before.values()) == 3

    started = time.monotonic()
    answers = asyncio.run(asyncio.wait_for(_storm(deployment, names, 10), timeout=180))  # no deadlock
    took = time.monotonic() - started
    codes = [r.status_code for r in answers]
    assert len(codes) == 50 and set(codes) <= {200, 503}, codes
    for refused in (r for r in answers if r.status_code == 503):
        assert refused.headers.get("Retry-After") and "model" in refused.json()["error"]["message"]
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) >= 25, f"only {len(ok)} of 50 answered in {took:.0f} s: {[r.text[:200] for r in answers][:3]}"
    assert all(r.json()["choices"][0]["message"]["content"] for r in ok)

    after = _states(platform, deployment.id)
    assert all(m["state"] in ("ACTIVE", "SLEEPING") for m in after.values()), after
    assert sum(m["state"] == "ACTIVE" for m in after.values()) <= 2
    assert all(m["restarts"] == 0 for m in after.values())
    assert service.get_deployment(deployment.id).state == "ACTIVE"
    exits = tmp_path / "exits.jsonl"
    crashes = [e for e in map(json.loads, exits.read_text().splitlines()) if "signal" in e] if exits.exists() else []
    assert crashes == []


@pytest.mark.slow
def test_the_residency_bench_runs_six_models_rotating_and_shared():
    from tests.helpers.bench import run_quick_bench

    result = run_quick_bench("residency_bench.py", timeout=600)
    rotating, shared = result["rotating"], result["shared"]
    assert rotating["wakes"] >= result["rounds"] * 4 and rotating["resident_at_end"] <= 2, result
    assert shared["wakes"] == 0 and shared["resident_at_end"] == 6, result
    assert rotating["restarts"] == shared["restarts"] == 0
    assert {abs(m["error_pct"]) <= 10 for m in result["planner"].values()} == {True}, result["planner"]
    assert set(result["planner"]) == {"smol", "wide"}
