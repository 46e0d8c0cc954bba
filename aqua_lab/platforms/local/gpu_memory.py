"""GPU memory per process, as the driver counts it (issue 28 item 4 on a GPU): what a model server on
a GPU holds there is invisible to its RSS, so its planned-vs-measured figure must come from here.

NVML (the ``nvidia-ml-py`` package, ``import pynvml``) first: one library call per GPU and no
process to start; ``nvidia-smi --query-compute-apps`` when NVML is missing (it ships with the driver).
Both are bounded in time and read at most once a second, since the fronts poll every model.

An NVML call into a wedged driver does not return and cannot be interrupted, so NVML is read in a
worker thread that the reading waits for at most :data:`NVML_TIMEOUT_S`; past that the thread is
left behind, NVML is not tried again for :data:`COOLDOWN_S` (nor while that thread is still
stuck, so hung threads never pile up) and the reading comes from ``nvidia-smi``, saying why.
``nvidia-smi`` is killed at :data:`NVIDIA_SMI_TIMEOUT_S` and then, too, left alone for :data:`COOLDOWN_S`."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MIB = 2**20
#: how long one reading serves every model of every deployment (the sidebar polls each of them)
READ_EVERY_S = 1.0
NVIDIA_SMI_TIMEOUT_S = 5.0
#: how long a reading waits for NVML (init, every GPU's processes, shutdown); without persistence mode
#: nvmlInit alone takes seconds on a machine with many GPUs, as nvidia-smi's start does
NVML_TIMEOUT_S = 5.0
#: after NVML (or nvidia-smi) did not answer in time, how long readings leave it alone
COOLDOWN_S = 60.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuReading:
    """Every process's GPU memory (pid → MiB), where it came from and, when NVML was passed over, why."""

    used: dict[int, float] = field(default_factory=dict)
    source: str = "none"  # "nvml", "nvidia-smi" or "none" (no NVIDIA GPU, or neither answered)
    detail: str = ""


_last: tuple[float, GpuReading] = (float("-inf"), GpuReading())
# the service's executor threads poll at once: one of them reads the driver, the others wait for its reading
_read_lock = threading.Lock()
# the NVML worker that did not answer in time (running for as long as the driver holds it), and until
# when NVML, or nvidia-smi, is left alone after not answering; all guarded by _read_lock
_nvml_stuck: threading.Thread | None = None
_nvml_off_until = float("-inf")
_smi_off_until = float("-inf")


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


def _silent(what: str, limit_s: float, left_s: float) -> str:
    return f"{what} did not answer within {limit_s:g} s; not asked again for {left_s:.0f} s"


def _from_nvidia_smi(nvidia_smi: str | None, now: float) -> tuple[dict[int, float], str]:
    """nvidia-smi's reading and, when it could not give one, why (empty: no nvidia-smi here)."""
    global _smi_off_until
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return {}, ""
    if now < _smi_off_until:
        return {}, _silent("nvidia-smi", NVIDIA_SMI_TIMEOUT_S, _smi_off_until - now)
    try:
        process = subprocess.Popen(
            [exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError as exc:
        return {}, f"nvidia-smi did not start: {exc.strerror or exc}"
    try:
        out, _ = process.communicate(timeout=NVIDIA_SMI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        try:  # subprocess.run would wait without end here: a process inside a wedged driver ignores SIGKILL
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass  # left to Popen's own reaping of children it lost track of
        _smi_off_until = now + COOLDOWN_S
        reason = _silent("nvidia-smi", NVIDIA_SMI_TIMEOUT_S, COOLDOWN_S)
        log.warning("aqua_lab GPU memory: %s (a stuck GPU driver?)", reason)
        return {}, reason
    if process.returncode != 0:
        return {}, f"nvidia-smi exited with status {process.returncode}"
    return parse_compute_apps(out), ""


def _nvml_bounded(now: float) -> tuple[dict[int, float] | None, str]:
    """NVML's reading, or None when it is missing (reason empty) or was passed over (reason given):
    cooling down, still stuck in an earlier read, or no answer within NVML_TIMEOUT_S now.  Called
    under ``_read_lock``."""
    global _nvml_stuck, _nvml_off_until
    if _nvml_stuck is not None and _nvml_stuck.is_alive():
        return None, f"NVML did not answer within {NVML_TIMEOUT_S:g} s and its read is still stuck; not asked again"
    _nvml_stuck = None
    if now < _nvml_off_until:
        return None, _silent("NVML", NVML_TIMEOUT_S, _nvml_off_until - now)
    box: list[dict[int, float] | None] = []
    worker = threading.Thread(target=lambda: box.append(_from_nvml()), name="aqua-lab-nvml", daemon=True)
    worker.start()
    worker.join(NVML_TIMEOUT_S)
    if worker.is_alive():  # it cannot be stopped: it is remembered so that no second one joins it
        _nvml_stuck, _nvml_off_until = worker, now + COOLDOWN_S
        reason = _silent("NVML", NVML_TIMEOUT_S, COOLDOWN_S)
        log.warning("aqua_lab GPU memory: %s (a stuck GPU driver?); reading nvidia-smi instead", reason)
        return None, reason
    return (box[0] if box else None), ""


def gpu_reading(
    nvidia_smi: str | None = None, clock: Callable[[], float] = time.monotonic, nvml: bool = True
) -> GpuReading:
    """Every process's GPU memory now, from NVML or else nvidia-smi; returns within
    NVML_TIMEOUT_S + NVIDIA_SMI_TIMEOUT_S + 1 s however the driver behaves, and at once while both
    are cooling down after not answering."""
    global _last
    with _read_lock:
        now = clock()
        if now - _last[0] < READ_EVERY_S:
            return _last[1]
        found, why = _nvml_bounded(now) if nvml else (None, "")
        if found is not None:
            reading = GpuReading(found, "nvml")
        else:
            used, smi_why = _from_nvidia_smi(nvidia_smi, now)
            reading = GpuReading(used, "nvidia-smi" if used else "none", "; ".join(w for w in (why, smi_why) if w))
        # stamped when it ends: a slow reading still serves the threads that queued behind it
        _last = (clock(), reading)
        return reading


def gpu_memory_by_pid(
    nvidia_smi: str | None = None, clock: Callable[[], float] = time.monotonic, nvml: bool = True
) -> dict[int, float]:
    """Every process's GPU memory now (MiB); empty on a machine without NVIDIA GPUs."""
    return gpu_reading(nvidia_smi, clock, nvml).used


def gpu_mib(pid: int | None, **how: object) -> float | None:
    """The GPU memory ``pid`` holds (MiB), None when it holds none (or no GPU is here)."""
    if not pid:
        return None
    return gpu_memory_by_pid(**how).get(pid)  # type: ignore[arg-type]
