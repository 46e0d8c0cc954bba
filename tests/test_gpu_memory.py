"""A model server's GPU memory as the driver counts it (issue 28 item 4 on a GPU): read from NVML or,
without it, ``nvidia-smi --query-compute-apps``, and used as the measure the plan is held against —
here with a fake ``nvidia-smi`` and a fake ``pynvml`` (no GPU on this machine)."""

from __future__ import annotations

import os
import sys
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
