"""The AQUA Lab sidebar (the TypeScript frontend) in JupyterLab, driven in headless Chromium.

JupyterLab runs with temporary config, settings, workspace and data dirs and loads this checkout's
build of the sidebar (aqua_lab/labextension), so a run never touches the user's own JupyterLab.
Screenshots land in build/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aqua_lab.platforms.local import LocalPlatform
from tests.helpers.lab import BUILD, isolated_env, start_lab

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
UI = ROOT / "ui-tests"
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "sidebar-test-token"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A function that starts JupyterLab under a base URL and returns its URL with the token."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium (./test.sh does)"
    assert (UI / "node_modules" / "playwright-core").exists(), "run `npm install` in ui-tests/ (./test.sh does)"
    assert (BUILD / "package.json").exists(), "the sidebar is not built: run scripts/labextension.sh (./test.sh does)"
    for name, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    started = []

    def start(base_url: str = "/") -> str:
        proc, url = start_lab(tmp_path, TOKEN, base_url)
        started.append(proc)
        return url

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(20)
    platform = LocalPlatform(data_dir=tmp_path / "data")
    for d in platform.list_deployments():  # a failed run's deployment must not outlive the test
        platform.delete(d.id)


def drive(url: str, *flags: str, timeout: int = 300) -> dict:
    SHOTS.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node")
    assert node, "node is needed for the browser test"
    result = subprocess.run(
        [node, str(UI / "sidebar.mjs"), url, str(SHOTS), *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=UI,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sidebar_plans_two_models_and_shows_the_gpu_split_under_a_base_url(lab):
    found = drive(lab("/lab-prefix/"))
    assert found["consoleErrors"] == []
    assert found["platforms"] == ["local", "bundled", "oci"] and found["defaultPlatform"] == "local"
    assert "New deployment" in found["localEmpty"]
    assert "deploys nothing" in found["bundledEmpty"]
    assert found["catalogModels"] == 52
    plan = found["plan"]
    assert plan["shapes"] == ["VM.GPU.A10.2", "BM.GPU.A10.4"]
    assert plan["chosen"] == "VM.GPU.A10.2"  # the cheapest compatible shape
    assert plan["gpuCells"] == 2 + 4
    assert set(plan["owners"]) == {"google/gemma-2b", "microsoft/phi-2"}
    assert len(plan["colours"]) == 2
    assert plan["incompatible"] >= 10 and "no multi_model_deployment entry" in plan["firstReason"]
    assert plan["valid"].startswith("Valid: 2 of 2 GPUs on VM.GPU.A10.2")
    # the server's 422 for the bad override is shown next to that field, naming it and the fix
    assert found["overrideError"].startswith("models[0].gpu_count: 64 GPUs but VM.GPU.A10.2 has 2")
    assert found["localDeployments"] == 0
    assert found["pollsVisible"] >= 1 and found["pollsHidden"] == 0
    assert found["restoredPlan"] == 1 and found["restoredSidebarVisible"]
    assert found["restoredSelection"] == ["google/gemma-2b", "microsoft/phi-2"]
    faults = found["faults"]
    assert "the platform is down" in faults["downMessage"] and "retrying in" in faults["downMessage"]
    assert faults["recovered"] and faults["cardName"] == "<b>html</b> in a name"
    fake = faults["fake"]
    assert fake["xss"] is None and fake["handlers"] == 0  # model output went through the sanitiser
    assert fake["bold"] == "bold" and "and more" in fake["firstAnswer"]
    assert "second model failed: boom" in fake["secondError"]  # under that model's answer only
    assert max(fake["columnWidths"]) <= fake["viewWidth"]  # a very long model name does not widen the tab
    for name in ("sidebar-local.png", "plan-bundled.png", "plan-override-error.png", "plan-bundled-dark.png"):
        assert (SHOTS / name).stat().st_size > 5000


@pytest.mark.local
@pytest.mark.slow
def test_sidebar_deploys_chats_compares_and_deletes_a_local_deployment(lab):
    found = drive(lab("/lab-prefix/"), "--deploy", timeout=600)
    assert found["consoleErrors"] == []
    deploy = found["deploy"]
    assert deploy["state"] == "ACTIVE", deploy.get("failure")
    assert len(deploy["modelStates"]) == 2 and all("ACTIVE" in s for s in deploy["modelStates"])
    assert deploy["cardName"] == "ui <b>sidebar</b>" and deploy["cardBoldTags"] == 0
    assert deploy["modelLog"].strip() and deploy["deactivated"] and deploy["reactivated"]
    assert deploy["columns"] == ["SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct-2"]
    for answer in deploy["answers"]:
        assert answer["text"].strip(), answer
        assert answer["sizes"] >= 3, f"the answer did not grow while streaming: {answer}"
        assert "TTFT" in answer["stats"]
    assert deploy["stopped"].startswith("stopped")
    assert [c["model"] for c in deploy["compare"]] == deploy["columns"]
    for column in deploy["compare"]:
        assert column["answer"].strip() and "TTFT" in column["stats"] and "tok/s" in column["stats"]
    assert "cannot be restored" in deploy["dialog"] and deploy["deleted"]
    for name in ("deploy-active.png", "sidebar-deployment.png", "chat-compare.png", "chat-compare-dark.png"):
        assert (SHOTS / name).stat().st_size > 5000
