"""The evaluation fronts on OCI (issue 13 point 6): the form defaults an OCI user needs, per
platform, and the widgets' EvaluationPanel end to end against the emulator, whose job runs score
for real: a bucket asked for (never made up), a dataset checked here and uploaded next to the
reports, the job run's state per model (no made-up percentage), then the comparison."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.service import AquaLabService
from tests.test_evaluation_oci import (  # noqa: F401  (the emulator, its service and two-model deployment)
    BUCKET,
    FALCON,
    MISTRAL,
    NS,
    ROWS,
    config_file,
    deployment,
    emulator,
    jsonl,
    service,
)

pytestmark = [pytest.mark.evaluation, pytest.mark.oci]


def _uploaded(name: str, data: bytes) -> dict:
    """A FileUpload value entry as ipywidgets makes it from the browser's file."""
    now = datetime.now(UTC)
    return {"name": name, "type": "", "size": len(data), "content": memoryview(data), "last_modified": now}


def test_the_evaluation_config_gives_each_platform_its_own_form(service, tmp_path):  # noqa: F811
    oci = service.evaluation_config()
    assert oci.platform == "oci" and oci.progress == "state"
    assert oci.default["shape_name"] == "VM.Standard.E4.Flex" and oci.default["block_storage_size"] == 50
    assert "VM.Standard.E4.Flex" in oci.shape and not [s for s in oci.shape if "GPU" in s]  # the job only calls
    assert oci.fields == [
        "shape_name",
        "block_storage_size",
        "experiment_name",
        "log_group_id",
        "log_id",
        "force_overwrite",
    ]
    assert oci.reports_dir is None and oci.report_path_hint == "oci://<bucket>@<namespace>/<prefix>/"
    assert oci.dataset_hint.startswith("oci://") and "uploaded next to the reports" in oci.dataset_note
    local = AquaLabService(LocalPlatform(data_dir=tmp_path)).evaluation_config()
    assert local.platform == "local" and local.progress == "rows" and local.fields == []
    assert local.reports_dir == str(tmp_path / "evaluation-reports") and local.shape == {}  # beside its state


def test_the_panel_on_oci_asks_for_a_bucket_then_shows_each_models_state_and_the_comparison(
    service,  # noqa: F811
    deployment,  # noqa: F811
    emulator,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from aqua_lab.widgets import EvaluationPanel

    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path))  # where an upload is kept before it goes to the bucket
    panel = EvaluationPanel(service, deployment.id, poll_s=0.05)
    made = []
    try:
        # the fields only OCI takes are there, with ADS's defaults; the report path is the user's bucket
        assert {panel.shape, panel.block_storage, panel.experiment, panel.log_group, panel.overwrite} <= set(
            panel.children
        )
        assert panel.shape.value == "VM.Standard.E4.Flex" and panel.block_storage.value == 50
        assert panel.report_path.value == "" and panel.report_path.placeholder.startswith("oci://<bucket>")
        assert panel.dataset.placeholder.startswith("oci://")
        assert list(panel.model.options)[1:] == [MISTRAL, FALCON]
        panel.metrics["bertscore"].value = False  # rouge and bleu: quick to score
        panel.params.value = '{"max_tokens": 8}'

        # a folder here is no report path on OCI: refused under that field, naming the oci:// form
        panel.report_path.value = str(tmp_path / "reports")
        panel.evaluate()
        assert "is not an Object Storage path" in panel.errors["report_path"].value
        assert "oci://&lt;bucket&gt;@&lt;namespace&gt;" in panel.errors["report_path"].value
        assert panel.evaluation is None and "not started" in panel.status.value

        # an uploaded dataset is checked here, every bad line named under the dataset field
        panel.upload.value = (_uploaded("bad.jsonl", b'{"prompt": "a", "completion": "b"}\nnot json\n'),)
        assert "bad.jsonl line 2: not JSON" in panel.errors["dataset_path"].value
        panel.upload.value = (_uploaded("rows.jsonl", jsonl(ROWS)),)
        assert panel.errors["dataset_path"].value == "" and "checked rows.jsonl (4 rows)" in panel.status.value
        assert panel.dataset.value.startswith(str(tmp_path)) and panel.dataset.value.endswith(".jsonl")

        panel.report_path.value = f"oci://{BUCKET}@{NS}/widget/"
        panel.experiment.value = "widget experiments"
        panel.block_storage.value = 60
        # rows slow until the panel has shown each model running, then at full speed (a loaded machine
        # polls late: a fixed short delay raced the poll)
        emulator.job_start_delay_s, emulator.job_row_delay_s = 0.2, 1.0
        try:
            panel.evaluate()
            assert panel.evaluation is not None, panel.status.value
            made.append(panel.evaluation.id)
            assert set(panel.chips) == {MISTRAL, FALCON} and panel.bars == {}
            seen: dict[str, set[str]] = {MISTRAL: set(), FALCON: set()}
            running_chip = ""
            while panel.worker.is_alive():
                for model, chip in panel.chips.items():
                    state = chip.value.split('data-state="', 1)[1].split('"', 1)[0]
                    seen[model].add(state)
                    if state == "IN_PROGRESS":
                        running_chip = chip.value
                if all("IN_PROGRESS" in states for states in seen.values()):
                    emulator.job_row_delay_s = 0.0
                time.sleep(0.02)
            panel.worker.join(120)
        finally:
            emulator.job_start_delay_s, emulator.job_row_delay_s = 0.0, 0.0
        assert "SUCCEEDED" in panel.status.value, panel.status.value
        for model, states in seen.items():
            assert "IN_PROGRESS" in states, (model, states)
        # running: an indeterminate bar (a <progress> without a value) and the state, never a percentage
        assert "<progress" in running_chip and "value=" not in running_chip and "%" not in running_chip
        for chip in panel.chips.values():
            assert 'data-state="SUCCEEDED"' in chip.value and "<progress" not in chip.value

        # the comparison of both members, the charts, where the reports are, the report in the panel
        table, charts, link, show, view = panel.result.children
        assert MISTRAL in table.value and FALCON in table.value and "rougeL" in table.value
        assert charts.value.count("<svg") >= 4
        assert link.value.count(f"oci://{BUCKET}@{NS}/widget/ocid1.datasciencemodel.") == 2
        show.value = True
        assert "<iframe" in view.value and MISTRAL in view.value and FALCON in view.value

        # what reached OCI: the dataset next to the reports, the experiment, shape and storage of the jobs
        assert (NS, BUCKET, "widget/" + panel.dataset.value.rsplit("/", 1)[1]) in emulator.state.objects
        e = service.get_evaluation(made[0])
        assert e.experiment.name == "widget experiments" and e.shape_info["instance_shape"] == "VM.Standard.E4.Flex"
        assert e.dataset_path.startswith(f"oci://{BUCKET}@{NS}/widget/")
        for m in e.models:
            job = emulator.state.jobs[service.get_evaluation(m.evaluation_id).job_id]
            assert job["jobInfrastructureConfigurationDetails"]["blockStorageSizeInGBs"] == 60

        # the same dataset file again: refused under the dataset field unless told to replace it
        panel.evaluate()
        assert "already exists" in panel.errors["dataset_path"].value and panel.evaluation.id == made[0]
    finally:
        for evaluation_id in made:
            service.delete_evaluation(evaluation_id)
