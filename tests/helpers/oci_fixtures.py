"""The fixtures of the tests on the OCI emulator: the seeded emulator, the service and the CLI on it,
the deletion of what a test deployed, and real ADS's calls against it.  A test module takes them with
``pytest_plugins = ["tests.helpers.oci_fixtures"]`` and says where its tests work by its ``HOME``,
``SERVICE`` and ``PROJECT`` compartment OCIDs, or by an ``oci_place`` fixture of its own.  Each module
gets an emulator of its own (module scope), stopped when its last test is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config  # noqa: E402
from aqua_lab.platforms.oci import OciPlatform, Settings, resolve_auth  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402
from tests.helpers.oci_env import Place, delete_all, emulator_cli  # noqa: E402


@pytest.fixture(scope="module")
def oci_place(request) -> Place:
    module = request.module
    return Place(home=module.HOME, service=module.SERVICE, project=module.PROJECT)


@pytest.fixture(scope="module")
def emulator(oci_place, tmp_path_factory):
    """The emulator, the bundled models seeded in the service compartment (``.ids``: their OCIDs by
    name), with the API-key config a user of it has (``.config_file``)."""
    seeded = Emulator(polls_to_active=1).start()
    try:
        seeded.ids = seed_from_bundled(seeded, oci_place.service)
        seeded.config_file = write_api_key_config(seeded, tmp_path_factory.mktemp("oci"))
        yield seeded
    finally:
        seeded.stop()


@pytest.fixture(scope="module")
def oci_config(emulator):
    return emulator.config_file


@pytest.fixture(scope="module")
def service(emulator, oci_place):
    settings = Settings(
        compartment_id=oci_place.home,
        project_id=oci_place.project,
        service_compartment_id=oci_place.service,
        endpoint=emulator.url,
        retry_base_s=0.01,
    )
    return AquaLabService(OciPlatform(resolve_auth(config_file=emulator.config_file), settings))


@pytest.fixture
def made(service):
    """Deployments a test makes are deleted however it ends."""
    ids: list[str] = []
    yield ids
    delete_all(service, ids)


@pytest.fixture
def cli(emulator, oci_place, tmp_path):
    return emulator_cli(emulator.url, emulator.config_file, oci_place, tmp_path)


#: run by ADS in a child process: ``argv[1]`` the OCI config, ``argv[2]`` the call's JSON arguments;
#: prints the result as JSON (``to_dict`` where ADS's answer has it)
ADS = r"""
import json, sys
import ads
ads.set_auth("api_key", oci_config_location=sys.argv[1])
from ads.aqua.evaluation import AquaEvaluationApp
from ads.aqua.modeldeployment import AquaDeploymentApp
from ads.aqua.modeldeployment.entities import CreateModelDeploymentDetails
call, kwargs = json.loads(sys.argv[2])
if call == "create":
    kwargs = {"create_deployment_details": CreateModelDeploymentDetails(**kwargs)}
app = AquaEvaluationApp() if call in ("load_metrics", "evaluation_get") else AquaDeploymentApp()
result = getattr(app, {"evaluation_get": "get"}.get(call, call))(**kwargs)
def plain(x):
    return [plain(i) for i in x] if isinstance(x, list) else (x.to_dict() if hasattr(x, "to_dict") else x)
print("\nADS-RESULT " + json.dumps(plain(result), default=str), flush=True)
"""


@pytest.fixture(scope="module")
def ads(emulator, oci_place):
    """``ads(call, **kwargs)``: real ADS (the ``ads-reference`` extra) on the emulator, each call in a
    process of its own, since ADS reads its endpoint and compartments from the environment once, at import."""
    env = {
        **os.environ,
        "OCI_ODSC_SERVICE_ENDPOINT": emulator.url,
        "PROJECT_COMPARTMENT_OCID": oci_place.home,
        "NB_SESSION_COMPARTMENT_OCID": oci_place.home,
        "ODSC_MODEL_COMPARTMENT_OCID": oci_place.service,
        "PROJECT_OCID": oci_place.project,
        # else ADS reads its GPU shapes index from the real Object Storage (by ocifs, which takes no
        # endpoint of ours) and waits for its connect timeouts: the index bundled in ADS is used
        "CONDA_BUCKET_NS": "",
        "AQUA_TELEMETRY_BUCKET_NS": emulator.namespace,  # known: no namespace lookup at OCI for telemetry
    }

    def call(name: str, **kwargs):
        done = subprocess.run(
            [sys.executable, "-c", ADS, str(emulator.config_file), json.dumps([name, kwargs])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("ADS-RESULT ")]  # after its progress bars
        assert done.returncode == 0 and lines, f"ADS {name} failed:\n{done.stderr[-3000:]}"
        return json.loads(lines[-1].removeprefix("ADS-RESULT "))

    return call
