"""OCI CPU flex shapes (``VM.Standard.E4.Flex`` …) as shapes a plan can split.

A flex shape has no GPUs: a deployment picks its OCPUs and memory (``ocpus``/``memory_in_gbs``, sent as
``modelDeploymentInstanceShapeConfigDetails``).  Sized, it becomes a CPU shape whose slots are OCPUs and
whose memory is that RAM — the form the planner already splits for a CPU machine — so OCPUs split between
models and the memory model decides whether the models fit the RAM together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..domain import CapacityInputs, DeploymentSpec, GpuSpec, Shape, machine_words
from ..errors import InvalidInput, Problem
from .shapes import ShapeCatalog, is_gpu_series

#: a flex shape planned without --ocpus/--memory_in_gbs: the seed's example, 8 OCPUs with 16 GB each
DEFAULT_OCPUS = 8
DEFAULT_MEMORY_PER_OCPU_GB = 16


def is_flex_cpu(shape: Shape) -> bool:
    """An OCI CPU flex shape not sized yet (OCI lists it with its largest OCPU count and memory)."""
    return shape.name.upper().endswith(".FLEX") and not is_gpu_series(shape) and shape.gpu_specs is None


def is_sized_flex(shape: Shape | None) -> bool:
    """A flex shape sized for a plan or a request: its OCPUs are the slots models split."""
    return bool(shape is not None and shape.is_cpu and shape.name.upper().endswith(".FLEX"))


def size_problems(shape: Shape, ocpus: float, memory_in_gbs: float) -> list[Problem]:
    """What OCI would refuse of a size: OCPUs are whole, both within what the shape offers."""
    problems = []
    if ocpus != int(ocpus):
        problems.append(Problem("ocpus", f"{ocpus:g} OCPUs: the OCPUs models split are whole", "pass 1, 2, 4, 8 …"))
    if shape.core_count and ocpus > shape.core_count:
        problems.append(
            Problem("ocpus", f"{ocpus:g} OCPUs but {shape.name} offers at most {shape.core_count}", "ask for fewer")
        )
    if shape.memory_in_gbs and memory_in_gbs > shape.memory_in_gbs:
        problems.append(
            Problem(
                "memory_in_gbs",
                f"{memory_in_gbs:g} GB but {shape.name} offers at most {shape.memory_in_gbs:g} GB",
                "ask for less memory",
            )
        )
    return problems


def sized(shape: Shape, ocpus: float, memory_in_gbs: float) -> Shape:
    """``shape`` with ``ocpus`` OCPUs and ``memory_in_gbs`` GB as its slots and RAM."""
    note = f"planned at {ocpus:g} OCPUs and {memory_in_gbs:g} GB of memory (ocpus / memory_in_gbs)"
    return shape.model_copy(
        update={
            "core_count": int(ocpus),
            "memory_in_gbs": memory_in_gbs,
            "gpu_specs": GpuSpec(gpu_count=int(ocpus), gpu_memory_in_gbs=memory_in_gbs, gpu_type="CPU"),
            "notes": [*shape.notes, note],
            "slot_unit": "core",
            "memory_unit": "RAM",
        }
    )


def default_size(shape: Shape, ocpus: float | None, memory_in_gbs: float | None) -> tuple[float, float]:
    """The size asked, else the default (8 OCPUs, 16 GB per OCPU), within what the shape offers."""
    cores = ocpus or min(DEFAULT_OCPUS, shape.core_count or DEFAULT_OCPUS)
    memory = memory_in_gbs or min(cores * DEFAULT_MEMORY_PER_OCPU_GB, shape.memory_in_gbs or float("inf"))
    return cores, memory


def plannable(offered: ShapeCatalog, capacity: CapacityInputs | None) -> tuple[ShapeCatalog, dict[str, list[str]]]:
    """The shapes a plan splits: flex CPU shapes sized when the plan asks for them — OCPUs given, or
    the flex shape alone asked for (``--shape VM.Standard.E4.Flex``); GPU plans stay as they were.
    Also why a flex shape is left out (a size beyond what it offers: OCI's refusal, for the plan's
    ``incompatible_shapes``).  A size where no flex shape is planned is refused, as validation does."""
    flex = [s for s in offered if is_flex_cpu(s)]
    given = [f for f in ("ocpus", "memory_in_gbs") if capacity is not None and getattr(capacity, f)]
    if given and not flex:
        raise InvalidInput(fixed_size_problems(given, next(iter(offered)) if len(offered) == 1 else None))
    asked = bool(given) or (flex and len(offered) == 1)
    if not asked:
        return offered, {}
    ocpus, memory = (capacity.ocpus, capacity.memory_in_gbs) if capacity else (None, None)
    shapes, refused = [], {}
    for shape in offered:
        if is_flex_cpu(shape):
            cores, ram = default_size(shape, ocpus, memory)
            if problems := size_problems(shape, cores, ram):
                refused[shape.name] = [str(p) for p in problems]
                continue
            shape = sized(shape, cores, ram)
        shapes.append(shape)
    return ShapeCatalog(shapes), refused


def fixed_size_problems(given: Sequence[str], shape: Shape | None) -> list[Problem]:
    """``ocpus``/``memory_in_gbs`` size a flex shape (ADS's ``--ocpus``/``--memory_in_gbs``); on any
    other shape (``None``: none of the shapes asked about) OCI ignores them or refuses, so they are
    refused, saying why."""
    if shape is not None and shape.name.upper().startswith("LOCAL."):
        what = f"{shape.name} is this machine: its cores and memory are what it has"
        fix = "leave them out (the local platform sizes models from the machine), or deploy on OCI on a flex shape"
    else:
        what = (
            f"{shape.name} is not a flex shape: its OCPUs and memory are fixed"
            if shape is not None
            else "none of the shapes asked about is a flex shape"
        )
        fix = "leave them out, or choose a flex shape (a name ending in .Flex, e.g. VM.Standard.E4.Flex)"
    return [Problem(field, f"only a flex shape takes it; {what}", fix) for field in given]


def too_few_ocpus(total: int, shape: Shape, most: int | None, updating: bool) -> Problem:
    """The models' OCPUs (their gpu_count) beyond the size asked of ``shape`` (sized), with advice the
    request can follow: an update keeps its deployment's OCPUs, and no size goes beyond ``most``."""
    asked = shape.gpu_count
    lower = f"lower some gpu_count so they add up to at most {asked}"
    limit = f"{shape.name} offers at most {most} OCPUs" if most else ""
    bigger = min(total, most) if most else total
    if updating:
        fix = f"{lower} (an update keeps the deployment's OCPUs), or create a new deployment with --ocpus {bigger}"
        fix += f" (REST: ocpus; {limit})" if limit else " (REST: ocpus)"
    elif most is None or total <= most:
        fix = f"pass --ocpus {total} (REST: ocpus), or {lower}"
    else:
        fix = f"{lower}, or up to {most} with --ocpus {most} (REST: ocpus): {limit}"
    return Problem("ocpus", f"the models need {total} OCPUs (their gpu_count) but {asked} are asked", fix)


def ram_refusal(shape: Shape, needs_gb: Sequence[float | None]) -> str | None:
    """Why models do not fit a sized flex shape's memory together (they share its RAM), else None."""
    if not is_sized_flex(shape) or not shape.memory_in_gbs:
        return None
    need = sum(n for n in needs_gb if n)
    if need <= shape.memory_in_gbs:
        return None
    return (
        f"the models need about {need:.1f} GB of memory together but {shape.memory_in_gbs:g} GB is asked "
        f"(memory_in_gbs); ask for more memory or fewer models"
    )


_CORE = [
    (re.compile(r"\bcore\(s\)"), "OCPU(s)"),
    (re.compile(r"\bcores\b"), "OCPUs"),
    (re.compile(r"\bcore\b"), "OCPU"),
]


def ocpu_words(text: str, shape: Shape | None) -> str:
    """``text`` in the words of a sized flex shape: its slots are OCPUs and its memory RAM."""
    if not is_sized_flex(shape) or not text:
        return text
    text = machine_words(text, shape)
    for pattern, word in _CORE:
        text = pattern.sub(word, text)
    return text


def for_request(shape: Shape, spec: DeploymentSpec) -> tuple[Shape | None, DeploymentSpec, list[Problem], list[str]]:
    """A deployment request on a flex CPU shape: the shape sized by its ``ocpus``/``memory_in_gbs``
    (the default size when it gives neither, said in a warning), and the request with the size it
    sends; None and the problems when OCI would refuse the size."""
    ocpus, memory = default_size(shape, spec.ocpus, spec.memory_in_gbs)
    problems = size_problems(shape, ocpus, memory)
    if problems:
        return None, spec, problems, []
    warnings = []
    if spec.ocpus is None or spec.memory_in_gbs is None:
        warnings.append(
            f"{shape.name} is a flex shape: deployed with {ocpus:g} OCPUs and {memory:g} GB of memory "
            "(pass ocpus and memory_in_gbs for another size)"
        )
    return sized(shape, ocpus, memory), spec.model_copy(update={"ocpus": ocpus, "memory_in_gbs": memory}), [], warnings
