"""The ipywidgets panels, driven headlessly as a user would: set values, click, read what shows."""

from __future__ import annotations

import re

import pytest

from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService
from aqua_lab.widgets import AquaLabWidget, ChatPanel, DeploymentsPanel, DeployPanel, GpuSplit, ModelPicker

pytestmark = pytest.mark.widgets


@pytest.fixture(scope="module")
def bundled():
    return AquaLabService("bundled")


def test_the_picker_searches_filters_and_keeps_picks(bundled):
    picker = ModelPicker(bundled)
    picker.search.value = "gemma"
    names = [label for label, _ in picker.choices.options]
    assert names and all("gemma" in n.lower() for n in names)
    picker.choices.value = ("google/gemma-2b",)
    picker.search.value = "phi"
    assert ("google/gemma-2b", "google/gemma-2b") in picker.choices.options  # still picked while filtering
    picker.shape.value = "BM.GPU.H100.8"
    assert all("gemma-2b" not in label or label == "google/gemma-2b" for label, _ in picker.choices.options)
    picker.pick("google/gemma-2b", "microsoft/phi-2", primary="microsoft/phi-2")
    assert picker.selected == ["google/gemma-2b", "microsoft/phi-2"] and picker.primary == "microsoft/phi-2"


def test_the_split_shows_each_gpus_owner_and_follows_the_primary(bundled):
    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    picker.pick("google/gemma-2b", "meta-llama/Llama-3.2-1B", "microsoft/phi-2")
    assert split.owners("BM.GPU.A10.4") == [
        "google/gemma-2b",
        "meta-llama/Llama-3.2-1B",
        "meta-llama/Llama-3.2-1B",
        "microsoft/phi-2",
    ]
    picker.primary_choice.value = "microsoft/phi-2"  # the picture updates live
    assert split.owners("BM.GPU.A10.4").count("microsoft/phi-2") == 2
    cells = re.findall(r'data-shape="BM.GPU.A10.4".*?</div></div>', split.table.value, re.S)
    assert cells and split.table.value.count('class="aqua-gpu"') >= 4
    assert "shapes cannot hold these models" in split.reasons.value


def test_the_fuller_split_is_offered_and_taken_in_one_click(bundled):
    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    # codegemma-1.1-2b allows only 1 GPU on A10.4, CodeLlama 1 or 2: the primary-first split leaves 2 idle
    picker.pick("google/codegemma-1.1-2b", "codellama/CodeLlama-7b-Instruct-hf", primary="google/codegemma-1.1-2b")
    split.override_shape.value = "BM.GPU.A10.4"
    assert split.owners("BM.GPU.A10.4") == ["google/codegemma-1.1-2b", "codellama/CodeLlama-7b-Instruct-hf", None, None]
    assert "alternative: google/codegemma-1.1-2b 1, codellama/CodeLlama-7b-Instruct-hf 2" in split.table.value
    assert split.alternative.layout.display is None  # shown
    assert split.alternative.description == "Use the split that fills 3 GPUs (+1)"
    split.alternative.click()
    assert [c.value for c in split.overrides.children] == [1, 2]
    assert "valid: 3 GPUs of BM.GPU.A10.4" in split.validation.value
    assert "--served-model-name codellama/CodeLlama-7b-Instruct-hf --seed 42 --tensor-parallel-size 2" in (
        split.validation.value
    )
    picker.primary_choice.value = None  # without a primary the plan already fills: no alternative
    split.override_shape.value = "BM.GPU.A10.4"
    assert split.alternative.layout.display == "none"


def test_overrides_are_validated_as_they_change(bundled):
    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    picker.pick("google/gemma-2b", "microsoft/phi-2")
    split.override_shape.value = "BM.GPU.A10.4"
    assert "valid" in split.validation.value
    split.overrides.children[0].value = 4  # gemma allows only 1 here, and 4 + 2 > 4
    assert "configured for [1] GPU(s)" in split.validation.value
    assert "need 6 GPUs but BM.GPU.A10.4 has 4" in split.validation.value
    split.overrides.children[0].value = 1
    split.overrides.children[1].value = 1
    assert "stay idle" in split.validation.value  # under-use is a warning, not an error


def test_no_models_and_impossible_groups_say_so(bundled):
    split = GpuSplit(bundled)
    split.refresh([])
    assert "Pick one or more models" in split.table.value
    split.refresh(
        ["meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.2-11B-Vision-Instruct", "microsoft/phi-4"]
    )
    assert "do not have a valid GPU allocation" in split.table.value


