"""The sidebar tells the truth on a CPU machine (issue 25 items 6-8), driven in headless Chromium.

A real local deployment ('holder', one SmolLM2 on one core) holds a core of this machine while the
Plan tab is used.  Screenshots (light and dark) land in build/screenshots/truth-*.png."""

from __future__ import annotations

import asyncio
import re

import pytest

from aqua_lab.domain import ChatRequest, DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService
from tests.test_sidebar import SHOTS, drive, lab  # noqa: F401 (lab is the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.local, pytest.mark.slow]

GPU_WORDS = re.compile(r"\bGPUs?\b|per GPU|GPU memory")


def test_the_plan_speaks_of_cores_counts_held_ones_and_replans_when_they_are_freed(lab, tmp_path):  # noqa: F811
    url = lab("/")
    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))  # the data dir JupyterLab uses
    holder = None
    try:
        spec = DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "held-smol"}],
            instance_shape=service.shapes()[0].name,
            display_name="holder",
        )
        holder = service.wait(service.create_deployment(spec).id, timeout=180)
        assert holder.state == "ACTIVE", holder.lifecycle_details
        question = ChatRequest(model="held-smol", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
        asyncio.run(service.chat(holder.id, question))  # numbers for the metrics plots
        found = drive(url, script="sidebar-truth.mjs", timeout=600)
    finally:
        if holder is not None:
            service.delete(holder.id)
    assert found["consoleErrors"] == []
    machine = service.shapes()[0].name

    # one model while 'holder' holds core 0: the machine's words, the held core drawn, valid on what is free
    one = found["one"]
    assert not GPU_WORDS.search(one["text"]), one["text"]
    assert "free core" in one["legend"] and one["units"] == "cores"
    assert one["held"] == ["holder"] and "‘holder’ holds core 0" in one["text"]
    assert one["valid"].startswith(f"Valid: 1 of 1 core on {machine}") and not one["deployDisabled"]
    assert one["header"] == ["Model", "Cores", "Served name"]
    # the local form shows the local platform's own options, none of OCI's
    assert [o.split(" (")[0] for o in one["options"]] == ["Description", "Instance count", "Environment"]

    # two cores asked while one is free: not "valid", Deploy disabled and saying why
    refused = found["refused"]
    assert refused["ok"] == 0 and "a create now would be refused" in refused["validation"]
    assert "'holder'" in refused["validation"] and "holds core 0" in refused["validation"]
    assert refused["disabled"] and "holds core 0" in refused["title"] and refused["opacity"] < 0.6

    # nothing fits what is free: the headline names the held core, not the shapes
    full = found["full"]
    assert "‘holder’ holds core 0" in full["headline"] and "Pause" in full["headline"]
    assert "do not share any available common" not in full["text"] and "see why below" not in full["headline"]
    assert full["rows"] == 0 and any("holder" in h and "Pause" in h for h in full["holders"])
    assert not GPU_WORDS.search(full["text"]), full["text"]

    # deactivated from its card, activated again: the plan follows without the selection changing
    after = found["afterDeactivate"]
    assert after["headlines"] == 0 and "holds core" not in after["text"]
    assert after["valid"].startswith(f"Valid: 2 of 2 cores on {machine}")
    assert "‘holder’ holds core" in found["afterActivate"]["headline"]
    # Pause from the plan frees the core and offers it back
    assert found["paused"]["headlines"] == 0 and any("Activate" in o for o in found["paused"]["offers"])
    assert found["reactivated"]

    # the card: a disabled button says why; the key as openai and curl snippets (as the CLI prints)
    assert all(b["title"] and b["opacity"] < 0.6 for b in found["disabled"]), found["disabled"]
    snippets = found["snippets"]
    key, endpoint = holder.api_key, holder.endpoint
    assert f'OpenAI(base_url="{endpoint}", api_key="{key}")' in snippets["python (openai)"]
    assert 'model="held-smol"' in snippets["python (openai)"]
    assert snippets["curl"].startswith(f"curl {endpoint}/chat/completions ")
    assert f"-H 'Authorization: Bearer {key}'" in snippets["curl"] and '"model":"held-smol"' in snippets["curl"]
    # per-model metrics with a plot per series
    [metrics] = found["metrics"]
    assert metrics["model"] == "held-smol" and int(metrics["figures"]["requests"]) >= 1
    figures = {"requests", "errors", "TTFT p50", "TTFT p95", "tokens/s", "in flight", "replicas"}
    assert set(metrics["figures"]) == figures
    assert metrics["figures"]["replicas"] == "1"
    assert [p["metric"] for p in metrics["plots"]] == ["requests", "errors", "TTFT p95", "tokens/s"]
    # three window switches while loads were in flight (the first answering last): the last window is
    # drawn, polled by one loop (one ask per 5 s), the figures patched in place, no ask after Close
    switched = found["metricsSwitched"]
    print("metrics asked during the switches and the 8 s after:", switched["asked"])
    assert switched["asked"][:3] == ["5m", "15m", "1h"], switched
    polls = switched["asked"][3:]
    assert 1 <= len(polls) <= 2 and set(polls) == {"1h"}, switched
    assert switched["window"] == "1h" and "window 60 min" in switched["drawn"], switched
    assert switched["sectionKept"] and switched["afterClose"] == 0, switched
    # scaling goes through the server's checks: two replicas need a core each, the model has one
    assert "2 replicas need a core each" in found["scaleRefused"] and "instance_count 1" in found["scaleRefused"]
    # a poll drew the card again while its Scale form was open: the form, what was typed and the focus stayed
    assert found["scaleKept"] == {"redrawn": True, "open": True, "value": "2", "focused": True}
    assert found["scaleReopened"] == "1"
    assert found["buttonFocus"]["redrawn"] and found["buttonFocus"]["focused"].startswith("Metrics ")

    # bundled: Deploy disabled with its reason, model names whole, config warnings folded once
    assert all(found["wrapped"]) and len(found["wrapped"]) == 2
    bundled = found["bundled"]
    assert bundled["disabled"] and "deploys nothing" in bundled["title"] and bundled["opacity"] < 0.6
    assert bundled["options"] == 0 and bundled["folded"] == [False] and bundled["looseWarnings"] == 0
    for name in ("plan-held-core", "plan-refused", "plan-full", "usage-dialog", "metrics-dialog", "bundled-plan"):
        for suffix in ("", "-dark"):
            assert (SHOTS / f"truth-{name}{suffix}.png").stat().st_size > 5000
    assert service.platform.list_deployments() == []  # nothing left behind
