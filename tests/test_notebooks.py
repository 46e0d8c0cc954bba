"""The example notebooks run top to bottom: the local ones against real model servers, the OCI one
against the emulator (its kernel gets the same variables a user would export)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


@pytest.fixture
def local_data(tmp_path, monkeypatch):
    """The kernel's local deployments live here; whatever a failing notebook left running is removed."""
    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path))  # the kernel inherits it
    yield tmp_path
    from aqua_lab.platforms.local import LocalPlatform

    platform = LocalPlatform(data_dir=tmp_path)
    for deployment in platform.list_deployments():
        platform.delete(deployment.id)


def run(name: str, cwd: Path) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    return "\n".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in outputs)


@pytest.mark.widgets
@pytest.mark.local
def test_quickstart_local_runs_top_to_bottom(local_data):
    text = run("quickstart_local.ipynb", local_data)
    assert "ACTIVE http://127.0.0.1" in text
    assert "first token" in text
    assert "'DELETED'" in text


@pytest.mark.widgets
@pytest.mark.local
def test_stacked_lora_runs_top_to_bottom(local_data):
    text = run("stacked_lora.ipynb", local_data)
    assert "['base', 'sql-lora-1', 'sql-lora-2']" in text
    assert "'DELETED'" in text


@pytest.mark.widgets
@pytest.mark.local
@pytest.mark.arena
def test_choose_a_model_runs_top_to_bottom_and_leaves_nothing_behind(local_data):
    """Blind votes, a saved row, a pairwise-judge evaluation on the 3-row dataset, the leaderboard, clean-up."""
    text = run("choose_a_model.ipynb", local_data)
    assert text.count("A was smol-") == 2 and "your vote: tie" in text
    assert "has 1 row —" in text and "3 rows {'basics': 2, 'geography': 1}" in text
    assert "SUCCEEDED [('smol-a', 3), ('smol-b', 3)]" in text
    assert "judge smol-a: " in text and "(2 a row)" in text
    # the two votes and one verdict a row (3 rows, one pair, both orders folded into one): the
    # judge answers under a grammar, so every verdict parses
    assert "5 comparisons from both" in text
    assert "'DELETED'" in text
    from aqua_lab.platforms.local import LocalPlatform

    assert LocalPlatform(data_dir=local_data).list_deployments() == []
    assert not list((local_data / "datasets").glob("*.jsonl"))


@pytest.mark.widgets
@pytest.mark.oci
def test_multimodel_oci_runs_top_to_bottom_against_the_emulator(tmp_path, monkeypatch):
    from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config

    emulator = Emulator(polls_to_active=2).start()
    try:
        seed_from_bundled(emulator, "ocid1.compartment.oc1..svc")
        config = write_api_key_config(emulator, tmp_path / "oci")
        for key, value in {
            "OCI_CONFIG_LOCATION": str(config),
            "AQUA_LAB_OCI_ENDPOINT": emulator.url,
            "AQUA_LAB_COMPARTMENT_OCID": "ocid1.compartment.oc1..mine",
            "AQUA_LAB_SERVICE_COMPARTMENT_OCID": "ocid1.compartment.oc1..svc",
            "AQUA_LAB_PROJECT_OCID": "ocid1.datascienceproject.oc1..p",
            "OCI_SDK_DEFAULT_RETRY_ENABLED": "false",
        }.items():
            monkeypatch.setenv(key, value)
        text = run("multimodel_oci.ipynb", tmp_path)
    finally:
        emulator.stop()
    assert "api_key in us-ashburn-1" in text
    assert "microsoft/phi-2: microsoft/phi-2 answers: Who wrote the book Harry Potter?" in text
    assert "google/gemma-2b answers: what are activation functions?" in text
    # one evaluation per model, run by the emulator's job runs, compared side by side, then deleted
    assert "SUCCEEDED [('google/gemma-2b', 'SUCCEEDED'), ('microsoft/phi-2', 'SUCCEEDED')]" in text
    assert "rougeL google/gemma-2b: " in text.replace("    ", " ") and "microsoft/phi-2: " in text
    assert "('DELETED', 'DELETING')" in text
    assert len(emulator.state.jobs) == 2


@pytest.mark.widgets
@pytest.mark.local
def test_quickstart_runs_while_the_run_sh_demo_holds_the_cores(local_data):
    """./run.sh starts its demo first: the notebook pauses it for its own deployment, then brings it back."""
    import os

    from tests.helpers.cli import run_cli

    demo = run_cli("demo", env={**os.environ, "AQUA_LAB_SHARE_CORES": "0"}, timeout=180)
    assert demo.returncode == 0, demo.stderr
    text = run("quickstart_local.ipynb", local_data)
    assert "pausing 'aqua_lab demo' to free cores" in text and "INACTIVE" in text
    assert "ACTIVE http://127.0.0.1" in text and "'DELETED'" in text
    from aqua_lab.platforms.local import LocalPlatform

    (back,) = LocalPlatform(data_dir=local_data).list_deployments()
    assert back.display_name == "aqua_lab demo" and back.state in ("CREATING", "ACTIVE")


@pytest.mark.widgets
@pytest.mark.local
def test_quickstart_pauses_whatever_deployment_holds_the_cores_and_restores_it(local_data):
    """Not only ./run.sh's demo: a deployment of the user's, by any name, holding every core."""
    from aqua_lab.domain import DeploymentSpec
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.platforms.local.models import SMOLLM2_ID
    from aqua_lab.service import AquaLabService

    platform = LocalPlatform(data_dir=local_data, share=False)
    mine = AquaLabService(platform).create_deployment(
        DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": platform.shape.gpu_count, "model_name": "mine"}],
            instance_shape=platform.shape.name,
            display_name="my chatbot",
        )
    )
    text = run("quickstart_local.ipynb", local_data)
    assert "pausing 'my chatbot' to free cores" in text and "INACTIVE" in text
    assert "ACTIVE http://127.0.0.1" in text and "'DELETED'" in text
    (back,) = platform.list_deployments()
    assert back.id == mine.id and back.state in ("CREATING", "ACTIVE")


@pytest.mark.widgets
@pytest.mark.local
def test_quickstart_leaves_an_inactive_demo_as_it_is(local_data):
    import os

    from aqua_lab.platforms.local import LocalPlatform
    from tests.helpers.cli import run_cli

    demo = run_cli("demo", env={**os.environ, "AQUA_LAB_SHARE_CORES": "0"}, timeout=180)
    assert demo.returncode == 0, demo.stderr
    platform = LocalPlatform(data_dir=local_data)
    (made,) = platform.list_deployments()
    platform.deactivate(made.id)
    text = run("quickstart_local.ipynb", local_data)
    assert "pausing" not in text and "ACTIVE http://127.0.0.1" in text and "'DELETED'" in text
    (still,) = platform.list_deployments()
    assert still.display_name == "aqua_lab demo" and still.state == "INACTIVE"
