"""The sidebar shows residency on a live deployment (issue 28), driven in headless Chromium: a model
asleep (its SLEEPING badge and since when) beside a pinned resident one with its memory bars —
planned weights / KV / other next to measured weights / KV / compute / rest of the RSS, and the
planner's error.  Screenshots (light and dark): build/screenshots/residency-card*.png."""

from __future__ import annotations

import asyncio
import time

import pytest

from aqua_lab.domain import ChatRequest, DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService
from tests.test_sidebar import SHOTS, drive, lab  # noqa: F401 (lab is the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.local, pytest.mark.slow]


def test_the_sidebar_shows_a_sleeping_model_and_the_memory_bars_of_a_resident_one(lab, tmp_path):  # noqa: F811
    url = lab("/")
    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))  # the data dir JupyterLab uses
    deployment = None
    try:
        spec = DeploymentSpec(
            models=[
                {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "sleepy", "idle_sleep_s": 1},
                {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "awake", "pinned": True},
            ],
            display_name="residency-ui",
            share_cores=True,
        )
        deployment = service.wait(service.create_deployment(spec).id, timeout=180)
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        question = ChatRequest(model="awake", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
        asyncio.run(service.chat(deployment.id, question))  # its RSS as a served model has it
        deadline = time.monotonic() + 30
        while "SLEEPING" not in {s.state for s in service.get_deployment(deployment.id).model_states}:  # sleepy
            assert time.monotonic() < deadline, "sleepy did not fall asleep"
            time.sleep(0.2)
        found = drive(url, script="residency.mjs", timeout=300)
    finally:
        if deployment is not None:
            service.delete(deployment.id)
    assert found["consoleErrors"] == []
    models = {m["model"]: m for m in found["models"]}
    sleepy, awake = models["sleepy"], models["awake"]
    assert sleepy["badge"] == "SLEEPING" and sleepy["badgeBorder"] == "dashed"
    assert sleepy["residency"].startswith("asleep for ") and "the next request wakes it" in sleepy["text"]
    assert sleepy["text"].count("next request wakes") == 1  # said once: the note does not repeat the detail
    # asleep: the plan for when it wakes, next to the little its process still holds (no engine buffers)
    planned, held = sleepy["rows"]
    assert held["label"] == "asleep" and [s["kind"] for s in held["segments"]] == ["other"]
    assert held["segments"][0]["width"] < 0.15 * sum(s["width"] for s in planned["segments"])
    assert "% of the plan held" in sleepy["legend"] and "compute" not in sleepy["legend"]
    assert awake["badge"] == "ACTIVE"
    planned, measured = awake["rows"]
    assert planned["label"] == "planned" and measured["label"] == "measured"
    assert [s["kind"] for s in planned["segments"]] == ["weights", "kv", "other"]
    assert [s["kind"] for s in measured["segments"]][:3] == ["weights", "kv", "compute"]
    assert measured["total"].endswith(" MiB") and planned["total"].endswith(" MiB")
    error = float(awake["legend"].split("plan ")[1].split(" %")[0])
    assert abs(error) <= 10, awake["legend"]
    # one scale: the two bars' lengths differ by the planner's error, not by their own totals
    lengths = [sum(s["width"] for s in r["segments"]) for r in (planned, measured)]
    assert 0.85 < lengths[0] / lengths[1] < 1.15 and max(lengths) <= planned["barWidth"] + 1
    assert all(k in awake["legend"] for k in ("weights", "KV cache", "compute", "other", "vs RSS")), awake["legend"]
    assert all(r["height"] < 20 for r in (planned, measured)), "a memory row wraps"
    assert len(set(found["darkColors"])) == 4  # weights, KV, compute and other tell apart in dark too
    for suffix in ("", "-dark"):
        assert (SHOTS / f"residency-card{suffix}.png").stat().st_size > 3000
