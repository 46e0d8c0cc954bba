"""Process-wide caches the service's executor threads share (issue 28/29 review): the installed vLLM's
version read once, one driver reading per interval however many threads poll, the engine-size cache
evicted under a lock; and a bench helper reaps the server it kills."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aqua_lab.platforms.local import engines, gpu_memory, residency

pytestmark = pytest.mark.local


def _together(n: int, work) -> list[BaseException]:
    """Run ``work`` on ``n`` threads released at once; the exceptions they raised."""
    start, raised = threading.Barrier(n), []

    def one():
        start.wait()
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            raised.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return raised


def test_the_installed_vllm_version_is_read_once(monkeypatch):
    asked = []

    def version(name):
        asked.append(name)
        return "0.10.1.post1"

    monkeypatch.setattr(importlib.metadata, "version", version)
    engines.installed_vllm_version.cache_clear()
    try:
        assert [engines.installed_vllm_version() for _ in range(5)] == [(0, 10, 1)] * 5
        assert asked == ["vllm"]
    finally:
        engines.installed_vllm_version.cache_clear()  # the next caller reads the real one


def test_threads_polling_at_once_read_the_driver_once(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_memory, "_last", (float("-inf"), {}))
    calls = tmp_path / "calls"
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho x >> {calls}\nsleep 0.3\necho '4242, 1500'\n")
    smi.chmod(0o755)
    got = []
    raised = _together(6, lambda: got.append(gpu_memory.gpu_memory_by_pid(nvidia_smi=str(smi), nvml=False)))
    assert not raised and got == [{4242: 1500.0}] * 6
    assert calls.read_text().count("x") == 1, "every thread ran nvidia-smi"


def test_engine_sizes_evicts_safely_from_many_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(residency, "SIZES_CACHED", 1)  # every read evicts
    monkeypatch.setattr(residency, "_SIZES_READ", {})
    logs = []
    for i in range(8):
        log = tmp_path / f"server-{i}.log"
        log.write_bytes(
            b"load_model: loading model\n CPU_Mapped model buffer size = 92.10 MiB\n CPU KV buffer size = 45.00 MiB\n"
        )
        logs.append(log)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows if it is there
    try:
        raised = _together(8, lambda: [residency.engine_sizes(log) for _ in range(300) for log in logs])
    finally:
        sys.setswitchinterval(old)
    assert not raised, raised[:3]
    assert len(residency._SIZES_READ) == 1
    assert residency.engine_sizes(logs[0]) == {"weights_mib": 92.1, "kv_cache_mib": 45.0}


def test_a_server_that_never_answers_is_killed_and_reaped():
    path = Path(__file__).resolve().parents[1] / "bench" / "_http.py"
    found = importlib.util.spec_from_file_location("bench_http", path)
    http = importlib.util.module_from_spec(found)
    found.loader.exec_module(http)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(RuntimeError, match="sleeper did not start within 0.5 s"):
            http.wait_until_answers(f"http://127.0.0.1:{port}/", proc, "sleeper", seconds=0.5, every=0.1)
        assert proc.returncode is not None, "killed but not reaped: a zombie until the bench ends"
    finally:
        proc.kill()
        proc.wait()
