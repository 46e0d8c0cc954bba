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
            else:
                self._services[name] = AquaLabService(name)
        return self._services[name]