def test_deploy_on_a_platform_that_only_plans_shows_the_error_in_place(bundled):
    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    picker.pick("google/gemma-2b")
    split.override_shape.value = "VM.GPU.A10.2"
    panel = DeployPanel(bundled, split)
    panel.env.value = "{not json"
    panel.button.click()
    assert "Env: not valid JSON" in panel.status.value
    panel.env.value = ""
    panel.button.click()
    panel.wait(10)
    assert "only plans" in panel.status.value and not panel.button.disabled


# --------------------------------------------------------------------------------------------------
# against a real local deployment


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    service = AquaLabService(LocalPlatform(data_dir=tmp_path_factory.mktemp("widgets_data")))
    yield service
    for d in service.list_deployments():
        service.delete(d.id)


def test_deploy_with_progress_then_chat_compare_and_delete(local):
    app = AquaLabWidget(local)
    app.picker.pick(SMOLLM2_ID, SMOLLM2_ID)
    shape = local.shapes()[0].name
    assert app.split.owners(shape).count(SMOLLM2_ID) == local.shapes()[0].gpu_count
    app.split.override_shape.value = shape
    app.deploy.name.value = "widget deploy"
    app.deploy.poll_s = 0.05
    seen = []
    app.deploy.progress.observe(lambda c: seen.append(c["new"]), names="value")
    app.deploy.button.click()
    deployment = app.deploy.wait(120)
    assert deployment is not None and deployment.state == "ACTIVE", app.deploy.status.value
    assert seen[-1] == 100 and "endpoint http://127.0.0.1" in app.deploy.status.value
    assert [m.model_name for m in deployment.models] == ["SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct-2"]

    app.deployments.refresh()
    assert "widget deploy" in app.deployments.table.value
    app.deployments.choice.value = deployment.id
    chat = app.open_chat(deployment.id)
    assert isinstance(chat, ChatPanel) and app.tabs.selected_index == 3
    chat.max_tokens.value, chat.temperature.value = 12, 0
    chat.system.value = "Answer briefly."
    chat.ask("Name a colour.")
    chat.wait(60)
    assert chat.status.value == "", chat.status.value
    first = chat.histories[chat.model.value]
    assert [t["role"] for t in first] == ["user", "assistant"] and first[1]["content"].strip()
    chat.ask("And another?")  # multi-turn: the history goes along
    chat.wait(60)
    assert len(chat.histories[chat.model.value]) == 4
    assert "Name a colour." in chat.transcript.value

    chat.compare.value = True
    chat.ask("Say hi.")
    chat.wait(60)
    assert set(chat.stats) == set(chat.names)
    assert all("first token" in box.value for box in chat.columns.children)

    panel = app.deployments
    panel.act("delete")
    assert "Click Delete again" in panel.status.value  # confirmation first
    panel.act("delete")
    assert "DELETED" in panel.status.value
    assert deployment.id not in [d.id for d in local.list_deployments()]


def test_stop_ends_a_long_answer(local):
    spec_panel = GpuSplit(local)
    spec_panel.refresh([SMOLLM2_ID])
    spec_panel.override_shape.value = local.shapes()[0].name
    deployment = local.wait(local.create_deployment(spec_panel.spec("stop test")).id, timeout=90)
    chat = ChatPanel(local, deployment.id)
    chat.max_tokens.value = 2000
    chat.ask("Write a very long story about the sea.")
    import time

    deadline = time.monotonic() + 30
    while not chat.answers.get(chat.model.value) and time.monotonic() < deadline:
        time.sleep(0.05)
    chat.stop.click()
    chat.wait(30)
    assert "stopped" in chat.status.value
    assert 0 < len(chat.answers[chat.model.value].split()) < 1500
    DeploymentsPanel(local)  # renders with a live deployment
    local.delete(deployment.id)


