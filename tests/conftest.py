from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from aqua_lab.catalog import bundled_catalog

DATA = Path(__file__).parent / "data"

#: the variables that say where Jupyter (and a kernel's IPython) keep what the user sees
JUPYTER_DIR_VARIABLES = (
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_DATA_DIR",
    "JUPYTER_RUNTIME_DIR",
    "JUPYTERLAB_SETTINGS_DIR",
    "JUPYTERLAB_WORKSPACES_DIR",
    "IPYTHONDIR",
)


def jupyter_dirs(env: Mapping[str, str]) -> dict[str, str]:
    """Where a process with this environment keeps Jupyter config, data, runtime files, JupyterLab
    settings and workspaces, and IPython history (jupyter_core's and IPython's defaults)."""
    home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    config = env.get("JUPYTER_CONFIG_DIR") or os.path.join(home, ".jupyter")
    share = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    data = env.get("JUPYTER_DATA_DIR") or os.path.join(share, "jupyter")
    dirs = {
        "JUPYTER_CONFIG_DIR": config,
        "JUPYTER_DATA_DIR": data,
        "JUPYTER_RUNTIME_DIR": env.get("JUPYTER_RUNTIME_DIR") or os.path.join(data, "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": env.get("JUPYTERLAB_SETTINGS_DIR") or os.path.join(config, "lab", "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": env.get("JUPYTERLAB_WORKSPACES_DIR") or os.path.join(config, "lab", "workspaces"),
        "IPYTHONDIR": env.get("IPYTHONDIR") or os.path.join(home, ".ipython"),
    }
    return {name: os.path.realpath(os.path.expanduser(path)) for name, path in dirs.items()}


def _users_jupyter_dirs() -> set[str]:
    from jupyter_core import paths

    found = set(jupyter_dirs(os.environ).values())  # jupyter_core's own answer too (JUPYTER_PLATFORM_DIRS)
    found |= {
        os.path.realpath(d()) for d in (paths.jupyter_config_dir, paths.jupyter_data_dir, paths.jupyter_runtime_dir)
    }
    return found


# Set at import, before anything reads them: every process the suite starts inherits Jupyter dirs of
# the session's own, so the user's JupyterLab (settings, workspaces, running servers' runtime files,
# local deployments under its data dir) is never the suite's, even while it runs and saves beside it.
USERS_JUPYTER = _users_jupyter_dirs()
SESSION_JUPYTER = Path(tempfile.mkdtemp(prefix="aqua-lab-tests-jupyter-"))
for _name in JUPYTER_DIR_VARIABLES:
    (SESSION_JUPYTER / _name.lower()).mkdir()
    os.environ[_name] = str(SESSION_JUPYTER / _name.lower())
os.environ.pop("AQUA_LAB_DATA_DIR", None)  # the default, under the session's data dir, not the user's


@pytest.fixture(scope="session")
def catalog():
    return bundled_catalog()


@pytest.fixture
def seed_sample_text() -> str:
    return (DATA / "seed_sample_deployment_config.json").read_text()


def pytest_collection_modifyitems(config, items):
    """Tests against torch reference implementations run only when ``-m`` names them: torch is no
    dependency here, and a skipped test would read as a gap in every ordinary run."""
    if "torch_reference" in (config.getoption("markexpr") or ""):
        return
    named = config.getoption("markexpr") or ""
    optional = [m for m in ("torch_reference", "ads_reference") if m not in named]
    chosen = [item for item in items if not any(item.get_closest_marker(m) for m in optional)]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen


CRASH_SIGNALS = {"SIGSEGV", "SIGILL", "SIGBUS", "SIGFPE", "SIGABRT"}


@pytest.fixture(scope="session", autouse=True)
def no_model_server_crashed(tmp_path_factory):
    """Fails the run if any model server a test started died by a crash signal (the llama.cpp AMX
    segfault was invisible for a whole session because each test only saw a restart).  Runtimes
    journal every exit in <data dir>/exits.jsonl; a test that crashes a server on purpose removes
    its own journal."""
    yield
    import json

    crashed = []
    for journal in [*tmp_path_factory.getbasetemp().rglob("exits.jsonl"), *SESSION_JUPYTER.rglob("exits.jsonl")]:
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("signal") in CRASH_SIGNALS:
                crashed.append(f"{entry['model']} ({entry['deployment_id']}): {entry['signal']}")
    assert not crashed, f"model servers died by a crash signal: {crashed}"


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, state) of every process."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            found[int(proc.name)] = (int(fields[1]), fields[19], fields[0])
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


OWN_COMMAND = _cmdline(os.getpid())


def _descendants(of: int, table: dict[int, tuple[int, str, str]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, *_) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [of]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


class JupyterDirsWatch(threading.Thread):
    """Looks at every Python process this run starts (kernels, Jupyter servers, CLIs, runtimes), as
    long as it lives, and records those whose environment points a Jupyter dir at the user's own: the
    proof that the suite's processes wrote nowhere the user's JupyterLab reads, whatever that
    JupyterLab itself writes meanwhile."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True, name="jupyter-dirs-watch")
        self.interval = interval
        self.seen: dict[tuple[int, str, str], str | None] = {}  # (pid, start time, command) -> what it did wrong
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.scan()

    def scan(self) -> None:
        table = _processes()
        for pid in _descendants(os.getpid(), table):
            command = _cmdline(pid)
            key = (pid, table[pid][1], command)  # the command too: an exec keeps pid and start time
            if command and command != OWN_COMMAND and key not in self.seen:
                # (a fork of pytest not yet exec'd shows pytest's first environment, not its os.environ)
                self.seen[key] = self._check(pid)

    @staticmethod
    def _check(pid: int) -> str | None:
        proc = Path("/proc") / str(pid)
        try:
            if not os.path.basename(os.readlink(proc / "exe")).startswith("python"):
                return None  # Jupyter, kernels and aqua_lab are Python; llama-server or chromium write no Jupyter dirs
            text = (proc / "environ").read_text(errors="replace")
        except OSError:
            return None  # gone before it could be read
        command = _cmdline(pid)
        if not command:
            return None  # exiting: its memory, environment included, is gone (read after the environment for that)
        env = dict(item.split("=", 1) for item in text.split("\0") if "=" in item)
        shared = {name: path for name, path in jupyter_dirs(env).items() if path in USERS_JUPYTER}
        return f"{pid} {command[:160]}: {shared}" if shared else None

    def offenders(self) -> list[str]:
        self.stopped.set()
        self.join()
        self.scan()
        return [what for what in self.seen.values() if what]


def _ancestors() -> set[int]:
    table, found, pid = _processes(), set(), os.getpid()
    while pid in table and pid not in found:  # pytest itself, and whatever started it (a `timeout`)
        found.add(pid)
        pid = table[pid][0]
    return found


def _environ(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "environ").read_text(errors="replace")
    except OSError:
        return ""


def _our_processes(markers: list[str]) -> list[str]:
    """Live processes that name one of ``markers`` in their command line or environment (whatever the
    suite starts inherits the session's Jupyter dirs, in its own session or not)."""
    table, found, ours = _processes(), [], _ancestors()
    for pid, (_, _, state) in table.items():
        if pid in ours or state == "Z":
            continue
        command = _cmdline(pid)
        if any(marker in command or marker in _environ(pid) for marker in markers):
            found.append(f"{pid}: {command[:160]}")
    return found


def _until_gone(markers: list[str], grace_s: float = 5.0) -> list[str]:
    deadline = time.monotonic() + grace_s  # one a test just told to stop may still be on its way out
    while (left := _our_processes(markers)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


@pytest.fixture(scope="session", autouse=True)
def leave_the_machine_as_found(tmp_path_factory):
    """Fails the run if a process the suite started used the user's Jupyter dirs (settings,
    workspaces, runtime files, data), or left a local deployment or any process it started running.
    Deployments found are deleted first, so a failing run still cleans up after itself."""
    watch = JupyterDirsWatch()
    watch.start()
    yield
    base = tmp_path_factory.getbasetemp()
    left = []
    for db in [*base.rglob("local.sqlite"), *SESSION_JUPYTER.rglob("local.sqlite")]:
        from aqua_lab.platforms.local import LocalPlatform

        try:
            platform = LocalPlatform(data_dir=db.parent)
            for d in platform.list_deployments():
                if d.state not in ("DELETED", "FAILED", "INACTIVE"):
                    left.append(f"{d.id} ({d.display_name}, {d.state}) in {db.parent}")
                platform.delete(d.id)
        except Exception as exc:  # noqa: BLE001 - report, do not hide the other checks
            left.append(f"{db}: {exc}")
    processes = _until_gone([f"{base}/", f"{SESSION_JUPYTER}/"])  # paths under them (not /tmp/pt-x2 for /tmp/pt-x)
    offenders = watch.offenders()
    shutil.rmtree(SESSION_JUPYTER, ignore_errors=True)
    assert not left, f"tests left local deployments running: {left}"
    assert not processes, f"tests left processes running: {processes}"
    assert not offenders, f"tests started processes with the user's Jupyter dirs: {offenders}"
