"""The suite never changes the user's JupyterLab, and a JupyterLab of the user's, running and saving
its workspace meanwhile (the one ./run.sh started, say), cannot make the suite fail.  Each case runs a
small test module in a nested pytest whose HOME is a stand-in for the user's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import JUPYTER_DIR_VARIABLES

ROOT = Path(__file__).parent.parent

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: the user's JupyterLab, as far as ~/.jupyter sees it: it saves its workspace and settings on its own
USERS_JUPYTERLAB = """
import pathlib, sys, time
home = pathlib.Path(sys.argv[1])
workspace = home / ".jupyter" / "lab" / "workspaces" / "default-37a8.jupyterlab-workspace"
theme = "@jupyterlab/apputils-extension/themes.jupyterlab-settings"
settings = home / ".jupyter" / "lab" / "user-settings" / theme
for path in (workspace, settings):
    path.parent.mkdir(parents=True, exist_ok=True)
n = 0
while True:
    n += 1
    workspace.write_text('{"data": {}, "metadata": {"id": "default", "saved": %d}}' % n)
    settings.write_text('{"theme": "%s"}' % ("JupyterLab Dark" if n % 2 else "JupyterLab Light"))
    time.sleep(0.1)
"""

#: a test that starts JupyterLab the plain way (it inherits the suite's environment) and has it save a
#: workspace: where that file lands is where the suite's JupyterLabs write
SAVES_A_WORKSPACE = """
import json, os, subprocess, sys, time, urllib.request
from pathlib import Path

from aqua_lab.platforms.local.runtime import free_port


def test_a_jupyterlab_the_suite_starts_saves_in_the_sessions_dirs(tmp_path):
    port = free_port()
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.token=t", "--allow-root", f"--ServerApp.root_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        body = json.dumps({"data": {}, "metadata": {"id": "nested"}}).encode()
        for _ in range(300):
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/lab/api/workspaces/nested", data=body, method="PUT",
                    headers={"Authorization": "token t", "Content-Type": "application/json"},
                )
                urllib.request.urlopen(request, timeout=2)
                break
            except OSError:
                assert lab.poll() is None, "JupyterLab did not start"
                time.sleep(0.3)
        saved = list(Path(os.environ["JUPYTERLAB_WORKSPACES_DIR"]).glob("nested*.jupyterlab-workspace"))
        assert saved, "the workspace is not in the session's workspaces dir"
        assert not list((Path.home() / ".jupyter").rglob("nested*")), "the workspace went to the user's"
    finally:
        lab.terminate()
        lab.wait(30)
"""

#: a test that gives a process the user's Jupyter dirs (an environment built without the suite's)
LEAKS = """
import os, subprocess, sys

from tests.conftest import JUPYTER_DIR_VARIABLES


def test_a_process_with_the_users_jupyter_dirs():
    env = {k: v for k, v in os.environ.items() if k not in JUPYTER_DIR_VARIABLES}
    subprocess.run([sys.executable, "-c", "import time; time.sleep(1.5)"], env=env, check=True)
"""


def nested_suite(tmp_path: Path, module: str) -> subprocess.CompletedProcess:
    """``module`` run by pytest with this suite's conftest, the stand-in user's JupyterLab saving in
    their ~/.jupyter all along."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "test_nested.py").write_text(textwrap.dedent(module))
    users = {k: v for k, v in os.environ.items() if k not in (*JUPYTER_DIR_VARIABLES, "AQUA_LAB_DATA_DIR")}
    users["HOME"] = str(home)
    their_lab = subprocess.Popen([sys.executable, "-c", USERS_JUPYTERLAB, str(home)], env=users)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'nested'}"]
            + ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-p", "tests.conftest"]
            + [str(tmp_path / "test_nested.py")],
            cwd=ROOT,
            env=users,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        their_lab.kill()
        their_lab.wait()
        saved = home / ".jupyter" / "lab" / "workspaces" / "default-37a8.jupyterlab-workspace"
        assert '"saved": ' in saved.read_text()  # it was saving while the suite ran


def test_the_suite_passes_while_the_users_jupyterlab_saves_its_workspace(tmp_path):
    run = nested_suite(tmp_path, SAVES_A_WORKSPACE)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "1 passed" in summary and "error" not in summary, summary  # the end-of-run checks passed too


def test_a_process_the_suite_starts_with_the_users_jupyter_dirs_fails_the_run(tmp_path):
    run = nested_suite(tmp_path, LEAKS)
    assert run.returncode != 0
    assert "tests started processes with the user's Jupyter dirs" in run.stdout
    assert "time.sleep(1.5)" in run.stdout and "JUPYTERLAB_WORKSPACES_DIR" in run.stdout
