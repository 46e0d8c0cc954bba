"""What this machine's live deployments hold, so that a new one gets what is free.

Each local deployment owns a set of slots — cores on a CPU machine, GPUs otherwise — recorded with
it when it is created (or activated again), and holds them while its runtime runs.  Plans see the
free slots only; a create that needs more than is free is refused with the deployments that hold
them and how to free them, unless the platform was asked to share (``AQUA_LAB_SHARE_CORES=1``), in
which case the new deployment is pinned onto busy slots and its warnings say with whom it shares.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ...domain import CapacityInputs, MemoryFit, Shape
from ...errors import Conflict, InvalidInput, Problem
from ...planning.capacity import LLAMA_CPP as PLANNED_LLAMA_CPP
from ...planning.capacity import OVERHEAD_GB, config_flags, memory_fit
from .engines import PROMPT_CACHE_MIB
from .store import DeploymentRecord

#: states in which a deployment's runtime runs (or is about to) and so holds its slots
HOLDING = ("CREATING", "ACTIVE", "NEEDS_ATTENTION", "UPDATING")
SHARE_ENV = "AQUA_LAB_SHARE_CORES"
MAX_REPLICAS_ENV = "AQUA_LAB_MAX_REPLICAS"
DEFAULT_MAX_REPLICAS = 8
#: of the memory available now, what new replicas may take: the rest stays for notebooks and kernels
REPLICA_MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class SlotHold:
    deployment_id: str
    display_name: str
    state: str
    slots: list[int]


def share_requested() -> bool:
    return os.environ.get(SHARE_ENV, "").strip().lower() in ("1", "true", "yes")


def unit(shape: Shape, count: int = 2) -> str:
    return shape.unit(count)


def slots_of(record: dict, machine: list[int]) -> list[int]:
    """The slots a deployment owns, from its record (one from before slots were recorded: the first
    ones it used, which is where its runtime pinned it)."""
    recorded = record.get("slots")
    if recorded is not None:
        return list(recorded)
    used = sum(m.get("gpu_count", 1) for m in record.get("models", []))
    return machine[:used]


def holds(rows: Iterable[DeploymentRecord], machine: list[int]) -> list[SlotHold]:
    return [
        SlotHold(deployment_id=r.id, display_name=r.display_name, state=r.state, slots=slots_of(r.record, machine))
        for r in rows
        if r.state in HOLDING
    ]


def free_slots(machine: list[int], held: Iterable[SlotHold]) -> list[int]:
    busy = {s for h in held for s in h.slots}
    return [s for s in machine if s not in busy]


def free_shape(shape: Shape, machine: list[int], held: list[SlotHold]) -> Shape:
    """The machine as plans should see it: only its free slots (and their share of memory)."""
    free = len(free_slots(machine, held))
    if not held or shape.gpu_specs is None:
        return shape
    total = shape.gpu_specs.gpu_count or 1
    memory = shape.gpu_specs.gpu_memory_in_gbs
    specs = shape.gpu_specs.model_copy(
        update={"gpu_count": free, "gpu_memory_in_gbs": None if memory is None else round(memory * free / total, 1)}
    )
    return shape.model_copy(update={"gpu_specs": specs, "notes": [*shape.notes, held_note(shape, held)]})


def held_note(shape: Shape, held: list[SlotHold]) -> str:
    parts = [
        f"{h.display_name!r} ({h.deployment_id}, {h.state}) holds {unit(shape, len(h.slots))} {_list(h.slots)}"
        for h in held
    ]
    return f"{shape.name}: " + "; ".join(parts)


def take(
    shape: Shape, machine: list[int], held: list[SlotHold], needed: int, share: bool
) -> tuple[list[int], list[str]]:
    """The slots a new deployment gets, and the warnings to give it.  Refused (409) when fewer than
    ``needed`` are free and sharing was not asked for."""
    free = free_slots(machine, held)
    if len(free) >= needed:
        return free[:needed], []
    if not share:
        raise Conflict(refusal(shape, machine, held, needed, free))
    # sharing: the free slots first, then the least busy of the held ones
    load = {s: sum(s in h.slots for h in held) for s in machine}
    chosen = free + sorted((s for s in machine if s not in free), key=lambda s: (load[s], s))[: needed - len(free)]
    chosen = sorted(chosen[:needed])
    sharers = [h for h in held if set(h.slots) & set(chosen)]
    names = ", ".join(f"{h.display_name!r} ({h.deployment_id})" for h in sharers)
    shared = sorted(set(chosen) - set(free))
    return chosen, [f"shares {unit(shape, len(shared))} {_list(shared)} with {names} ({SHARE_ENV}=1): each runs slower"]


def refusal(shape: Shape, machine: list[int], held: list[SlotHold], needed: int, free: list[int]) -> str:
    holders = "; ".join(
        f"{h.display_name!r} ({h.deployment_id}, {h.state}) holds {unit(shape, len(h.slots))} {_list(h.slots)}"
        for h in held
    )
    return (
        f"this deployment needs {needed} {unit(shape, needed)} but only {len(free)} of {shape.name}'s "
        f"{len(machine)} are free: {holders}. Delete or deactivate one of them to free its "
        f"{unit(shape)}, ask for fewer, or set {SHARE_ENV}=1 to share them (each deployment runs slower)"
    )


def _list(slots: list[int]) -> str:
    return ", ".join(str(s) for s in slots)


@contextmanager
def reserving(data_dir: Path) -> Iterator[None]:
    """One create or activate at a time picks slots (two processes must not take the same free ones)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "capacity.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# replicas -----------------------------------------------------------------------------------------


