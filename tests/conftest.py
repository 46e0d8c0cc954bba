from __future__ import annotations

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
