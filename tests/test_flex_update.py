"""An update of a CPU flex deployment is checked against the size it runs at, not the default size
(found in review: 8 OCPUs / 16 GB per OCPU were assumed, so an update the deployment cannot hold
was accepted, with a warning about a size it does not have)."""

from __future__ import annotations

import json

import pytest

from tests.test_oci_groups import GEMMA, PHI, cli, made_by_cli  # noqa: F401 - fixtures
from tests.test_server import oci_emulator, server_config  # noqa: F401 - fixtures

pytestmark = [pytest.mark.oci, pytest.mark.cli]


def _models(ocpus_each: int) -> str:
    return json.dumps(
        [
            {"model_id": GEMMA, "gpu_count": ocpus_each, "model_name": "g"},
            {"model_id": PHI, "gpu_count": ocpus_each, "model_name": "p"},
        ]
    )


def test_an_update_of_a_flex_deployment_is_checked_against_its_own_ocpus(cli, made_by_cli):  # noqa: F811
    created = cli(
        "deployment", "create", "--instance_shape", "VM.Standard.E4.Flex", "--display_name", "small flex",
        "--models", _models(2), "--ocpus", "4", "--memory_in_gbs", "64",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    deployment = json.loads(created.stdout)
    made_by_cli.append(deployment["id"])
    bigger = cli("deployment", "update", "--model_deployment_id", deployment["id"], "--models", _models(4))
    assert bigger.returncode == 2, bigger.stdout
    assert "8 OCPUs" in bigger.stderr and "4" in bigger.stderr and "ocpus" in bigger.stderr.lower()
    same = cli("deployment", "update", "--model_deployment_id", deployment["id"], "--models", _models(2))
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["shape_info"]["ocpus"] == 4.0
