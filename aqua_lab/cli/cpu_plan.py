"""The plan table's rows for an OCI CPU flex shape: OCPUs and memory per model instead of GPUs."""

from __future__ import annotations

from ..domain import ShapePlan
from .values import number


def flex_rows(shape_name: str, shape_plan: ShapePlan, labels: list[str], cells: str) -> list[str]:
    """``labels``: each model's letter, in order; ``cells``: the OCPUs drawn with them."""
    total = shape_plan.total_gpus_available
    memory = sum(m.gpu_memory_in_gbs or 0 for m in shape_plan.models) * total / max(shape_plan.used_gpus, 1)
    lines = [
        "",
        f"{shape_name}  ({total} OCPUs, {number(round(memory, 1))} GB memory)  "
        f"uses {shape_plan.used_gpus}/{total} OCPUs",
        f"  OCPUs {cells}",
    ]
    for label, m in zip(labels, shape_plan.models, strict=True):
        est = " (estimated)" if m.estimated else ""
        need = f"  needs ≈{number(m.estimated_need_in_gbs)} GB" if m.estimated_need_in_gbs else ""
        share = f"{number(m.gpu_memory_in_gbs)} GB" if m.gpu_memory_in_gbs else ""
        lines.append(f"  {label} {(m.model_name or m.ocid):<44} {m.gpu_count} OCPU(s)  {share:>7}{est}{need}")
    lines += [f"  note: {note}" for note in shape_plan.notes]
    return lines
