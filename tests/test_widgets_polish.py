"""What a user of the notebook panels saw go wrong (issue 25 item 5), checked on what the panels show:
copies of one model told apart, served names whole, the Evaluate tab usable on its own, no numbers
of a deleted deployment, the deployment just made chosen.  The in-memory platform and the stand-in
router stand in for model servers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import aqua_lab.evaluation
from aqua_lab.domain import DeploymentMetrics, DeploymentSpec, ModelMetrics
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.service import AquaLabService
from aqua_lab.widgets import AquaLabWidget, ChatPanel, DeploymentsPanel, EvaluationPanel, GpuSplit, ModelPicker
from aqua_lab.widgets.metrics import render
from tests.helpers.fake_models import start_fake_deployment
from tests.helpers.memory_platform import MemoryPlatform

pytestmark = pytest.mark.widgets

SHAPE = "VM.GPU.A10.2"


class MeteredPlatform(MemoryPlatform):
    """Keeps answering a deployment's metrics after it is deleted, as OCI Monitoring does."""

    def deployment_metrics(self, deployment_id: str, window_s: float) -> DeploymentMetrics:
        d = self._get(deployment_id)
        return DeploymentMetrics(
            deployment_id=deployment_id,
            platform=self.name,
            window_s=window_s,
            source="memory",
            models=[ModelMetrics(model_name=m.model_name, requests=417, errors=0) for m in d.models],
        )


@pytest.fixture
def memory():
    return AquaLabService(MemoryPlatform(polls_to_active=1))


def _deploy(service: AquaLabService, name: str = "old", models=None) -> str:
    spec = DeploymentSpec(
        models=models or [{"model_id": "m-a", "gpu_count": 1}], instance_shape=SHAPE, display_name=name
    )
    return service.wait(service.create_deployment(spec).id, timeout=5, interval=0).id


def _text(html: str) -> str:
    """What a user reads of some markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _column_tints(service: AquaLabService, deployment_id: str) -> dict[str, str]:
    """served name → the colour of its column in the chat's side-by-side comparison."""
    chat = ChatPanel(service, deployment_id)
    chat._render_columns()  # what a compare turn draws first, before any answer
    columns = "".join(box.value for box in chat.columns.children)
    return dict(re.findall(r'data-model="([^"]+)" style="border-top:3px solid ([#\w]+)', columns))


def test_two_copies_of_one_model_have_their_own_colour_and_legend_name(memory):
    picker = ModelPicker(memory)
    split = GpuSplit(memory, picker)
    picker.pick("m-a", "m-a")  # alpha-7b twice
    split.override_shape.value = SHAPE
    table = split.table.value
    cells = re.findall(r'class="aqua-gpu"[^>]*title="([^"]+)"[^>]*background:([#\w]+)', table)
    assert [name for name, _ in cells] == ["alpha-7b", "alpha-7b-2"]
    assert len({tint for _, tint in cells}) == 2, cells  # one colour each, not one for the model
    legend = re.findall(r'class="aqua-legend"[^>]*><span style="color:([#\w]+)">■</span> ([^:]+):', table)
    assert legend == [(tint, name) for name, tint in cells]  # the legend names and colours the cells
    assert [c.description for c in split.overrides.children] == ["alpha-7b", "alpha-7b-2"]

    # the deployment made from the split serves those names, drawn in those colours in chat and metrics
    deployment = memory.wait(memory.create_deployment(split.spec("two")).id, timeout=5, interval=0)
    assert deployment.served_names() == ["alpha-7b", "alpha-7b-2"]
    tints = _column_tints(memory, deployment.id)
    assert tints == {name: tint for name, tint in cells}
    metrics = DeploymentMetrics(
        deployment_id=deployment.id,
        platform="memory",
        window_s=300,
        source="memory",
        models=[ModelMetrics(model_name=n, requests=1) for n in deployment.served_names()],
    )
    rows = dict(
        (n, t) for t, n in re.findall(r'<tr><td><span style="color:([#\w]+)">■</span> ([^<]+)</td>', render(metrics))
    )
    assert rows == tints

    # two served names chosen by the user for one model (smol-a, smol-b) are two columns, two colours
    twins = _deploy(
        memory,
        "twins",
        [
            {"model_id": "m-a", "model_name": "smol-a", "gpu_count": 1},
            {"model_id": "m-a", "model_name": "smol-b", "gpu_count": 1},
        ],
    )
    twin_tints = _column_tints(memory, twins)
    assert set(twin_tints) == {"smol-a", "smol-b"} and len(set(twin_tints.values())) == 2


