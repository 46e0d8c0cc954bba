"""What the fronts show of each local model's residency (issue 28): when it fell asleep and how its
last wake went (the runtime's status.json), and its memory as measured — the RSS of its process
(what the OS gives it) and the buffer sizes llama-server logs when it loads — next to the capacity
planner's estimate, so a plan that is wrong shows as a percentage instead of as a machine that swaps."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...domain import DeploymentSpec, MemoryFit, ModelMemory
from ...errors import Conflict, InvalidInput, Problem
from ...planning.capacity import Residency, resident_together
from .capacity import REPLICA_MEMORY_SHARE
from .gpu_memory import gpu_mib

MIB = 2**20
#: llama-server logs its buffer sizes while it loads, in the first few hundred lines of its log
LOG_HEAD_BYTES = 512 * 1024
_LOAD = b"load_model: loading model"
# "CPU_Mapped model buffer size =    92.10 MiB", "CPU KV buffer size = 45.00 MiB", "CPU compute buffer size"
_SIZE = re.compile(rb"\s(model|KV|compute) buffer size =\s*([\d.]+) MiB")
_KINDS = {b"model": "weights_mib", b"KV": "kv_cache_mib", b"compute": "compute_mib"}
#: the logs whose sizes were read, by path: ((device, inode, head length), sizes); a few per model server
SIZES_CACHED = 256
_SIZES_READ: dict[str, tuple[tuple[int, int, int], dict[str, float]]] = {}
# executor threads read and evict at once: an eviction racing another's would pop a key already gone
_SIZES_LOCK = threading.Lock()


def rss_mib(pid: int | None) -> float | None:
    """The process's resident set now; None when it is gone (or not a process of this machine)."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def engine_sizes(log_path: Path) -> dict[str, float]:
    """Weights, KV cache and compute buffers (MiB, summed over devices) of the last model load found
    in the head of the server's log; empty when it logged none (another engine, an older log).

    Read once per (file, head length): the fronts poll every deployment's models, and the head of an
    append-only log changes only while it is shorter than the cap (a new file is a new inode)."""
    try:
        stat = os.stat(log_path)
    except OSError:
        return {}
    key = (stat.st_dev, stat.st_ino, min(stat.st_size, LOG_HEAD_BYTES))
    with _SIZES_LOCK:
        cached = _SIZES_READ.get(str(log_path))
    if cached is not None and cached[0] == key:
        return dict(cached[1])
    try:
        with open(log_path, "rb") as log:
            head = log.read(LOG_HEAD_BYTES)
    except OSError:
        return {}
    found = _last_load(head)
    with _SIZES_LOCK:
        _SIZES_READ.pop(str(log_path), None)
        _SIZES_READ[str(log_path)] = (key, found)
        while len(_SIZES_READ) > SIZES_CACHED:  # the oldest read first: dicts keep insertion order
            del _SIZES_READ[next(iter(_SIZES_READ))]
    return dict(found)


def _last_load(head: bytes) -> dict[str, float]:
    for load in reversed(head.split(_LOAD)):
        found: dict[str, float] = {}
        for kind, size in _SIZE.findall(load):
            found[_KINDS[kind]] = round(found.get(_KINDS[kind], 0.0) + float(size), 2)
        if "weights_mib" in found:
            return found
    return {}


def measured(
    planned: tuple[float, MemoryFit | None] | None, pid: int | None, log_path: Path, resident: bool
) -> ModelMemory:
    """``planned``: :func:`capacity.server_memory_fit`'s (GB, breakdown).  The error is counted only
    while the model is resident: asleep, its RSS is what sleeping leaves, not what the plan is for."""
    total_mib = planned[0] * 1e9 / MIB if planned else None
    fit = planned[1] if planned else None
    rss = rss_mib(pid)
    # on a GPU the plan is for GPU memory, which RSS does not see: the driver's count is the measure
    gpu = gpu_mib(pid)
    against = gpu or rss
    error = None
    if resident and against and total_mib is not None:
        error = round((total_mib - against) / against * 100, 1)
    return ModelMemory(
        planned_mib=None if total_mib is None else round(total_mib, 1),
        planned_weights_mib=round(fit.weights_gb * 1e9 / MIB, 1) if fit else None,
        planned_kv_cache_mib=round(fit.kv_cache_gb * 1e9 / MIB, 1) if fit else None,
        rss_mib=None if rss is None else round(rss, 1),
        gpu_mib=None if gpu is None else round(gpu, 1),
        error_pct=error,
        **(engine_sizes(log_path) if pid and resident else {}),  # asleep, its buffers are freed
    )


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds") if seconds else None