def max_replicas() -> int:
    """The hard cap on a local deployment's replicas (``AQUA_LAB_MAX_REPLICAS``, default 8)."""
    try:
        return max(1, int(os.environ.get(MAX_REPLICAS_ENV, "").strip() or DEFAULT_MAX_REPLICAS))
    except ValueError:
        return DEFAULT_MAX_REPLICAS


def replica_cap_problem(count: int) -> InvalidInput | None:
    """A count above the cap is refused before anything is built for it (422)."""
    cap = max_replicas()
    if count <= cap:
        return None
    return InvalidInput(
        Problem(
            "instance_count",
            f"{count} replicas is above the local platform's limit of {cap} ({MAX_REPLICAS_ENV})",
            f"use at most {cap}: each replica is one more llama-server with its own memory; "
            f"raise {MAX_REPLICAS_ENV} where this machine can hold more",
        )
    )


def available_memory_bytes() -> int | None:
    """Memory that can be used now: the kernel's MemAvailable, or less where this process's cgroup
    caps it (a memory-capped container or notebook session)."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        group = Path("/proc/self/cgroup").read_text().strip().splitlines()[-1].split(":", 2)[2]
        base = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((base / "memory.current").read_text()))
    except (OSError, ValueError, IndexError):
        pass
    return max(0, min(found)) if found else None


def replica_refusal(
    count: int,
    fewest_cores: tuple[str, int],
    per_replica_gb: float,
    running: int,
    share: bool,
    available: int | None,
) -> Conflict | None:
    """Why this machine cannot run ``count`` replicas now (409), or None.  ``fewest_cores``: the
    model server with the fewest cores and how many it has; ``running``: replicas of this deployment
    that run now (their memory comes back when it restarts with the new count)."""
    if count <= 1:
        return None  # one copy is what the plan checked
    name, cores = fewest_cores
    if count > cores and not share:
        return Conflict(
            f"{count} replicas need a core each, but {name!r} has {cores}: replicas beyond its cores would "
            f"share them and only slow each other down. Use instance_count {cores} or fewer, give the model "
            f"more cores (gpu_count), or set {SHARE_ENV}=1 to let replicas share cores"
        )
    if available is None:
        return None
    usable = available * REPLICA_MEMORY_SHARE / 1e9 + running * per_replica_gb
    need = count * per_replica_gb
    if need <= usable:
        return None
    fit = int(usable // per_replica_gb) if per_replica_gb else count
    return Conflict(
        f"{count} replicas need about {need:.1f} GB of RAM ({per_replica_gb:.2f} GB each: the weights, KV cache "
        f"and buffers of every model server) but only {usable:.1f} GB may be used now "
        f"({REPLICA_MEMORY_SHARE:.0%} of the {available / 1e9:.1f} GB available, the rest kept for notebooks and "
        f"kernels). Use instance_count {max(1, fit)} or fewer, free memory (deactivate a deployment, stop "
        "a kernel), or lower the models' --max-model-len or --max-num-seqs"
    )


def replica_memory_gb(specs: Iterable, architecture_of, machine_gb: float) -> float:
    """RAM one replica takes: for each of its model servers, what the capacity planner counts (weights,
    KV cache for the server's own slots and context, compute buffers) plus the prompt cache llama-server
    may fill; a model whose architecture is unknown counts its file."""
    cache_gb = PROMPT_CACHE_MIB * 2**20 / 1e9
    return sum(server_memory_fit(spec, architecture_of, machine_gb)[0] + cache_gb for spec in specs)


def server_memory_fit(spec, architecture_of, machine_gb: float) -> tuple[float, MemoryFit | None]:
    """What the capacity planner counts for one model server (GB): weights, KV cache for its own slots
    and context, compute buffers, with the planner's breakdown when the architecture is known (else
    the file's size and the engine's overhead)."""
    arch = architecture_of(spec.model_id)
    args = spec.llama_args
    if arch is not None and not arch.missing():
        inputs = CapacityInputs(concurrency=args.slots)
        flags = config_flags(" ".join(args.args))  # a --ubatch-size sizes the compute buffer
        fit = memory_fit(arch, 1, machine_gb, inputs, flags, PLANNED_LLAMA_CPP, max_model_len=args.context)
        if fit is not None:
            return fit.per_gpu_gb, fit
    try:
        return os.path.getsize(spec.model_path) / 1e9 + OVERHEAD_GB[PLANNED_LLAMA_CPP], None
    except OSError:
        return OVERHEAD_GB[PLANNED_LLAMA_CPP], None