def test_what_if_controls_update_the_split_and_the_memory_bars(bundled):
    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    picker.pick("meta-llama/Meta-Llama-3.1-8B-Instruct", "openai/gpt-oss-20b", "microsoft/phi-4")
    assert split.table.value.count('class="aqua-memory') == 3 * len(split.plan.gpu_allocation)
    a10 = split.plan.gpu_allocation["BM.GPU.A10.4"]
    llama = a10.models[0].memory
    assert llama.concurrency == 1 and llama.kv_cache_dtype == "auto"
    split.max_model_len.value = 32768
    split.concurrency.value = 4  # each change re-plans at once
    llama = split.plan.gpu_allocation["BM.GPU.A10.4"].models[0].memory
    assert (llama.max_model_len, llama.concurrency, llama.fits) == (32768, 4, False)
    assert "does not fit: 4 × 32768 tokens need" in split.table.value
    split.kv_cache_dtype.value = "fp8"
    fp8 = split.plan.gpu_allocation["BM.GPU.A10.4"].models[0].memory
    assert fp8.kv_cache_dtype == "fp8" and fp8.kv_capacity_tokens > 2 * llama.kv_capacity_tokens - 2
    split.weight_precision.value = "int4"
    assert split.plan.gpu_allocation["BM.GPU.A10.4"].models[0].memory.weights_gb < 5
    split.gpu_memory_utilization.value = 0.5
    assert split.plan.capacity.gpu_memory_utilization == 0.5
    assert "max context" in split.table.value and "suggested: --max-model-len" in split.table.value
    split.override_shape.value = "BM.GPU.A10.4"
    spec = split.spec()  # deploying carries the context the plan checked, merged over the config's flags
    planned = split.plan.gpu_allocation["BM.GPU.A10.4"].models
    assert [m.params for m in spec.models] == [m.suggested_parameters for m in planned]
    assert spec.models[0].params.startswith("--max-model-len ")
    assert "valid" in split.validation.value
    split.max_model_len.value = 5  # below the minimum: said in place, nothing crashes
    assert "max_model_len: Input should be greater than or equal to 16" in split.table.value
    split.max_model_len.value = 0
    assert split.plan is not None and split.plan.capacity.max_model_len is None


def test_no_panel_attribute_shadows_an_ipywidgets_member():
    """A panel attribute named like a Widget member (``send``, ``_compare``, ``keys`` …) silently
    breaks the widget protocol in a live kernel; headless tests would not notice."""
    import inspect
    import re

    import ipywidgets as w

    import aqua_lab.widgets as panels

    members = set(dir(w.VBox()))
    for cls in (
        panels.AquaLabWidget,
        panels.ChatPanel,
        panels.DeployPanel,
        panels.DeploymentsPanel,
        panels.EvaluationPanel,
        panels.GpuSplit,
        panels.MetricsPanel,
        panels.ModelPicker,
    ):
        source = inspect.getsource(inspect.getmodule(cls))
        assigned = set(re.findall(r"self\.(\w+)\s*[:=][^=]", source))
        methods = {n for n in cls.__dict__ if not n.startswith("__")}
        assert not (assigned | methods) & (
            members
            - {
                "_trait_default_generators",
                "_all_trait_default_generators",
                "_traits",
                "_static_immutable_initial_values",
                "_descriptors",
                "_instance_inits",
            }
        ), cls.__name__


def test_the_deploy_panel_takes_an_autoscaling_policy_and_names_a_bad_field(bundled):
    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    picker.pick("google/gemma-2b")
    split.override_shape.value = "VM.GPU.A10.2"
    panel = DeployPanel(bundled, split)
    panel.autoscaling.value = "{oops"
    panel.button.click()
    assert "Autoscaling: not valid JSON" in panel.status.value
    panel.autoscaling.value = '{"maximum_instance_count": 3, "scale_in_threshold": 90}'
    panel.button.click()
    assert "autoscaling.scale_in_threshold" in panel.status.value and "flap" in panel.status.value


def test_the_metrics_view_plots_each_model(bundled):
    from aqua_lab.domain import DeploymentMetrics, MetricPoint, ModelMetrics
    from aqua_lab.widgets.metrics import render, sparkline

    series = [MetricPoint(time=t, requests=t % 3, ttft_p95_ms=None if t == 1 else 40.0 + t) for t in range(6)]
    metrics = DeploymentMetrics(
        deployment_id="d",
        platform="local",
        window_s=300,
        source="the deployment's router",
        models=[
            ModelMetrics(
                model_name="smol-a", requests=7, errors=1, ttft_p50_ms=41, ttft_p95_ms=88, replicas=2, series=series
            ),
            ModelMetrics(model_name="smol-b", requests=0, errors=0, replicas=1),
        ],
    )
    html = render(metrics)
    assert "smol-a" in html and "88 ms" in html and html.count("<svg") == 3  # smol-b has no series yet
    assert 'aria-label="max 45"' in sparkline([p.ttft_p95_ms for p in series], "#000")
    panel = DeploymentsPanel(bundled)
    assert panel.show_metrics() is None
    assert "Pick a deployment first" in panel.metrics_box.children[0].value


# --------------------------------------------------------------------------------------------------
# a newcomer's clicks: copies of one model, registering a model file