def model_extras(
    directory: Path, rows: list[dict[str, Any]], specs: list[Any], plan: Callable[[Any], tuple[float, MemoryFit | None]]
) -> dict[str, dict[str, Any]]:
    """Served name → the residency fields of its ModelState.  ``directory``: the deployment's own
    (status.json, logs/); ``rows``: its model-state rows (state, pid); ``specs``: its servers
    (the first replica's stands for the others); ``plan``: a server's planner estimate."""
    try:
        status = json.loads((directory / "status.json").read_text()).get("models", {})
    except (OSError, ValueError, AttributeError):
        status = {}
    server_of = {name: spec for spec in reversed(specs) for name in spec.names}  # an adapter: its base's server
    extras: dict[str, dict[str, Any]] = {}
    for row in rows:
        name, pid, spec = row["model_name"], row.get("pid"), server_of.get(row["model_name"])
        woke = (status.get(name) or {}).get("residency") or {}
        memory = None
        if pid and spec is not None:
            log_path = directory / "logs" / f"{spec.served_name.replace('/', '_')}.log"
            memory = measured(plan(spec), pid, log_path, row["state"] in ("ACTIVE", "NOT_ANSWERING"))
        extras[name] = {
            "asleep_since": _iso(woke.get("asleep_since")) if row["state"] == "SLEEPING" else None,
            "last_wake_s": None if woke.get("last_wake_s") is None else round(woke["last_wake_s"], 2),
            "last_woke_at": _iso(woke.get("last_woke_at")),
            "memory": memory,
        }
    return extras


def resident_plan(
    spec: DeploymentSpec,
    servers: list[Any],
    memory_gb: Callable[[Any], float],
    cores: int,
    available: int | None,
    shape_name: str,
) -> tuple[Residency, str | None]:
    """How many of the deployment's model servers (one per model, in spec order) may be resident
    together on ``cores`` and the memory ``available`` now (bytes; the share new replicas may take),
    and the sentence a plan shows when it is fewer than all.  A model that cannot fit even alone, or
    pinned ones that cannot fit together, is refused: a 409 when it is the memory free now, a 422
    naming the field when the request itself cannot fit."""
    usable = None if available is None else available * REPLICA_MEMORY_SHARE / 1e9
    sizes = [(len(s.slots), memory_gb(s), bool(m.pinned)) for s, m in zip(servers, spec.models, strict=True)]
    for i, (_, gb, _) in enumerate(sizes):
        if usable is not None and gb > usable:  # the machine now, not the request: a 409 like the replica check
            raise Conflict(
                f"models[{i}] needs about {gb:.1f} GB of RAM, but only {usable:.1f} GB may be used now "
                f"({REPLICA_MEMORY_SHARE:.0%} of what is available): free memory (deactivate a deployment, "
                "stop a kernel) or lower its --max-model-len"
            )
    pinned = sum(p for _, _, p in sizes)
    least = pinned + (pinned < len(sizes))  # the pinned ones, and room for one other to wake
    if spec.max_resident is not None and spec.max_resident < least:
        raise InvalidInput(
            Problem(
                "max_resident",
                f"{spec.max_resident} leaves no room for a model that is not pinned: {pinned} pinned models "
                "are always resident",
                f"use max_resident {least} or more, or pin fewer models",
            )
        )
    if spec.share_cores:  # cores are shared, not a bound: only memory limits who is resident
        cores = max(cores, sum(c for c, _, _ in sizes))
    try:
        found = resident_together(sizes, cores, usable, spec.max_resident)
    except ValueError as exc:
        first = next(i for i, (_, _, p) in enumerate(sizes) if p)
        raise InvalidInput(
            Problem(f"models[{first}].pinned", str(exc), "pin fewer models: a pinned model never sleeps")
        ) from None
    if spec.max_resident is not None and spec.max_resident > found.limit:
        raise InvalidInput(
            Problem(
                "max_resident",
                f"{spec.max_resident} models cannot be resident together here: at most {found.limit} fit "
                f"(by {found.bound})",
                f"use max_resident {found.limit} or fewer, or leave it out",
            )
        )
    if found.limit >= len(servers):
        return found, None
    names = [s.served_name for s, (_, _, p) in zip(servers, sizes, strict=True) if p]
    why = {"cores": f"the cores of {shape_name}", "memory": "the memory available now"}.get(found.bound, "max_resident")
    held = f"{found.cores} {'core' if found.cores == 1 else 'cores'}"
    note = (
        f"at most {found.limit} of its {len(servers)} models are resident together (bound by {why}; it holds "
        f"{held} for them): a request to a sleeping model wakes it, and the least recently used model that is "
        "not pinned goes to sleep first" + (f"; pinned, never asleep: {', '.join(names)}" if names else "")
    )
    return found, note
