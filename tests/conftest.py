from __future__ import annotations

import os
from pathlib import Path

import pytest

from aqua_lab.catalog import bundled_catalog

DATA = Path(__file__).parent / "data"


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
    chosen = [item for item in items if item.get_closest_marker("torch_reference") is None]
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
    for journal in tmp_path_factory.getbasetemp().rglob("exits.jsonl"):
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("signal") in CRASH_SIGNALS:
                crashed.append(f"{entry['model']} ({entry['deployment_id']}): {entry['signal']}")
    assert not crashed, f"model servers died by a crash signal: {crashed}"


def _jupyter_snapshot() -> dict[str, float]:
    home = Path.home() / ".jupyter"
    return {str(p): p.stat().st_mtime for p in home.rglob("*") if p.is_file()} if home.is_dir() else {}


def _our_processes(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


@pytest.fixture(scope="session", autouse=True)
def leave_the_machine_as_found(tmp_path_factory):
    """Fails the run if the suite changed the user's ~/.jupyter (settings, workspaces) or left a local
    deployment or any process it started running.  Deployments found are deleted first, so a failing
    run still cleans up after itself."""
    before = _jupyter_snapshot()
    yield
    base = tmp_path_factory.getbasetemp()
    left = []
    for db in base.rglob("local.sqlite"):
        from aqua_lab.platforms.local import LocalPlatform

        try:
            platform = LocalPlatform(data_dir=db.parent)
            for d in platform.list_deployments():
                if d.state not in ("DELETED", "FAILED", "INACTIVE"):
                    left.append(f"{d.id} ({d.display_name}, {d.state}) in {db.parent}")
                platform.delete(d.id)
        except Exception as exc:  # noqa: BLE001 - report, do not hide the other checks
            left.append(f"{db}: {exc}")
    processes = _our_processes(str(base))
    changed = sorted(set(before.items()) ^ set(_jupyter_snapshot().items()))
    assert not left, f"tests left local deployments running: {left}"
    assert not processes, f"tests left processes running: {processes}"
    assert not changed, f"tests changed the user's ~/.jupyter: {[p for p, _ in changed]}"
