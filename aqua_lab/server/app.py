"""The Jupyter server extension: configuration (``c.AquaLab.*``) and the services it serves."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode, default

from ..errors import InvalidInput, Problem
from ..service import PLATFORMS, AquaLabService
from .handlers import NoSuchRoute, handlers

DESCRIPTIONS = {
    "local": "this machine: real model servers (llama.cpp on CPU, vLLM on GPU) behind a router",
    "bundled": "OCI's service models and GPU shapes as shipped with aqua_lab: plans only, deploys nothing",
    "oci": "OCI Data Science: model groups and model deployments in your compartment",
}


class AquaLab(ExtensionApp):
    """aqua_lab's REST API under <base_url>aqua/."""

    name = "aqua_lab"

    platform = Unicode(
        "local",
        config=True,
        help="The platform a request uses unless it names one with ?platform=: 'local' (this machine) "
        "or 'bundled' (plan with OCI's service models and shapes as shipped; deploys nothing).",
    )
    data_dir = Unicode(
        config=True,
        help="Where the local platform keeps its state (SQLite, logs). Default: <jupyter data dir>/aqua_lab, "
        "or $AQUA_LAB_DATA_DIR.",
    )

    oci_auth = Unicode(
        "",
        config=True,
        help="OCI auth: api_key, security_token, resource_principal or instance_principal. Default: detected "
        "(resource principal in an OCI notebook session, else the config file's profile); or $OCI_IAM_TYPE.",
    )
    oci_config_file = Unicode("", config=True, help="OCI config file. Default: $OCI_CONFIG_LOCATION or ~/.oci/config.")
    oci_profile = Unicode(
        "", config=True, help="Profile in the OCI config file. Default: $OCI_CONFIG_PROFILE or DEFAULT."
    )
    compartment_id = Unicode(
        "",
        config=True,
        help="Compartment for deployments. Default: the notebook session's (NB_SESSION_COMPARTMENT_OCID), "
        "$AQUA_LAB_COMPARTMENT_OCID, or a resource principal's own.",
    )
    project_id = Unicode(
        "", config=True, help="Data Science project. Default: $PROJECT_OCID or $AQUA_LAB_PROJECT_OCID."
    )
    service_compartment_id = Unicode(
        "", config=True, help="Where AQUA's service models are listed from. Default: $ODSC_MODEL_COMPARTMENT_OCID."
    )
    oci_endpoint = Unicode(
        "",
        config=True,
        help="Send every OCI call to this base URL instead (e.g. the emulator: python -m aqua_lab.emulator).",
    )

    @default("data_dir")
    def _default_data_dir(self) -> str:
        from ..platforms.local.platform import default_data_dir

        return str(default_data_dir())

    def initialize_settings(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"c.AquaLab.platform = {self.platform!r}: use one of {list(PLATFORMS)}")
        self._services: dict[str, AquaLabService] = {}

    def initialize_handlers(self) -> None:
        self.handlers.extend([*handlers(), (r"aqua/(.*)", NoSuchRoute)])

    def platform_descriptions(self) -> dict[str, str]:
        return {name: DESCRIPTIONS[name] for name in PLATFORMS}

    def service(self, name: str | None = None) -> AquaLabService:
        """One service per platform for the server's lifetime (created on first use)."""
        name = name or self.platform
        if name not in PLATFORMS:
            raise InvalidInput(Problem("platform", f"unknown platform {name!r}", f"use one of {list(PLATFORMS)}"))
        if name not in self._services:
            if name == "local":
                from ..platforms.local import LocalPlatform

                self._services[name] = AquaLabService(LocalPlatform(data_dir=self.data_dir))
            elif name == "oci":
                self._services[name] = AquaLabService(self._oci_platform())
            else:
                self._services[name] = AquaLabService(name)
        return self._services[name]

    def _oci_platform(self):
        from ..platforms.oci import OciPlatform, resolve_auth

        auth = resolve_auth(self.oci_auth or None, self.oci_config_file or None, self.oci_profile or None)
        overrides = {
            key: value
            for key, value in {
                "compartment_id": self.compartment_id,
                "project_id": self.project_id,
                "service_compartment_id": self.service_compartment_id,
                "endpoint": self.oci_endpoint,
            }.items()
            if value
        }
        return OciPlatform.from_environment(auth, **overrides)
