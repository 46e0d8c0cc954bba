"""What ./run.sh tells a user works as printed: the demo's hints name ./run.sh (aqua-lab is not on
the user's PATH) and a custom data dir, the curl line carries the key; and the install stamp of
./test.sh's bigger install serves ./run.sh, so the second says nothing of "first time"."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aqua_lab.platforms.local import LocalPlatform
from tests.helpers.cli import run_cli

ROOT = Path(__file__).parent.parent


def _stamps(cwd: Path, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f". {ROOT / 'scripts' / 'stamps.sh'}; {script}"], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.cli
def test_a_bigger_install_serves_a_smaller_request_until_pyproject_changes(tmp_path):
    (tmp_path / ".venv").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert _stamps(tmp_path, "install_note").stdout.strip() == "first time: a few minutes"
    assert _stamps(tmp_path, "installed_for local").returncode == 1
    stamp = tmp_path / ".venv" / ".aqua_lab-installed-local,test"  # what ./test.sh leaves
    stamp.touch()
    os.utime(tmp_path / "pyproject.toml", (1, 1))
    assert _stamps(tmp_path, "installed_for local").returncode == 0  # ./run.sh: nothing to install
    assert _stamps(tmp_path, "installed_for local,test").returncode == 0
    assert _stamps(tmp_path, "installed_for core").returncode == 0
    assert _stamps(tmp_path, "installed_for local,oci").returncode == 1
    (tmp_path / "pyproject.toml").touch()  # changed since: reinstall, and say it is an update
    os.utime(stamp, (2, 2))
    assert _stamps(tmp_path, "installed_for local").returncode == 1
    assert _stamps(tmp_path, "install_note").stdout.startswith("updating")


@pytest.mark.cli
@pytest.mark.local
def test_the_demo_hints_work_as_printed_with_a_custom_data_dir(tmp_path):
    data = tmp_path / "my data"
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(data), "AQUA_LAB_CLI": "./run.sh", "AQUA_LAB_SHARE_CORES": "0"}
    try:
        out = run_cli("demo", env=env, timeout=180)
        assert out.returncode == 0, out.stderr
        chat = next(line for line in out.stdout.splitlines() if line.strip().startswith("chat:"))
        words = shlex.split(chat.split("chat:", 1)[1])
        assert words[0] == f"AQUA_LAB_DATA_DIR={data}" and words[1] == "./run.sh"
        # run it as printed, with ./run.sh standing for the CLI it execs
        printed_env = {**os.environ, **dict([words[0].split("=", 1)])}
        answer = subprocess.run(
            [sys.executable, "-m", "aqua_lab", *words[2:], "--max_tokens", "8"],
            capture_output=True,
            text=True,
            env=printed_env,
            timeout=120,
        )
        assert answer.returncode == 0 and answer.stdout.strip(), answer.stderr
        curl = next(line for line in out.stdout.splitlines() if line.strip().startswith("curl:"))
        assert "Authorization: Bearer aqk-" in curl
        delete = next(line for line in out.stdout.splitlines() if line.strip().startswith("delete:"))
        assert "./run.sh deployment delete" in delete
    finally:
        platform = LocalPlatform(data_dir=data)
        for d in platform.list_deployments():
            platform.delete(d.id)
