"""What ./run.sh tells a user works as printed: the demo's hints name ./run.sh (aqua-lab is not on
the user's PATH) and a custom data dir, the curl line carries the key; the install stamp of
./test.sh's bigger install serves ./run.sh, so the second says nothing of "first time"; in a real
terminal, Ctrl-C, SIGTERM and closing the terminal stop its JupyterLab and leave the demo running;
and a deployment of the user's holding the cores never keeps JupyterLab from starting."""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.runtime import free_port
from aqua_lab.service import AquaLabService
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


#: run in the new session before the script: the pseudo-terminal becomes its controlling terminal,
#: as a login shell's is, so ^C typed there and a hang-up reach it the way they reach a user's
TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """``./run.sh`` in a pseudo-terminal of its own; what it prints is collected in ``text``."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.master: int | None
        self.master, follower = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TAKE_TERMINAL, "./run.sh"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        self.chunks: list[bytes] = []
        self.closing = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        # never blocked in read(): a read in progress would keep the terminal open past os.close
        while not self.closing.is_set():
            if not select.select([self.master], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the terminal hung up
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            assert self.proc.poll() is None, f"run.sh ended ({self.proc.returncode}):\n{self.text[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} after {timeout} s:\n{self.text[-3000:]}")

    def stop(self, how: str) -> None:
        if how == "ctrl-c":
            os.write(self.master, b"\x03")  # the terminal turns it into SIGINT for its foreground group
        elif how == "sigterm":
            os.kill(self.proc.pid, signal.SIGTERM)
        else:  # closing the terminal window: the session is hung up
            self._close_terminal()

    def _close_terminal(self) -> None:
        self.closing.set()
        self.reader.join()
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close_terminal()
        for pid in _labs_on(int(self.env["AQUA_LAB_PORT"])):  # its own session: killpg misses it
            os.kill(int(pid), signal.SIGKILL)


def _answers(port: int, token: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _labs_on(port: int) -> list[str]:
    """JupyterLab processes serving ``port`` (whatever session they run in)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if f"--port={port}".encode() in cmdline and any(b"jupyter" in part for part in cmdline):
            found.append(proc.name)
    return found


@pytest.fixture
def run_sh_env(tmp_path):
    """./run.sh's environment: its own data dir, port and token (Jupyter's dirs are the session's,
    see conftest); every deployment it made is deleted afterwards."""
    data = tmp_path / "data"
    env = {
        **os.environ,
        "AQUA_LAB_DATA_DIR": str(data),
        "AQUA_LAB_PORT": str(free_port()),
        "JUPYTER_TOKEN": "run-sh-test",
        "AQUA_LAB_SHARE_CORES": "0",
    }
    yield env
    platform = LocalPlatform(data_dir=data)
    for d in platform.list_deployments():
        platform.delete(d.id)


def _run_until_jupyterlab_answers(env: dict[str, str]) -> Terminal:
    terminal = Terminal(env)
    # the first run of a checkout may install or build: generous; a warm one takes seconds
    terminal.wait_for(r"==> next: open http://127\.0\.0\.1:\d+/lab", timeout=600)
    assert _answers(int(env["AQUA_LAB_PORT"]), env["JUPYTER_TOKEN"])
    return terminal


@pytest.mark.cli
@pytest.mark.local
@pytest.mark.slow
def test_ctrl_c_sigterm_and_closing_the_terminal_stop_jupyterlab_and_keep_the_demo(run_sh_env):
    port, token = int(run_sh_env["AQUA_LAB_PORT"]), run_sh_env["JUPYTER_TOKEN"]
    for how in ("ctrl-c", "sigterm", "hang-up"):
        terminal = _run_until_jupyterlab_answers(run_sh_env)
        try:
            assert _labs_on(port), "no JupyterLab process found for the port"
            stopped_at = time.monotonic()
            terminal.stop(how)
            try:
                terminal.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{how}: run.sh still runs after 20 s:\n{terminal.text[-3000:]}") from None
            took = time.monotonic() - stopped_at
            assert not _answers(port, token), f"{how}: JupyterLab still answers"
            assert not _labs_on(port), f"{how}: JupyterLab is still running"
            assert took < 15, f"{how}: run.sh took {took:.1f} s to stop"
            if how != "hang-up":  # a hung-up terminal shows nothing more
                terminal.reader.join(timeout=5)
                assert "JupyterLab stopped; deployments keep running" in terminal.text, terminal.text[-2000:]
        finally:
            terminal.close()
        # as the README says: the demo keeps running, and the next ./run.sh reuses it
        (demo,) = LocalPlatform(data_dir=Path(run_sh_env["AQUA_LAB_DATA_DIR"])).list_deployments()
        assert demo.display_name == "aqua_lab demo" and demo.state == "ACTIVE", (how, demo.state)


@pytest.mark.cli
@pytest.mark.local
@pytest.mark.slow
def test_jupyterlab_starts_while_a_deployment_of_the_users_holds_the_cores(run_sh_env):
    data = Path(run_sh_env["AQUA_LAB_DATA_DIR"])
    platform = LocalPlatform(data_dir=data, share=False)
    cores = platform.shape.gpu_count
    mine = AquaLabService(platform).create_deployment(
        DeploymentSpec(
            models=[{"model_id": SMOLLM2_ID, "gpu_count": cores, "model_name": "mine"}],
            instance_shape=platform.shape.name,
            display_name="my chatbot",
        )
    )
    terminal = _run_until_jupyterlab_answers(run_sh_env)
    try:
        text = terminal.text
        assert f"'my chatbot' ({mine.id}, " in text and f"{'cores' if cores > 1 else 'core'} 0" in text, text[-3000:]
        cli = f"AQUA_LAB_DATA_DIR={shlex.quote(str(data))} ./run.sh"
        pause = f"{cli} deployment deactivate --model_deployment_id {mine.id}"
        # said twice: before JupyterLab's log, and again with the "next" lines, where it stays in view
        assert text.count(pause) == 2 and text.count(f"{cli} demo\n") == 2, text[-3000:]
        terminal.stop("ctrl-c")
        terminal.proc.wait(timeout=20)
    finally:
        terminal.close()
    # the printed commands work as shown: pause the user's deployment, then the demo comes up
    env = {**run_sh_env, "AQUA_LAB_CLI": "./run.sh"}
    paused = run_cli(*shlex.split(pause)[2:], env=env)
    assert paused.returncode == 0 and '"INACTIVE"' in paused.stdout, paused.stderr
    demo = run_cli("demo", env=env, timeout=180)
    assert demo.returncode == 0, demo.stderr
    states = {d.display_name: d.state for d in platform.list_deployments()}
    assert states == {"my chatbot": "INACTIVE", "aqua_lab demo": "ACTIVE"}
