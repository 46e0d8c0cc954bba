"""The CLI pointed at an OCI emulator, and the clean-up of what a test deployed there."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, NamedTuple

from tests.helpers.cli import run_cli


class Place(NamedTuple):
    """Where a test works on OCI: the user's compartment, the service's (the seeded models) and the project."""

    home: str
    service: str
    project: str


def emulator_env(url: str, config_file: Path | str, place: Place, data_dir: Path, **more: str) -> dict[str, str]:
    """A user's environment on the emulator at ``url``: none of the caller's own AQUA_LAB_ settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQUA_LAB_")}
    env.update(
        OCI_CONFIG_LOCATION=str(config_file),
        AQUA_LAB_OCI_ENDPOINT=url,
        AQUA_LAB_COMPARTMENT_OCID=place.home,
        AQUA_LAB_SERVICE_COMPARTMENT_OCID=place.service,
        AQUA_LAB_PROJECT_OCID=place.project,
        AQUA_LAB_DATA_DIR=str(data_dir),
        **more,
    )
    return env


def emulator_cli(url: str, config_file: Path | str, place: Place, data_dir: Path) -> Callable[..., CompletedProcess]:
    """``aqua-lab …`` on the emulator at ``url``, OCI chosen."""
    env = emulator_env(url, config_file, place, data_dir, AQUA_LAB_PLATFORM="oci")
    return lambda *args: run_cli(*args, env=env)


def delete_all(service: Any, deployment_ids: Iterable[str]) -> None:
    for deployment_id in deployment_ids:
        try:
            service.delete(deployment_id)
        except Exception:  # noqa: BLE001 — already gone, or deleted by the test itself
            pass
