"""A model that does not fit the memory asked of a CPU flex shape: the fault is ``memory_in_gbs``, and
the fix names the least memory the memory model fits it in, within what the shape offers (a request
can follow that; another shape is the fix only when no size of this one holds it)."""

from __future__ import annotations

from ..domain import ModelInput, Shape
from ..errors import Problem
from .cpu_shapes import sized
from .resolve import model_candidates


def _fits(model: ModelInput, shape: Shape, memory_gb: float, alone: bool) -> bool:
    return bool(model_candidates(model, sized(shape, shape.gpu_count, memory_gb), alone).counts)


def least_memory_gb(model: ModelInput, shape: Shape, most_gb: float | None, alone: bool) -> int | None:
    """The least whole GB above what ``shape`` (sized) has that holds ``model``; None beyond ``most_gb``."""
    low, high = int(shape.memory_in_gbs or 0) + 1, int(most_gb or 0)
    if high < low or not _fits(model, shape, high, alone):
        return None
    while low < high:  # the memory model's need grows with nothing but the memory given: bisect it
        middle = (low + high) // 2
        low, high = (low, middle) if _fits(model, shape, middle, alone) else (middle + 1, high)
    return low


def memory_problem(
    model: ModelInput, shape: Shape, most_gb: float | None, alone: bool, reason: str | None, updating: bool
) -> Problem:
    what = reason or f"model {model.name!r} does not fit in {shape.memory_in_gbs:g} GB of memory"
    need = least_memory_gb(model, shape, most_gb, alone)
    if need is None:
        beyond = f"{shape.name} offers at most {most_gb:g} GB" if most_gb else f"{shape.name} cannot hold it"
        return Problem("memory_in_gbs", what, f"{beyond}, which does not hold it either: choose a GPU shape")
    at_least = f"at least {need} GB ({shape.name} offers up to {most_gb:g} GB)"
    if updating:  # an update keeps the deployment's size
        fix = f"create a new deployment with memory_in_gbs of {at_least}, or deploy a smaller model"
        return Problem("memory_in_gbs", what, fix)
    return Problem("memory_in_gbs", what, f"raise memory_in_gbs to {at_least}")
