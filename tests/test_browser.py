"""JupyterLab in headless Chromium renders the GPU-split and chat widgets of a real notebook run.
Screenshots land in build/screenshots/ (CI keeps them as artifacts)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from aqua_lab.platforms.local import LocalPlatform
from tests.helpers.servers import start_jupyter

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
UI = ROOT / "ui-tests"
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

CELLS = [
    "from aqua_lab.service import AquaLabService\n"
    "from aqua_lab.widgets import ChatPanel, GpuSplit\n\n"
    "split = GpuSplit(AquaLabService('bundled'))\n"
    "split.refresh(['google/gemma-2b', 'meta-llama/Llama-3.2-1B', 'microsoft/phi-2'], 'microsoft/phi-2')\n"
    "split",
    "from aqua_lab.domain import DeploymentSpec\n\n"
    "lab = AquaLabService('local')\n"
    "spec = DeploymentSpec(display_name='ui', instance_shape=lab.shapes()[0].name, models=[\n"
    "    {'model_id': 'smollm2-135m-instruct', 'gpu_count': 1, 'model_name': 'smol-a'},\n"
    "    {'model_id': 'smollm2-135m-instruct', 'gpu_count': 1, 'model_name': 'smol-b'}])\n"
    "deployment = lab.wait(lab.create_deployment(spec).id, timeout=120)\n"
    "chat = ChatPanel(lab, deployment.id)\n"
    "chat.max_tokens.value, chat.temperature.value = 24, 0\n"
    "chat.ask('Name three colours.')\n"
    "chat.wait(60)\n"
    "chat",
    # the whole app on this machine, a model picked twice while 'ui' holds the cores: the polish and
    # the honest capacity picture, as a newcomer sees them
    "from aqua_lab.widgets import AquaLabWidget\n\n"
    "app = AquaLabWidget(lab)\n"
    "app.picker.pick('smollm2-135m-instruct', 'smollm2-135m-instruct')\n"
    "app.picker.register.selected_index = 0\n"
    "app",
    "bundled = AquaLabWidget('bundled')\n"
    "bundled.picker.pick('meta-llama/Meta-Llama-3.1-8B-Instruct', 'google/gemma-2b')\n"
    "bundled.split.override_shape.value = 'BM.GPU.A10.4'\n"
    "bundled",
]


@pytest.fixture
def lab_server(tmp_path):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium (./test.sh and .ci/run do)"
    assert (UI / "node_modules" / "playwright-core").exists(), "run `npm install` in ui-tests/ (./test.sh does)"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    root = tmp_path / "root"
    root.mkdir()
    nbformat.write(notebook, root / "ui.ipynb")
    data = tmp_path / "data"
    lab, base = start_jupyter(
        "jupyterlab",
        root,
        data,
        "ui-test-token",
        extra=("--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"),
    )
    url = f"{base}?token=ui-test-token"
    yield url
    lab.terminate()
    lab.wait(20)
    platform = LocalPlatform(data_dir=data)
    for d in platform.list_deployments():  # the notebook's deployment outlives its kernel: remove it
        platform.delete(d.id)


def test_jupyterlab_renders_the_gpu_split_and_chat_widgets(lab_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node")
    assert node, "node is needed for the browser test"
    result = subprocess.run(
        [node, str(UI / "screenshot.mjs"), lab_server, "ui.ipynb", str(SHOTS)],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=UI,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["shapes"] >= 1 and found["gpuCells"] >= 4
    assert {"google/gemma-2b", "meta-llama/Llama-3.2-1B", "microsoft/phi-2"} <= set(found["owners"])
    assert found["turns"] >= 2 and found["assistant"].strip()
    assert found["held"] >= 1 and "ui" in found["heldBy"]  # the app draws the cores 'ui' holds
    assert found["copies"] >= 1 and "SmolLM2-135M-Instruct-2" in found["served"]
    assert found["primary"] == "no primary"  # the Primary box is not blank
    names = ("gpu-split.png", "chat.png", "lab.png", "lab-dark.png", "app.png", "app-dark.png")
    for name in (*names, "bundled-app.png", "bundled-app-dark.png", "split-dark.png"):
        assert (SHOTS / name).stat().st_size > 5000
