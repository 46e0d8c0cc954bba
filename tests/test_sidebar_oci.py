"""Choosing the OCI platform from the UI (issue 25 item 7): a server started with no OCI settings at
all is given a config file, profile, region, compartment and project over REST (what the sidebar's
OCI settings form sends), each checked with the SDK against the emulator before it is saved; the
saved choice is owner-only under the Jupyter data dir and the next ?platform=oci request uses it.
The browser half drives the form and the autoscaling policy of the card's Scale form."""

from __future__ import annotations

import json
import os
import stat

import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.service import AquaLabService, PlatformSettings, choice_path, with_oci_choice
from tests.test_server import fetch_json, oci_emulator  # noqa: F401 - fixture
from tests.test_sidebar import SHOTS, drive, lab  # noqa: F401 - lab is a fixture

pytestmark = [pytest.mark.server, pytest.mark.oci]
pytest_plugins = ["pytest_jupyter.jupyter_server"]

COMPARTMENT = "ocid1.compartment.oc1..chosen"
PROJECT = "ocid1.datascienceproject.oc1..chosen"
AUTO = {"minimum_instance_count": 1, "maximum_instance_count": 3, "scale_in_threshold": 20, "scale_out_threshold": 75}


@pytest.fixture
def no_oci_env(tmp_path, monkeypatch):
    """Nothing about OCI reaches the server but what the form sends: no c.AquaLab.oci_*, no variables."""
    for name in list(os.environ):
        if name.startswith(("OCI_CONFIG", "OCI_IAM", "OCI_RESOURCE", "AQUA_LAB_COMPARTMENT", "AQUA_LAB_PROJECT")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("AQUA_LAB_OCI_ENDPOINT", raising=False)
    monkeypatch.delenv("NB_SESSION_COMPARTMENT_OCID", raising=False)
    monkeypatch.setenv("OCI_CONFIG_LOCATION", str(tmp_path / "no-oci-config"))


@pytest.fixture
def jp_server_config(tmp_path, no_oci_env):
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}},
        "AquaLab": {"platform": "local", "data_dir": str(tmp_path / "data")},
    }


async def test_oci_is_chosen_checked_and_saved_from_the_ui(jp_fetch, oci_emulator, tmp_path):  # noqa: F811
    emulator = oci_emulator
    emulator.compartments.add(COMPARTMENT)  # any other compartment is now NotAuthorizedOrNotFound
    config = str(emulator.config_file)
    good = {
        "config_file": config,
        "compartment_id": COMPARTMENT,
        "project_id": PROJECT,
        "service_compartment_id": "ocid1.compartment.oc1..svc",  # where the fixture seeded the models
        "endpoint": emulator.url,
    }
    assert str(choice_path()).startswith(os.environ["JUPYTER_DATA_DIR"])  # the test's, never the user's

    # before: OCI needs settings the server was not started with
    refused = await fetch_json(jp_fetch, "deployments", params={"platform": "oci"}, expect=400)
    assert "no OCI credentials found" in refused["message"]
    assert (await fetch_json(jp_fetch, "platforms", "oci", "settings"))["choice"] == {
        k: None
        for k in (
            "config_file",
            "profile",
            "region",
            "compartment_id",
            "project_id",
            "service_compartment_id",
            "endpoint",
        )
    }

    async def check(**change):
        return await fetch_json(jp_fetch, "platforms", "oci", "check", method="POST", body={**good, **change})

    answer = await check(config_file=str(tmp_path / "missing"))
    assert not answer["ok"] and answer["field"] == "config_file" and "no config file at" in answer["message"]
    answer = await check(profile="NOPE")
    assert answer["field"] == "profile" and "profile [NOPE] is not in" in answer["message"]
    unreadable = tmp_path / "badkey"
    unreadable.write_text(open(config).read().replace("key_file=", f"key_file={tmp_path}/gone.pem#"))
    answer = await check(config_file=str(unreadable))
    assert answer["field"] == "config_file" and "key_file" in answer["message"]
    from aqua_lab.emulator import Emulator, write_api_key_config

    stranger = write_api_key_config(Emulator(), tmp_path / "stranger")  # a key this OCI does not know
    answer = await check(config_file=str(stranger))
    assert answer["field"] == "profile" and "401 NotAuthenticated" in answer["message"]
    answer = await check(compartment_id="ocid1.compartment.oc1..elsewhere")
    assert answer["field"] == "compartment_id" and "404 NotAuthorizedOrNotFound" in answer["message"]
    answer = await check()
    assert answer["ok"] and answer["auth"] == "api_key in us-ashburn-1" and answer["compartment_id"] == COMPARTMENT

    # malformed values are a 422 naming the field, before anything is built or saved
    bad = await fetch_json(
        jp_fetch, "platforms", "oci", "settings", method="PUT", body={**good, "region": "Ashburn"}, expect=422
    )
    assert bad["errors"][0]["field"] == "region" and "us-ashburn-1" in bad["errors"][0]["message"]
    assert not choice_path().exists()

    saved = await fetch_json(jp_fetch, "platforms", "oci", "settings", method="PUT", body=good)
    assert saved["choice"]["compartment_id"] == COMPARTMENT and saved["path"] == str(choice_path())
    assert stat.S_IMODE(choice_path().stat().st_mode) == 0o600
    assert json.loads(choice_path().read_text())["endpoint"] == emulator.url

    # after: the next OCI request uses the choice, no restart
    assert (await fetch_json(jp_fetch, "deployments", params={"platform": "oci"}))["data"] == []
    shapes = await fetch_json(jp_fetch, "shapes", params={"platform": "oci"})
    assert "VM.GPU.A10.2" in [s["name"] for s in shapes["data"]]

    # the autoscaling policy the card's Scale form sends: checked as the CLI's, 409-free on OCI
    service = AquaLabService("oci", with_oci_choice(PlatformSettings()))
    gemma = next(m.id for m in service.models() if m.name.endswith("gemma-2b"))
    spec = DeploymentSpec(
        models=[{"model_id": gemma, "gpu_count": 1}], instance_shape="VM.GPU.A10.2", display_name="ui"
    )
    made = service.wait(service.create_deployment(spec).id, timeout=30)
    try:
        wrong = await fetch_json(
            jp_fetch,
            "deployments",
            made.id,
            "scaling",
            method="PUT",
            body={"autoscaling": {**AUTO, "scale_in_threshold": 80}},
            params={"platform": "oci"},
            expect=422,
        )
        assert wrong["errors"][0]["field"] == "autoscaling.scale_in_threshold"
        scaled = await fetch_json(
            jp_fetch,
            "deployments",
            made.id,
            "scaling",
            method="PUT",
            body={"autoscaling": AUTO},
            params={"platform": "oci"},
        )
        assert scaled["scaling"]["policy"]["policyType"] == "AUTOSCALING"
    finally:
        service.delete(made.id)

    # forgetting the choice removes the file and OCI is unconfigured again
    await fetch_json(jp_fetch, "platforms", "oci", "settings", method="PUT", body={})
    assert not choice_path().exists()
    await fetch_json(jp_fetch, "deployments", params={"platform": "oci"}, expect=400)


