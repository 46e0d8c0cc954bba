"""The plan table's rows for an OCI CPU flex shape: OCPUs and memory per model instead of GPUs."""

from __future__ import annotations

from ..domain import ShapePlan
from .values import number


def flex_rows(shape_name: str, shape_plan: ShapePlan, letters: dict[str, str]) -> list[str]:
    total = shape_plan.total_gpus_available
    memory = sum(m.gpu_memory_in_gbs or 0 for m in shape_plan.models) * total / max(shape_plan.used_gpus, 1)
    cells = "|" + "|".join(letters[o] if o else "·" for o in shape_plan.gpu_owners()) + "|"
    lines = [
        "",
        f"{shape_name}  ({total} OCPUs, {number(round(memory, 1))} GB memory)  "
        f"uses {shape_plan.used_gpus}/{total} OCPUs",
        f"  OCPUs {cells}",
    ]
    for m in shape_plan.models:
        est = " (estimated)" if m.estimated else ""
        need = f"  needs ≈{number(m.estimated_need_in_gbs)} GB" if m.estimated_need_in_gbs else ""
        share = f"{number(m.gpu_memory_in_gbs)} GB" if m.gpu_memory_in_gbs else ""
        lines.append(f"  {letters[m.ocid]} {(m.model_name or m.ocid):<44} {m.gpu_count} OCPU(s)  {share:>7}{est}{need}")
    lines += [f"  note: {note}" for note in shape_plan.notes]
    return lines
