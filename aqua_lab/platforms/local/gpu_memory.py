"""GPU memory per process, as the driver counts it (issue 28 item 4 on a GPU): what a model server on
a GPU holds there is invisible to its RSS, so its planned-vs-measured figure must come from here.

NVML (the ``nvidia-ml-py`` package, ``import pynvml``) first: one library call per GPU and no
process to start; ``nvidia-smi --query-compute-apps`` when NVML is missing (it ships with the driver).
Both are bounded in time and read at most once a second, since the fronts poll every model."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable

MIB = 2**20
#: how long one reading serves every model of every deployment (the sidebar polls each of them)
READ_EVERY_S = 1.0
NVIDIA_SMI_TIMEOUT_S = 5.0

_last: tuple[float, dict[int, float]] = (float("-inf"), {})
# the service's executor threads poll at once: one of them reads the driver, the others wait for its reading
_read_lock = threading.Lock()


def _from_nvml() -> dict[int, float] | None:
    try:
        import pynvml  # nvidia-ml-py: optional, present where a GPU is
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 — no driver / no GPU: NVML raises its own NVMLError kinds
        return None
    used: dict[int, float] = {}
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if process.usedGpuMemory is not None:  # None where the driver hides it (some containers)
                    used[process.pid] = used.get(process.pid, 0.0) + process.usedGpuMemory / MIB
    except Exception:  # noqa: BLE001 — a GPU lost mid-read: report what was read, never fail a poll
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return used


def parse_compute_apps(text: str) -> dict[int, float]:
    """``nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits`` → pid → MiB,
    summed over GPUs (a tensor-parallel server is one pid on several)."""
    used: dict[int, float] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            try:
                used[int(parts[0])] = used.get(int(parts[0]), 0.0) + float(parts[1])
            except ValueError:  # "[N/A]" where the driver hides it
                continue
    return used


def _from_nvidia_smi(nvidia_smi: str | None) -> dict[int, float]:
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return {}
    try:
        out = subprocess.run(
            [exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_compute_apps(out)


def gpu_memory_by_pid(
    nvidia_smi: str | None = None, clock: Callable[[], float] = time.monotonic, nvml: bool = True
) -> dict[int, float]:
    """Every process's GPU memory now (MiB); empty on a machine without NVIDIA GPUs."""
    global _last
    with _read_lock:
        now = clock()
        if now - _last[0] < READ_EVERY_S:
            return _last[1]
        found = _from_nvml() if nvml else None
        used = found if found is not None else _from_nvidia_smi(nvidia_smi)
        _last = (now, used)
        return used


def gpu_mib(pid: int | None, **how: object) -> float | None:
    """The GPU memory ``pid`` holds (MiB), None when it holds none (or no GPU is here)."""
    if not pid:
        return None
    return gpu_memory_by_pid(**how).get(pid)  # type: ignore[arg-type]