@pytest.mark.browser
def test_the_sidebar_form_chooses_oci_and_the_scale_form_sets_autoscaling(lab, no_oci_env, oci_emulator):  # noqa: F811
    emulator = oci_emulator
    emulator.compartments.add(COMPARTMENT)
    url = lab("/")
    settings = PlatformSettings(
        oci_config_file=str(emulator.config_file),
        compartment_id=COMPARTMENT,
        project_id=PROJECT,
        service_compartment_id="ocid1.compartment.oc1..svc",
        oci_endpoint=emulator.url,
    )
    service = AquaLabService("oci", settings)
    gemma = next(m.id for m in service.models() if m.name.endswith("gemma-2b"))
    spec = DeploymentSpec(
        models=[{"model_id": gemma, "gpu_count": 1}], instance_shape="VM.GPU.A10.2", display_name="on oci"
    )
    made = service.wait(service.create_deployment(spec).id, timeout=30)
    try:
        found = drive(
            url,
            str(emulator.config_file),
            COMPARTMENT,
            emulator.url,
            "ocid1.compartment.oc1..svc",
            script="sidebar-oci.mjs",
            timeout=300,
        )
    finally:
        service.delete(made.id)
    assert "failure" not in found, found.get("failure")
    assert found["consoleErrors"] == []
    assert "no OCI credentials found" in found["unconfigured"]
    # typed while the saved settings were still loading: the load landed after and overwrote nothing
    assert found["loadingState"] == "loading" and found["typedKept"] == str(emulator.config_file)
    assert found["wrongCompartment"]["ok"] == "false" and "Compartment OCID: " in found["wrongCompartment"]["text"]
    assert "404 NotAuthorizedOrNotFound" in found["wrongCompartment"]["text"]
    assert found["invalid"] == ["compartment_id"]
    assert found["saved"]["ok"] == "true" and "connected as api_key in us-ashburn-1" in found["saved"]["text"]
    assert "oci-platform.json" in found["path"] and found["cards"] == ["on oci"]
    assert found["autoscalingShown"]
    assert "autoscaling.scale_in_threshold" in found["refused"]
    assert found["refusedMarked"] == ["Scale-in threshold of on oci"]
    assert found["applied"] == 200 and found["policy"] == "AUTOSCALING"
    for name in ("oci-settings-wrong", "oci-settings-saved", "oci-autoscaling-refused"):
        for suffix in ("", "-dark"):
            assert (SHOTS / f"{name}{suffix}.png").stat().st_size > 3000