def test_a_model_is_picked_twice_by_its_copies_box_with_its_served_names(local):
    app = AquaLabWidget(local)
    app.picker.choices.value = (SMOLLM2_ID,)  # one click in the list
    assert app.picker.selected == [SMOLLM2_ID]
    (row,) = app.picker.copies.children
    row.children[0].value = 2  # the copies box
    assert app.picker.selected == [SMOLLM2_ID, SMOLLM2_ID]
    assert "served as SmolLM2-135M-Instruct, SmolLM2-135M-Instruct-2" in row.children[1].value
    shape = local.shapes()[0]
    app.split.override_shape.value = shape.name
    assert len(app.split.overrides.children) == 2
    names = [m.model_name for m in app.split.spec("two").models]
    assert names == [None, "SmolLM2-135M-Instruct-2"]
    app.picker.add_copy(SMOLLM2_ID)
    assert app.picker.selected.count(SMOLLM2_ID) == 3


def test_the_register_box_adds_a_gguf_and_a_lora_and_forgets_them(local, tmp_path):
    from aqua_lab.platforms.local.models import smollm2_path
    from tests.helpers.lora import write_lora_gguf

    picker = ModelPicker(local)
    box = picker.register
    assert box in picker.children
    box.submit()
    assert "Path: give the file" in box.result.value
    box.path.value = str(tmp_path / "missing.gguf")
    box.submit()
    assert "missing.gguf" in box.result.value and "aqua-lab" not in box.result.value
    box.path.value, box.model_name.value = str(smollm2_path()), "my-smol"
    base = box.submit()
    assert base is not None and "registered" in box.result.value
    assert base.id in [v for _, v in picker.choices.options]
    box.path.value, box.base.value = str(write_lora_gguf(tmp_path / "w.gguf")), base.id
    adapter = box.submit()
    assert adapter is not None and adapter.fine_tuned_from == base.id
    box.forget.value = base.id
    box.remove()
    assert "base of the adapters" in box.result.value
    box.forget.value = adapter.id
    box.remove()
    box.forget.value = base.id
    box.remove()
    assert "unregistered" in box.result.value
    assert base.id not in [v for _, v in picker.choices.options]
    assert SMOLLM2_ID not in [v for _, v in box.forget.options]  # the packaged model is not offered for removal


def test_platforms_that_cannot_register_offer_no_register_box(bundled):
    assert ModelPicker(bundled).register not in ModelPicker(bundled).children


def test_a_cpu_machine_is_told_in_cores_and_ram_and_widgets_give_no_cli_hints(local, bundled):
    shape = local.shapes()[0]
    if not shape.is_cpu:
        pytest.skip("this machine has GPUs")
    split = GpuSplit(local)
    split.refresh([SMOLLM2_ID])
    seen = re.sub(r"<[^>]+>", " ", split.table.value)  # the text a user reads, not the markup
    assert "cores used" in seen and "RAM" in seen and "GPU" not in seen, seen
    split.override_shape.value = shape.name
    assert f"valid: {shape.gpu_count} cores of {shape.name}" in split.validation.value
    split.overrides.children[0].value = 1
    assert "valid: 1 core of" in split.validation.value
    too_many = local.plan([SMOLLM2_ID] * (shape.gpu_count + 1))
    assert "core" in split._render(too_many) or "core" in too_many.incompatible_shapes[shape.name][0]
    assert "GPU" not in " ".join(too_many.incompatible_shapes[shape.name]) + (too_many.error_message or "")

    picker = ModelPicker(bundled)
    split = GpuSplit(bundled, picker)
    picker.pick("google/gemma-2b")
    split.override_shape.value = "VM.GPU.A10.2"
    panel = DeployPanel(bundled, split)
    panel.button.click()
    panel.wait(10)
    assert "only plans" in panel.status.value
    assert "--platform" not in panel.status.value and "aqua-lab" not in panel.status.value


