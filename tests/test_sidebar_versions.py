"""The sidebar's fronts for issue 26 items 7-9 in a browser, on a JupyterLab whose platform is the OCI
emulator: an updated deployment's Versions, a confirmed rollback showing its LIVE update and why, a
stale offer refused beside its button; the deploy form's HETEROGENEOUS type with the container's fields
and the server's refusal under the image field.  Screenshots in both themes go to build/screenshots."""

from __future__ import annotations

import pytest

from aqua_lab.domain import DeploymentSpec
from tests.test_sidebar import PROJECT_OCID, SHOTS, drive, lab  # noqa: F401 - lab is a fixture

GEMMA, PHI, FALCON = "google/gemma-2b", "microsoft/phi-2", "tiiuae/falcon-7b"


def _members(ids: dict[str, str], *names: str) -> list[dict]:
    return [{"model_id": ids[name], "gpu_count": 1} for name in names]


@pytest.mark.oci
@pytest.mark.browser
def test_sidebar_rolls_back_an_updated_deployment_and_offers_a_byoc_group(lab, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # JupyterLab's SDK too: no retries, no breaker
    monkeypatch.setenv("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")
    from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config
    from aqua_lab.platforms.oci import OciPlatform, Settings, resolve_auth
    from aqua_lab.service import AquaLabService

    home, service_compartment = "ocid1.compartment.oc1..home", "ocid1.compartment.oc1..svc"
    emulator = Emulator(polls_to_active=1).start()
    service = deployment = None
    try:
        ids = seed_from_bundled(emulator, service_compartment)
        config_file = write_api_key_config(emulator, tmp_path / "oci")
        where = {"compartment_id": home, "project_id": PROJECT_OCID, "service_compartment_id": service_compartment}
        settings = Settings(**where, endpoint=emulator.url, retry_base_s=0.01)
        service = AquaLabService(OciPlatform(resolve_auth(config_file=config_file), settings))
        pair = {"instance_shape": "VM.GPU.A10.2", "display_name": "versioned", "compartment_id": home}
        spec = DeploymentSpec(models=_members(ids, GEMMA, PHI), **pair)
        deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
        falcon = DeploymentSpec(models=_members(ids, GEMMA, FALCON), **pair)  # v2 of the group
        service.update_deployment(deployment.id, falcon)
        service.wait(deployment.id, timeout=10, interval=0.01)
        # JupyterLab's platform is the emulator, as a user's would be OCI
        lab_flags = {"platform": "oci", "oci_config_file": config_file, **where, "oci_endpoint": emulator.url}
        url = lab("/", extra=tuple(f"--AquaLab.{name}={value}" for name, value in lab_flags.items()))
        found = drive(url, "versioned", ids[GEMMA], ids[PHI], script="sidebar-versions.mjs", timeout=400)
        live = [v.version for v in service.deployment_versions(deployment.id) if v.live]
    finally:
        if service is not None:
            for d in service.list_deployments():
                service.delete(d.id)
        emulator.stop()
    assert "error" not in found, found.get("error")
    assert found["consoleErrors"] == []
    assert found["platform"] == "oci"
    # the history, newest first: the update made v2 and it runs; only v1 is offered
    assert found["before"] == [{"version": "2", "live": "true"}, {"version": "1", "live": "false"}]
    assert found["offered"] == ["Roll back to version 1"]
    assert "Roll back to version 1?" in found["confirm"]
    assert "Rolled back to version 1: LIVE update" in found["answer"]
    assert "rollback changes only the model group" in found["answer"]
    assert found["after"] == [{"version": "2", "live": "false"}, {"version": "1", "live": "true"}]
    # another front moved it to v2: the stale offer is refused where its button was, the table read again
    assert found["otherFront"] == 200
    assert "is live already" in found["refused"]
    assert found["refusedRows"] == [{"version": "2", "live": "true"}, {"version": "1", "live": "false"}]
    assert live == [2]
    # the deploy form: HETEROGENEOUS shows the container's fields, the missing image named under its field
    assert found["containerHidden"] is True
    assert found["containerFields"] == [
        "Container image URI",
        "Image digest (sha256:…)",
        "Entrypoint (one argument per line)",
        "Cmd (one argument per line)",
        "Server port",
        "Health check port",
        "Environment (KEY=VALUE per line)",
    ]
    assert found["digestError"].startswith("image_digest: ") and "sha256" in found["digestError"]
    # a re-plan redrew the form: the typed digest was kept and refused again, not silently dropped
    assert found["digestKept"] == "sha256:zz"
    assert found["servedKept"] == "my-first"  # a served name typed on the same shape stays too
    assert found["digestErrorKept"] == found["digestError"]
    assert "container_image_uri: a HETEROGENEOUS deployment runs your own container" in found["imageError"]
    if found["refusedBy"] == "create":  # a create refused names the field too, nothing left unplaced
        assert "fix the fields marked above" in found["progress"]
    assert found["imageInvalid"] == "true" and found["fixed"] == "" and found["fixedInvalid"] is None
    # a CPU flex shape is planned once sized, and its form asks the OCPUs, the too-few refused under them
    assert found["flexBefore"] == 0
    assert found["flexFields"] == [["OCPUs", "8"], ["Memory (GB)", "128"]]
    assert found["ocpuError"].startswith("ocpus: ") and "but 2 are asked" in found["ocpuError"]
    for name in ("versions-history", "deploy-byoc", "deploy-flex"):
        for suffix in ("", "-dark"):
            assert (SHOTS / f"{name}{suffix}.png").stat().st_size > 3000
    assert (SHOTS / "versions-rolled-back.png").stat().st_size > 3000
    assert (SHOTS / "versions-refused-dark.png").stat().st_size > 3000
