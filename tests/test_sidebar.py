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

from aqua_lab.domain import DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService
from tests.helpers.lab import BUILD, isolated_env, start_lab

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
UI = ROOT / "ui-tests"
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "sidebar-test-token"
PROJECT_OCID = "ocid1.datascienceproject.oc1..aqua"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A function that starts JupyterLab under a base URL and returns its URL with the token."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium (./test.sh does)"
    assert (UI / "node_modules" / "playwright-core").exists(), "run `npm install` in ui-tests/ (./test.sh does)"
    assert (BUILD / "package.json").exists(), "the sidebar is not built: run scripts/labextension.sh (./test.sh does)"
    for name, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    started = []

    def start(base_url: str = "/", extra: tuple[str, ...] = ()) -> str:
        proc, url = start_lab(tmp_path, TOKEN, base_url, extra)
        started.append(proc)
        return url

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(20)
    platform = LocalPlatform(data_dir=tmp_path / "data")
    for d in platform.list_deployments():  # a failed run's deployment must not outlive the test
        platform.delete(d.id)


def drive(url: str, *flags: str, timeout: int = 300, script: str = "sidebar.mjs") -> dict:
    SHOTS.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node")
    assert node, "node is needed for the browser test"
    result = subprocess.run(
        [node, str(UI / script), url, str(SHOTS), *flags],
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
    # two re-plans of the same shape: the first copy's typed name stayed in its row, the second kept its own
    assert deploy["copiesKept"] == ["smol-a", "SmolLM2-135M-Instruct-2"]
    assert len(deploy["modelStates"]) == 2 and all("ACTIVE" in s for s in deploy["modelStates"])
    assert deploy["cardName"] == "ui <b>sidebar</b>" and deploy["cardBoldTags"] == 0
    # the model picked in the Logs dialog gets its own server's log (llama.cpp's load line), not the runtime's
    picked = deploy["logPicked"]
    assert picked == deploy["columns"][0]
    assert f"=== starting {picked} on port" in deploy["modelLog"], deploy["modelLog"]
    assert "load_model: loading model" in deploy["modelLog"], deploy["modelLog"]
    assert deploy["deactivated"] and deploy["reactivated"]
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


@pytest.mark.local
@pytest.mark.slow
@pytest.mark.evaluation
def test_sidebar_evaluates_a_local_deployment_and_compares_its_models(lab, tmp_path):
    url = lab("/lab-prefix/")
    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))  # the data dir JupyterLab uses
    names = ["smollm2-a", "smollm2-b"]
    deployment = None
    try:
        spec = DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n} for n in names],
            instance_shape=service.shapes()[0].name,
            display_name="sidebar evaluation",
        )
        deployment = service.wait(service.create_deployment(spec).id, timeout=180)
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        found = drive(url, script="evaluations.mjs", timeout=600)
    finally:
        for e in service.list_evaluations():
            service.delete_evaluation(e.id)
        if deployment is not None:
            service.delete(deployment.id)
    assert found["consoleErrors"] == []
    assert found["formModels"] == [{"model": n, "checked": True} for n in names]
    assert "No evaluations yet" in found["emptyList"]
    # bad datasets: refused in place, naming the field, the line and the fix
    assert found["pathError"].startswith("dataset_path: no file '/no/such/dataset.jsonl'")
    assert "bad.jsonl line 2: not JSON" in found["uploadError"] and "line 3: prompt: missing" in found["uploadError"]
    assert "mine.jsonl: 2 rows" in found["uploadOk"] and "math 1" in found["uploadOk"]
    assert "check at least one model" in found["noModelError"]
    # progress per model while it ran, then every row answered
    assert found["state"] == "SUCCEEDED", found["details"]
    assert set(found["progressSeen"]) == set(names)
    for model, seen in found["progressSeen"].items():
        assert "36/36" in seen, (model, seen)
        assert len(seen) >= 2, f"no progress seen for {model} before the end: {seen}"
    assert all(" / 36" in text for text in found["progressText"])
    # the comparison: one row per model with its numbers, one chart per score
    table = found["table"]
    assert [r["model"] for r in table["rows"]] == names
    assert {r["name"] for r in table["rows"]} == set(names)
    headers = table["headers"]
    assert headers[:5] == ["model", "rouge1", "rouge2", "rougeL", "rougeLsum"] and "BLEU" in headers[5]
    assert headers[6:] == ["latency p50 (ms)", "tokens/s"]
    for row in table["rows"]:
        cells = dict(zip(headers[1:], row["cells"], strict=True))
        assert all(0 <= float(cells[k]) <= 1 for k in headers[1:5]), row  # ROUGE F-measures
        assert 0 <= float(cells[headers[5]]) <= 100 and float(cells["latency p50 (ms)"]) > 0, row
    assert len(found["charts"]) == len(table["headers"]) - 1 and all(c["bars"] == 2 for c in found["charts"])
    assert "sidebar <b>eval</b>" in found["listItem"] and found["boldTags"] == 0  # a name is text, never HTML
    # the reports: the comparison page in a sandboxed tab, and the plain link for a new browser tab
    assert found["reportSandbox"] == "" and all(n in found["reportText"] for n in names)
    link = found["reportLink"]
    assert link["status"] == 200 and link["type"].startswith("text/html") and link["csp"].startswith("sandbox")
    assert "/lab-prefix/aqua/evaluations/" in link["href"] and "format=html" in link["href"]
    assert found["restored"]
    assert found["canceled"] == "CANCELED"
    assert found["deleted"] == [True, True] and "report files" in found["dialog"]
    assert "No evaluations yet" in found["finalList"]
    for name in ("evaluations-comparison.png", "evaluations-comparison-dark.png", "evaluations-progress.png"):
        assert (SHOTS / name).stat().st_size > 5000


