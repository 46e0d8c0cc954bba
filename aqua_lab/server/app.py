"""The Jupyter server extension: configuration (``c.AquaLab.*``) and the services it serves."""

from __future__ import annotations

import os
from dataclasses import fields

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode, default

from ..service import (
    PLATFORMS,
    AquaLabService,
    AsyncAquaLabService,
    PlatformSettings,
    check_platform,
    default_data_dir,
    descriptions,
    with_oci_choice,
)
from .handlers import NoSuchRoute
from .routes import handlers


class AquaLab(ExtensionApp):  # the class name is the config section users write: c.AquaLab.*
    """aqua_lab's REST API under <base_url>aqua/."""

    name = "aqua_lab"

    platform = Unicode(
        config=True,
        help="The platform a request uses unless it names one with ?platform=: 'local' (this machine), "
        "'oci' (OCI Data Science) or 'bundled' (plan with OCI's service models and shapes as shipped; "
        "deploys nothing). Default: $AQUA_LAB_PLATFORM (the CLI's default too), else 'local'.",
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
    oci_region = Unicode("", config=True, help="OCI region. Default: the profile's region.")
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

    @default("platform")
    def _default_platform(self) -> str:
        return os.environ.get("AQUA_LAB_PLATFORM", "").strip() or "local"

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return default_data_dir()

    def initialize_settings(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"c.AquaLab.platform = {self.platform!r}: use one of {list(PLATFORMS)}")
        self._services: dict[tuple[str, PlatformSettings], AsyncAquaLabService] = {}

    def initialize_handlers(self) -> None:
        self.handlers.extend([*handlers(), (r"aqua/(.*)", NoSuchRoute)])

    def platform_descriptions(self) -> dict[str, str]:
        return descriptions()

    def platform_settings(self, name: str = "") -> PlatformSettings:
        """The ``c.AquaLab.*`` traits named like the settings' fields (the two lists cannot drift apart);
        for OCI, with what the user saved from the sidebar laid over them."""
        settings = PlatformSettings(**{f.name: getattr(self, f.name) for f in fields(PlatformSettings)})
        return with_oci_choice(settings) if name == "oci" else settings

    def service(self, name: str | None = None) -> AsyncAquaLabService:
        """One service per platform and settings for the server's lifetime (created on first use): a
        choice saved from the sidebar makes the next OCI request build a new one, no restart needed."""
        name = check_platform(name or self.platform)
        settings = self.platform_settings(name)
        key = (name, settings)
        if key not in self._services:
            self._services[key] = AsyncAquaLabService(AquaLabService(name, settings))
        return self._services[key]