@pytest.mark.oci
def test_one_app_switches_platform_in_place_keeping_the_picks_the_other_knows(tmp_path, monkeypatch):
    from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config
    from aqua_lab.service import PlatformSettings

    monkeypatch.setenv("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
    emulator = Emulator(polls_to_active=1).start()
    try:
        seed_from_bundled(emulator, "ocid1.compartment.oc1..svc")
        settings = PlatformSettings(
            data_dir=str(tmp_path / "data"),
            oci_config_file=str(write_api_key_config(emulator, tmp_path)),
            compartment_id="ocid1.compartment.oc1..mine",
            project_id="ocid1.datascienceproject.oc1..p",
            service_compartment_id="ocid1.compartment.oc1..svc",
            oci_endpoint=emulator.url,
        )
        app = AquaLabWidget("bundled", settings=settings)
        assert "Plan only" in app.about.value and "Switch to local or oci to deploy" in app.about.value
        app.picker.pick("google/gemma-2b", "microsoft/phi-2", primary="microsoft/phi-2")
        app.platform_choice.value = "oci"  # the user's click
        assert app.service.platform_name == "oci" and "OCI Data Science" in app.about.value
        names = {m.id: m.name for m in app.picker.models}
        picked = [names[i] for i in app.picker.selected]
        assert len(picked) == 2 and "gemma" in picked[0] and "phi-2" in picked[1], picked
        assert app.picker.primary == app.picker.selected[1]
        assert app.split.plan is not None and app.split.plan.gpu_allocation  # planned again on OCI's shapes
        app.platform_choice.value = "local"
        assert app.service.platform_name == "local" and "This machine" in app.about.value
        assert app.picker.selected == [] and "no longer picked" in app.about.value
        assert app.tabs.children[0].children[0] is app.picker  # the tabs show the new panels
    finally:
        emulator.stop()


def test_a_platform_that_cannot_start_leaves_the_app_where_it_was(bundled, monkeypatch, tmp_path):
    monkeypatch.setenv("OCI_CONFIG_LOCATION", str(tmp_path / "no-config"))
    monkeypatch.delenv("OCI_RESOURCE_PRINCIPAL_VERSION", raising=False)
    app = AquaLabWidget(bundled)
    app.picker.pick("google/gemma-2b")
    app.platform_choice.value = "oci"
    assert app.platform_choice.value == "bundled" and app.service is bundled
    assert "oci is not available here" in app.about.value and app.picker.selected == ["google/gemma-2b"]


# --------------------------------------------------------------------------------------------------
# polish seen in screenshots (against the in-memory platform: no servers)


@pytest.fixture
def memory():
    from tests.helpers.memory_platform import MemoryPlatform

    return AquaLabService(MemoryPlatform(polls_to_active=1))


def _spec(name="m"):
    from aqua_lab.domain import DeploymentSpec

    return DeploymentSpec(
        models=[{"model_id": "m-a", "gpu_count": 1}], instance_shape="VM.GPU.A10.2", display_name=name
    )


def test_the_primary_box_reads_no_primary_and_the_deployment_box_is_never_empty(memory):
    picker = ModelPicker(memory)
    assert picker.primary_choice.label == "no primary" and picker.primary is None
    picker.pick("m-a", "m-b", primary="m-b")
    assert picker.primary == "m-b"
    picker.primary_choice.value = ""
    assert picker.primary is None and picker.primary_choice.label == "no primary"

    deployment = memory.wait(memory.create_deployment(_spec("only one")).id, timeout=5, interval=0)
    app = AquaLabWidget(memory)
    assert app.deployments.choice.value == deployment.id  # one deployment: it is chosen already
    assert isinstance(app.open_chat(app.deployments.choice.value), ChatPanel)


def test_override_labels_are_whole_and_line_up_and_reasons_are_grouped(bundled):
    split = GpuSplit(bundled)
    split.refresh(["meta-llama/Meta-Llama-3.1-8B-Instruct", "google/gemma-2b"])
    split.override_shape.value = next(iter(split.plan.gpu_allocation))
    labels = [c.description for c in split.overrides.children]
    assert "meta-llama/Meta-Llama-3.1-8B-Instruct" in labels or "Meta-Llama-3.1-8B-Instruct" in labels
    assert len({c.style.description_width for c in split.overrides.children}) == 1
    reasons = split.plan.incompatible_shapes
    lines = split.reasons.value.count('class="aqua-reason"')
    distinct = {r for rs in reasons.values() for r in rs}
    assert lines == len(distinct) < sum(len(rs) for rs in reasons.values())  # one line per reason
    for reason in distinct:
        assert split.reasons.value.count(re.sub("&", "&amp;", reason).replace("'", "&#x27;")) == 1


def test_a_failed_answer_leaves_no_empty_turn_and_a_deleted_deployment_is_not_offered(memory):
    deployment = memory.wait(memory.create_deployment(_spec()).id, timeout=5, interval=0)
    app = AquaLabWidget(memory)
    chat = app.open_chat(deployment.id)
    chat.ask("Hello?")  # the endpoint refuses connections: the answer fails
    chat.wait(30)
    assert chat.status.value and "aqua-error" in chat.status.value
    assert chat.histories[chat.model.value] == []  # nothing to send back with the next message
    assert chat.prompt.value == "Hello?"  # ready to retry
    memory.delete(deployment.id)  # as a later cell would
    chat.ask("again")
    assert "was deleted" in chat.status.value and chat.send_button.disabled
    app.tabs.selected_index = 2
    assert "DELETED" in app.deployments.table.value
    app.tabs.selected_index = 3  # back to Chat: the deleted deployment is no longer offered
    assert "was deleted" in app.chat_box.children[0].value
