"""JupyterLab for the sidebar's browser tests and benchmark: temporary config, settings, workspace
and data dirs (the user's own JupyterLab is never touched), and this checkout's build of the
sidebar loaded first."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers.servers import start_jupyter

ROOT = Path(__file__).parent.parent.parent
BUILD = ROOT / "aqua_lab" / "labextension"


def isolated_env(tmp: Path) -> dict[str, str]:
    """Environment variables for a JupyterLab that loads this checkout's sidebar build."""
    extensions = tmp / "jupyter" / "labextensions"
    extensions.mkdir(parents=True, exist_ok=True)
    link = extensions / "aqua-lab"
    if not link.exists():
        link.symlink_to(BUILD)  # JUPYTER_PATH comes before the environment's share/jupyter: this build wins
    config = tmp / "config"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    # the "get notified about Jupyter news?" toast would cover the screenshots
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    return {"JUPYTER_PATH": str(tmp / "jupyter"), "JUPYTER_CONFIG_DIR": str(config)}


def start_lab(tmp: Path, token: str, base_url: str = "/", extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """Start JupyterLab (the environment must already hold ``isolated_env(tmp)``); returns the
    process and the URL with the token."""
    root = tmp / "root"
    root.mkdir(exist_ok=True)
    assert os.environ.get("JUPYTER_CONFIG_DIR") == str(tmp / "config"), "set isolated_env(tmp) first"
    proc, url = start_jupyter(
        "jupyterlab",
        root,
        tmp / "data",
        token,
        base_url=base_url,
        extra=(
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={tmp / 'settings'}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            *extra,
        ),
    )
    return proc, f"{url}?token={token}"
