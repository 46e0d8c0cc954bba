"""Start a Jupyter server (or JupyterLab) as its own process, as a user would, for black-box tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aqua_lab.platforms.local.runtime import free_port


def start_jupyter(
    app: str, root: Path, data: Path, token: str, base_url: str = "/", extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """``app`` is ``jupyter_server`` or ``jupyterlab``; returns the process and its base URL once it
    answers (the deployments it makes keep their state in ``data``).  Its settings, workspaces,
    config and runtime files go to folders beside ``data``: a test must not change the user's own
    JupyterLab (a theme switched by the browser test would be theirs next time)."""
    port = free_port()
    private = data.parent / f"{data.name}-jupyter"
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": private / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": private / "lab-workspaces",
        "JUPYTER_CONFIG_DIR": private / "config",
        "JUPYTER_RUNTIME_DIR": private / "runtime",
        "JUPYTER_DATA_DIR": private / "data",
        "IPYTHONDIR": private / "ipython",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    # JupyterLab's "receive official news?" toast covers the page; this is the setting that stops it
    news = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            app,
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.token={token}",
            f"--ServerApp.base_url={base_url}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_root=True",
            f"--AquaLab.data_dir={data}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **{k: str(v) for k, v in dirs.items()}, "AQUA_LAB_DATA_DIR": str(data)},
    )
    url = f"http://127.0.0.1:{port}{base_url}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2)
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{app} did not start") from None
            time.sleep(0.3)