@pytest.fixture
def fake_long_names(tmp_path):
    """A stand-in deployment serving two copies of SmolLM2 under their full served names."""
    data_dir = tmp_path / "data"
    served = ("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct-2")
    deployment_id, proc = start_fake_deployment(data_dir, tmp_path / "router", served=served)
    try:
        yield AquaLabService(LocalPlatform(data_dir=data_dir)), deployment_id, served
    finally:
        proc.kill()
        proc.wait()


def test_evaluation_progress_shows_each_served_name_whole(fake_long_names, tmp_path):
    service, deployment_id, served = fake_long_names
    panel = EvaluationPanel(service, deployment_id, poll_s=0.05)
    sample = Path(aqua_lab.evaluation.__file__).parent / "data" / "sample.jsonl"
    rows = tmp_path / "two.jsonl"
    rows.write_bytes(b"".join(sample.read_bytes().splitlines(keepends=True)[:2]))
    panel.dataset.value = str(rows)
    for name, box in panel.metrics.items():
        box.value = name == "rouge"
    panel.evaluate()
    try:
        assert list(panel.bars) == list(served), panel.status.value
        for name, bar in panel.bars.items():
            assert bar.description == name and bar.tooltip == name  # the whole name, also on hover
            # ipywidgets cuts a description to its box ("SmolLM2-…" in the default 80 px one)
            width = bar.style.description_width
            assert width.endswith("ch") and int(width[:-2]) >= len(name), width
        assert len({bar.style.description_width for bar in panel.bars.values()}) == 1  # the bars line up
    finally:
        panel.wait(120)
        if panel.evaluation is not None:  # its job process may linger a moment after SUCCEEDED: stopped here
            service.delete_evaluation(panel.evaluation.id)
    assert "SUCCEEDED" in panel.status.value, panel.status.value


def test_the_evaluate_tab_shows_its_form_when_opened_directly(memory):
    app = AquaLabWidget(memory)
    app.tabs.selected_index = 4  # straight to Evaluate, no deployment yet
    (panel,) = app.evaluation_box.children
    assert isinstance(panel, EvaluationPanel) and panel.deployment in panel.children
    assert "No ACTIVE deployment to evaluate" in panel.errors["deployment"].value

    deployment_id = _deploy(memory, "made later")  # e.g. in another cell
    app.tabs.selected_index = 0
    app.tabs.selected_index = 4
    assert app.evaluation_box.children == (panel,)  # the same form, brought up to date
    assert panel.deployment.options == ((f"made later ({deployment_id})", deployment_id),)
    assert panel.deployment.value == deployment_id and list(panel.model.options)[1:] == ["alpha-7b"]
    assert panel.errors["deployment"].value == ""


def test_the_metrics_pane_forgets_a_deleted_deployment():
    service = AquaLabService(MeteredPlatform(polls_to_active=1))
    deployment_id = _deploy(service, "measured")
    panel = DeploymentsPanel(service)
    metrics = panel.show_metrics()
    assert metrics is not None and "417" in _text(metrics.view.value)
    panel.act("delete")
    panel.act("delete")  # confirmed
    assert "DELETED" in panel.status.value
    seen = _text(metrics.view.value)
    assert "417" not in seen and f"{deployment_id} was deleted" in seen and metrics.metrics is None
    metrics.refresh_button.click()  # asking again does not bring the numbers back
    assert "417" not in _text(metrics.view.value) and "was deleted" in metrics.view.value

    # deleted from another cell, on a platform that then no longer lists it (the local one)
    other = _deploy(service, "measured too")
    panel.refresh()
    panel.choice.value = other
    metrics = panel.show_metrics()
    assert "417" in _text(metrics.view.value)
    service.platform.deployments.pop(other)
    panel.refresh_button.click()
    assert "417" not in _text(metrics.view.value) and f"{other} is gone" in metrics.view.value


def test_the_deployments_picker_chooses_the_deployment_just_made(memory):
    old = _deploy(memory, "old")
    app = AquaLabWidget(memory)
    assert app.deployments.choice.value == old
    app.picker.pick("m-a")
    app.split.override_shape.value = SHAPE
    app.deploy.name.value = "just made"
    app.deploy.poll_s = 0
    app.deploy.button.click()
    made = app.deploy.wait(30)
    assert made is not None and made.state == "ACTIVE", app.deploy.status.value
    app.tabs.selected_index = 2  # the user goes to Deployments
    assert app.deployments.choice.value == made.id != old
    assert app.deployments.choice.label == f"just made ({made.id})"
    deadline = time.monotonic() + 5
    while app.deploy.button.disabled and time.monotonic() < deadline:  # the worker's last lines
        time.sleep(0.01)