@pytest.mark.oci
@pytest.mark.evaluation
def test_sidebar_evaluates_an_oci_deployment_and_compares_its_models(lab, tmp_path, monkeypatch):
    """JupyterLab whose platform is OCI (the emulator; its job runs score for real) with a two-model
    deployment ACTIVE: the OCI form, a local report folder refused in place, each model's job-run
    state while it runs, the comparison once both SUCCEEDED, the reports opened."""
    monkeypatch.setenv("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # JupyterLab's SDK too: no retries, no breaker
    monkeypatch.setenv("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")
    from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config
    from aqua_lab.platforms.oci import OciPlatform, Settings, resolve_auth

    home, service_compartment, project = "ocid1.compartment.oc1..home", "ocid1.compartment.oc1..svc", PROJECT_OCID
    bucket, namespace = "evals", "emunamespace"
    mistral, falcon = "mistralai/Mistral-7B-v0.1", "tiiuae/falcon-7b"
    rows = [
        {"prompt": "name a prime number", "completion": "seven is a prime number", "category": "math"},
        {"prompt": "what colour is the sky?", "completion": "the sky is blue on a clear day", "category": "general"},
        {"prompt": "what is rouge?", "completion": "rouge measures overlap", "category": "ml"},
    ]
    emulator = Emulator(polls_to_active=1).start()
    service = deployment = None
    try:
        ids = seed_from_bundled(emulator, service_compartment)
        emulator.put_object(bucket, "data/qa.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
        config_file = write_api_key_config(emulator, tmp_path / "oci")
        settings = Settings(
            compartment_id=home,
            project_id=project,
            service_compartment_id=service_compartment,
            endpoint=emulator.url,
            retry_base_s=0.01,
        )
        service = AquaLabService(OciPlatform(resolve_auth(config_file=config_file), settings))
        spec = DeploymentSpec(
            models=[{"model_id": ids[mistral], "gpu_count": 1}, {"model_id": ids[falcon], "gpu_count": 1}],
            instance_shape="VM.GPU.A10.2",
            display_name="sidebar oci evaluation",
            compartment_id=home,
        )
        deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
        assert deployment.state == "ACTIVE"
        emulator.job_start_delay_s, emulator.job_row_delay_s = 0.5, 1.0  # each job runs a few polls long
        url = lab(
            "/",
            extra=(
                "--AquaLab.platform=oci",
                f"--AquaLab.oci_config_file={config_file}",
                f"--AquaLab.compartment_id={home}",
                f"--AquaLab.project_id={project}",
                f"--AquaLab.service_compartment_id={service_compartment}",
                f"--AquaLab.oci_endpoint={emulator.url}",
            ),
        )
        report_path = f"oci://{bucket}@{namespace}/sidebar/"
        found = drive(url, report_path, f"oci://{bucket}@{namespace}/data/qa.jsonl", script="evaluations-oci.mjs")
        evaluation = service.get_evaluation(found["evaluationId"]) if found.get("evaluationId") else None
    finally:
        if service is not None:
            for e in service.list_evaluations():
                service.delete_evaluation(e.id)
            if deployment is not None:
                service.delete(deployment.id)
        for run in emulator.state.job_runs.values():  # no job thread outlives the test
            if "_cancel" in run:
                run["_cancel"].set()
        for thread in emulator.job_threads.values():
            thread.join(10)
        emulator.stop()
    assert found["consoleErrors"] == []
    assert found["title"].strip() == "Evaluations (oci)"
    assert found["formModels"] == [{"model": mistral, "checked": True}, {"model": falcon, "checked": True}]
    # the OCI form: ADS's job defaults, the bucket asked for (never made up), what the dataset field takes
    assert found["shape"] == "VM.Standard.E4.Flex" and "VM.Standard.E3.Flex" in found["shapes"]
    assert found["storage"] == "50" and found["experimentField"] == 1
    assert found["reportValue"] == "" and found["reportPlaceholder"] == "oci://<bucket>@<namespace>/<prefix>/"
    assert found["datasetPlaceholder"].startswith("oci://") and "uploaded next to the reports" in found["datasetNote"]
    assert found["reportError"].startswith("report_path: '/tmp/reports' is not an Object Storage path")
    assert "oci://<bucket>@<namespace>/<path>" in found["reportError"]
    # progress: each model's job-run state, an indeterminate bar while it runs, never a count or a percentage
    assert found["state"] == "SUCCEEDED", found["details"]
    progress = found["progress"]
    assert set(progress["seen"]) == {mistral, falcon}
    for model, states in progress["seen"].items():
        assert "IN_PROGRESS" in states and states[-1] == "SUCCEEDED", (model, states)
    assert progress["indeterminate"] > 0 and progress["counts"] == 0
    assert [(r["state"], r["bars"]) for r in found["finalRows"]] == [("SUCCEEDED", 0), ("SUCCEEDED", 0)]
    assert "experiment sidebar experiments" in found["ociMeta"] and "job run" in found["ociMeta"]
    # the comparison once both members SUCCEEDED: one row per model, one chart per score
    table = found["table"]
    assert [r["model"] for r in table["rows"]] == [mistral, falcon]
    headers = table["headers"]
    assert headers[:5] == ["model", "rouge1", "rouge2", "rougeL", "rougeLsum"] and "BLEU" in headers[5]
    for row in table["rows"]:
        assert all(0 <= float(c) <= 1 for c in row["cells"][:4]), row
    assert len(found["charts"]) == len(table["headers"]) - 1 and set(found["charts"]) == {2}
    assert found["boldTags"] == 0 and "oci <b>eval</b>" in found["listItem"]
    # the reports: the comparison of both, and the second model's own report.html from Object Storage
    assert mistral in found["comparisonText"] and falcon in found["comparisonText"]
    assert falcon in found["modelReportText"] and mistral not in found["modelReportText"]
    # what reached OCI: both members in the named experiment, on the form's job shape
    assert evaluation is not None and [m.model for m in evaluation.models] == [mistral, falcon]
    assert evaluation.experiment.name == "sidebar experiments"
    assert evaluation.shape_info["instance_shape"] == "VM.Standard.E4.Flex" and evaluation.report_path == report_path
    for name in ("progress", "comparison", "comparison-dark"):
        assert (SHOTS / f"evaluations-oci-{name}.png").stat().st_size > 5000
