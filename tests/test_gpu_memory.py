"""A model server's GPU memory as the driver counts it (issue 28 item 4 on a GPU): read from NVML or,
without it, ``nvidia-smi --query-compute-apps``, and used as the measure the plan is held against —
here with a fake ``nvidia-smi`` and a fake ``pynvml`` (no GPU on this machine)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from aqua_lab.platforms.local import gpu_memory, residency
from aqua_lab.widgets.residency import memory_bar

pytestmark = [pytest.mark.local, pytest.mark.planning]

MIB = 2**20


@pytest.fixture(autouse=True)
def fresh_reading(monkeypatch):
    monkeypatch.setattr(gpu_memory, "_last", (float("-inf"), {}))
    monkeypatch.setattr(gpu_memory, "_nvml_stuck", None)
    monkeypatch.setattr(gpu_memory, "_nvml_off_until", float("-inf"))
    monkeypatch.setattr(gpu_memory, "_smi_off_until", float("-inf"))


def _fake_smi(folder: Path, lines: list[str]) -> str:
    path = folder / "nvidia-smi"
    body = "\n".join(f"echo '{line}'" for line in lines)
    path.write_text(f'#!/bin/sh\ncase "$1" in --query-compute-apps=*) {body};; *) exit 9;; esac\n')
    path.chmod(0o755)
    return str(path)


def test_nvidia_smi_compute_apps_are_summed_per_process_and_hidden_values_skipped(tmp_path):
    smi = _fake_smi(tmp_path, ["4242, 1500", "4242, 500", "77, [N/A]", "garbage"])
    used = gpu_memory.gpu_memory_by_pid(nvidia_smi=smi, nvml=False)
    assert used == {4242: 2000.0}  # one tensor-parallel server on two GPUs: one figure


def test_nvml_is_read_first_and_counts_every_gpu(monkeypatch):
    proc = types.SimpleNamespace
    calls: list[str] = []
    fake = types.SimpleNamespace(
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [proc(pid=10, usedGpuMemory=(h + 1) * 1024 * MIB)],
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_memory.gpu_memory_by_pid(nvidia_smi="/nonexistent") == {10: 3072.0}
    assert calls == ["init", "shutdown"]


def test_a_reading_serves_the_polls_of_one_second(tmp_path):
    smi = _fake_smi(tmp_path, ["1, 100"])
    now = [100.0]
    assert gpu_memory.gpu_memory_by_pid(nvidia_smi=smi, clock=lambda: now[0], nvml=False) == {1: 100.0}
    _fake_smi(tmp_path, ["1, 900"])
    now[0] += 0.5
    assert gpu_memory.gpu_memory_by_pid(nvidia_smi=smi, clock=lambda: now[0], nvml=False) == {1: 100.0}
    now[0] += 1.0
    assert gpu_memory.gpu_memory_by_pid(nvidia_smi=smi, clock=lambda: now[0], nvml=False) == {1: 900.0}


def test_without_a_gpu_nothing_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    monkeypatch.setitem(sys.modules, "pynvml", None)  # and no NVML: import fails
    assert gpu_memory.gpu_mib(os.getpid()) is None


def test_on_a_gpu_the_plan_is_held_against_the_drivers_count_and_the_fronts_say_so(monkeypatch, tmp_path):
    pid = os.getpid()
    monkeypatch.setattr(gpu_memory, "gpu_memory_by_pid", lambda **_: {pid: 1000.0})
    planned_gb = 1100 * MIB / 1e9
    fit = types.SimpleNamespace(weights_gb=700 * MIB / 1e9, kv_cache_gb=300 * MIB / 1e9)  # what measured() reads
    memory = residency.measured((planned_gb, fit), pid, tmp_path / "none.log", resident=True)
    assert memory.gpu_mib == 1000.0 and memory.rss_mib  # both kept: RSS is still the host side
    assert memory.error_pct == pytest.approx(10.0)  # (1100 - 1000) / 1000, not against RSS
    html = memory_bar(memory, "ACTIVE")
    assert "1000 MiB GPU (driver)" in html and "+10" in html


# a wedged driver: NVML or nvidia-smi never answers.  The fakes give up after HUNG_S so that, on code
# without the bound, these tests fail on the time taken instead of hanging
HUNG_S = 10.0


def _nvml_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aqua-lab-nvml" and t.is_alive()]


def test_a_hung_nvml_read_is_given_up_within_its_bound_with_the_reason_and_not_asked_again(
    monkeypatch, tmp_path, caplog
):
    monkeypatch.setattr(gpu_memory, "NVML_TIMEOUT_S", 1.0)  # far above a sh spawn: the 2nd reading tells
    wedged, inits = threading.Event(), []

    def init():
        inits.append(1)
        wedged.wait(HUNG_S)  # a call into a driver that does not come back

    fake = types.SimpleNamespace(
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [types.SimpleNamespace(pid=10, usedGpuMemory=512 * MIB)],
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    smi = _fake_smi(tmp_path, ["4242, 1500"])
    now = [100.0]
    try:
        with caplog.at_level(logging.WARNING, logger=gpu_memory.__name__):
            started = time.monotonic()
            reading = gpu_memory.gpu_reading(nvidia_smi=smi, clock=lambda: now[0])
            took = time.monotonic() - started
        assert took < 3.0, f"the reading waited {took:.1f} s on a hung NVML"
        assert reading.used == {4242: 1500.0} and reading.source == "nvidia-smi"  # the fallback still measures
        assert reading.detail == "NVML did not answer within 1 s; not asked again for 60 s"
        assert "NVML did not answer within 1 s" in caplog.text and "reading nvidia-smi instead" in caplog.text

        now[0] += 2.0  # the next poll: NVML is cooling down and its first read is still stuck
        started = time.monotonic()
        again = gpu_memory.gpu_reading(nvidia_smi=smi, clock=lambda: now[0])
        assert time.monotonic() - started < 0.8, "the second reading waited on NVML again"
        assert again.used == {4242: 1500.0} and "still stuck; not asked again" in again.detail
        assert len(inits) == 1 and len(_nvml_threads()) == 1, "a second NVML read piled up behind the hung one"
    finally:
        wedged.set()  # the driver comes back
    for thread in _nvml_threads():
        thread.join(HUNG_S)

    now[0] += 30.0  # answered since, but still within the cooldown
    assert "not asked again for 28 s" in gpu_memory.gpu_reading(nvidia_smi=smi, clock=lambda: now[0]).detail
    now[0] += 30.0  # past it: NVML is read again
    back = gpu_memory.gpu_reading(nvidia_smi=smi, clock=lambda: now[0])
    assert (back.used, back.source, back.detail) == ({10: 512.0}, "nvml", "")


def test_a_hung_nvidia_smi_is_killed_at_its_bound_and_not_run_again_while_cooling_down(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_memory, "NVIDIA_SMI_TIMEOUT_S", 0.3)
    runs = tmp_path / "runs"
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho x >> {runs}\nexec sleep {HUNG_S:g}\n")
    smi.chmod(0o755)
    now = [100.0]
    started = time.monotonic()
    reading = gpu_memory.gpu_reading(nvidia_smi=str(smi), clock=lambda: now[0], nvml=False)
    assert time.monotonic() - started < 2.0
    assert (reading.used, reading.source) == ({}, "none")
    assert reading.detail == "nvidia-smi did not answer within 0.3 s; not asked again for 60 s"
    now[0] += 2.0
    again = gpu_memory.gpu_reading(nvidia_smi=str(smi), clock=lambda: now[0], nvml=False)
    assert again.detail == "nvidia-smi did not answer within 0.3 s; not asked again for 58 s"
    assert runs.read_text().count("x") == 1, "nvidia-smi was started again while cooling down"
