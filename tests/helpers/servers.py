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
    answers (the deployments it makes keep their state in ``data``)."""
    port = free_port()
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
        env={**os.environ, "AQUA_LAB_DATA_DIR": str(data)},
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
