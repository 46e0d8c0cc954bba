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

from ...domain import Shape
from ...errors import Conflict

#: states in which a deployment's runtime runs (or is about to) and so holds its slots
HOLDING = ("CREATING", "ACTIVE", "NEEDS_ATTENTION", "UPDATING")
SHARE_ENV = "AQUA_LAB_SHARE_CORES"


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


def slots_of(row: dict, machine: list[int]) -> list[int]:
    """The slots a deployment row owns (a row from before slots were recorded: the first ones it
    used, which is where its runtime pinned it)."""
    recorded = row["record"].get("slots")
    if recorded is not None:
        return list(recorded)
    used = sum(m.get("gpu_count", 1) for m in row["record"].get("models", []))
    return machine[:used]


def holds(rows: Iterable[dict], machine: list[int]) -> list[SlotHold]:
    return [
        SlotHold(deployment_id=r["id"], display_name=r["display_name"], state=r["state"], slots=slots_of(r, machine))
        for r in rows
        if r["state"] in HOLDING
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
