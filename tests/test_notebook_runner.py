"""The notebook runner's evaluations (``runner: notebook``) as the service holds them: one runner per
service with its own store, opened once however many executor threads ask first, and no folder made
by a list alone."""

from __future__ import annotations

import threading
import time

import pytest

from aqua_lab.platforms import notebook_runner
from aqua_lab.platforms.local import LocalPlatform, evaluations
from aqua_lab.service import AquaLabService

pytestmark = [pytest.mark.evaluation, pytest.mark.service]


def test_concurrent_first_uses_share_one_runner_and_one_store(tmp_path, monkeypatch):
    service = AquaLabService(LocalPlatform(data_dir=tmp_path))
    assert service.list_evaluations() == []
    assert not (tmp_path / notebook_runner.FOLDER).exists(), "a list alone made the runner's folder"

    opened = _first_uses(monkeypatch, notebook_runner, lambda: service.notebook_evaluations.evaluation_store)
    assert opened == [tmp_path / notebook_runner.FOLDER / "local.sqlite"]


def test_the_local_platforms_evaluations_open_one_store_too(tmp_path, monkeypatch):
    platform = LocalPlatform(data_dir=tmp_path)
    assert _first_uses(monkeypatch, evaluations, lambda: platform.evaluation_store) == [platform.store.path]


def _first_uses(monkeypatch, module, use) -> list:
    """Six threads' first ``use()`` at once, opening the store slowly: the paths opened (one store for all)."""
    opened = []
    real = module.EvaluationStore

    def slow_store(path):
        time.sleep(0.2)  # wide enough for every thread to find no store yet, were there no lock
        opened.append(path)
        return real(path)

    monkeypatch.setattr(module, "EvaluationStore", slow_store)
    start, got = threading.Barrier(6), []

    def first_use():
        start.wait()
        got.append(use())

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 6 and len({id(s) for s in got}) == 1, f"{len({id(s) for s in got})} stores for one owner"
    return opened
