"""Config resolution for N models: where can they run together, and how do the GPUs split.

Pure: handed the models (with their configs) and the shapes a platform offers, it returns a
:class:`~aqua_lab.domain.Plan`.  A shape is compatible when the platform offers it, every model
may run on it in a multi-model deployment (a ``multi_model_deployment`` entry, or a memory estimate
for models that have no entries at all), and :func:`allocate` finds a split.  Every other shape gets
the reasons it is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..domain import (
    CapacityInputs,
    DeploymentConfig,
    MemoryFit,
    ModelInput,
    Plan,
    PlanAlternative,
    PlannedModel,
    Shape,
    ShapePlan,
)
from ..errors import InvalidInput, Problem
from . import params as P
from .allocate import allocate, is_power_of_two, primary_problem
from .architectures import tensor_parallel_problem
from .capacity import LLAMA_CPP, VLLM, config_flags, fits_somewhere, memory_fit, suggestion
from .configs import parameters_for
from .cpu_shapes import is_sized_flex, ocpu_words, plannable, ram_refusal
from .shapes import ShapeCatalog, is_gpu_series, shape_order
from .sizing import estimate_counts, estimated_need_gb

NO_COMMON_SHAPE = (
    "The selected models do not share any available common deployment shapes. Please ensure that "
    "all chosen models are compatible for multi-model deployment."
)
NO_FLEX_FIT = (
    "The selected models do not fit the OCPUs and memory asked of the flex shape. "
    "See incompatible_shapes for the reason on each shape."
)
NO_ALLOCATION = (
    "The selected models do not have a valid GPU allocation on any shape they share. "
    "See incompatible_shapes for the reason on each shape."
)


@dataclass(frozen=True)
class Candidates:
    """A model's allowed GPU counts on one shape, with the memory each count gives."""

    counts: list[int]
    estimated: bool = False
    need_gb: float | None = None
    reason: str | None = None  # why there are none
    fits: dict[int, MemoryFit] = field(default_factory=dict)
    suggestions: dict[int, str] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)  # count → the tensor-parallel rule it breaks


def model_candidates(
    model: ModelInput, shape: Shape, alone: bool = False, capacity: CapacityInputs | None = None
) -> Candidates:
    """Allowed counts for ``model`` on ``shape``.  ``alone``: the model is deployed by itself, so a
    shape in its config's single-model ``shape`` list lets it take the whole shape (as ADS does).
    Counts that break vLLM's tensor-parallel rule are rejected wherever they come from; a model
    without config entries gets the counts whose memory holds it (:mod:`.capacity`)."""
    config = model.config
    whole = alone and config is not None and shape.name in config.shape and shape.gpu_count > 0
    # a GPU config's entries say nothing of a CPU flex shape: its models are sized by memory instead
    gpu_only = is_sized_flex(shape) and config is not None and shape.name not in config.configuration
    if config is not None and config.has_multi_model_entries() and not gpu_only:
        entry = config.configuration.get(shape.name)
        counts = [e.gpu_count for e in entry.multi_model_deployment] if entry else []
        if whole and shape.gpu_count not in counts:
            counts.append(shape.gpu_count)
        if not counts:
            covered = sorted(s for s, c in config.configuration.items() if c.multi_model_deployment)
            return Candidates(
                [],
                reason=f"model {model.name!r} has no multi_model_deployment entry for this shape "
                f"(its config covers {covered})",
            )
        return _with_memory(model, shape, counts, capacity, estimated=False)
    if whole:
        return _with_memory(model, shape, [shape.gpu_count], capacity, estimated=False)
    arch = model.architecture
    if arch is None or arch.missing() or not shape.per_gpu_memory_in_gbs:
        estimate = estimate_counts(model.parameter_count_b, shape)
        reason = f"model {model.name!r} {estimate.reason}" if estimate.reason else None
        return Candidates(estimate.counts, estimated=True, need_gb=estimate.need_gb, reason=reason)
    powers = [g for g in range(1, shape.gpu_count + 1) if is_power_of_two(g)]
    if is_cpu(shape) and not is_sized_flex(shape):
        powers = [shape.gpu_count]  # llama.cpp threads share one copy of the model in RAM
    found = _with_memory(model, shape, powers, capacity, estimated=True)
    sized = [c for c in found.counts if c in found.fits]  # a precision the facts cannot size leaves none
    fitting = [c for c in sized if found.fits[c].fits]
    if not fitting and (capacity is None or capacity.max_model_len is None):
        fitting = [c for c in sized if fits_somewhere(found.fits[c])]
    if fitting:
        first = found.fits[fitting[0]]
        return replace(found, counts=fitting, need_gb=_share_need(first))
    best = found.fits[sized[-1]] if sized else None
    if best is not None:
        why = "; ".join(best.reasons)
    elif found.counts:
        why = f"its size at weight precision {capacity and capacity.weight_precision!r} is unknown (no parameter count)"
    else:
        why = "no tensor-parallel size is valid for its heads"
    # a flex shape's OCPUs share the memory asked of it: a per-OCPU share would mislead
    where = (
        f"in {shape.memory_in_gbs:g} GB of memory ({shape.gpu_count} OCPUs)"
        if is_sized_flex(shape)
        else f"on {shape.gpu_count} GPUs of {shape.per_gpu_memory_in_gbs:g} GB"
    )
    return replace(found, counts=[], reason=f"model {model.name!r} does not fit {where}: {why}")


def _share_need(fit: MemoryFit) -> float:
    """What the model needs across all the GPUs it gets (comparable to ``gpu_memory_in_gbs``)."""
    return round(fit.per_gpu_gb * fit.tensor_parallel_size, 2)


def is_cpu(shape: Shape) -> bool:
    return bool(shape.gpu_specs and shape.gpu_specs.gpu_type == "CPU")


def _with_memory(
    model: ModelInput, shape: Shape, counts: list[int], capacity: CapacityInputs | None, estimated: bool
) -> Candidates:
    """Drop counts that break the tensor-parallel rule; the memory of each count that is left."""
    arch = model.architecture
    per_gpu = shape.per_gpu_memory_in_gbs
    cpu = is_cpu(shape)
    kept, rejected, fits, suggestions = [], {}, {}, {}
    for count in counts:
        problem = None if cpu else tensor_parallel_problem(arch, count)
        if problem:
            rejected[count] = problem
            continue
        kept.append(count)
        if arch is None or arch.missing() or not per_gpu:
            continue
        flags = config_flags(_params_text(model, shape, count))
        engine, tp, memory = (LLAMA_CPP, 1, shape.gpu_specs.gpu_memory_in_gbs) if cpu else (VLLM, count, per_gpu)
        fit = memory_fit(arch, tp, memory, capacity, flags, engine)
        if fit is not None:
            fits[count] = fit
            hint = suggestion(arch, fit, memory, capacity, flags, engine)
            if hint:
                suggestions[count] = hint
    need = None
    if not fits and model.parameter_count_b:
        need = estimated_need_gb(model.parameter_count_b)
    reason = None
    if not kept:
        reason = f"model {model.name!r}: " + "; ".join(f"{c} GPUs rejected: {why}" for c, why in rejected.items())
    return Candidates(kept, estimated, need, reason, fits, suggestions, rejected)


def memory_warnings(model: ModelInput, shape: Shape, count: int, params: str, where: str) -> list[str]:
    """A deployment request's model on ``count`` GPUs with the flags it will be started with: what
    the memory model says when it does not fit (vLLM would fail at start-up)."""
    arch = model.architecture
    per_gpu = shape.per_gpu_memory_in_gbs
    if arch is None or arch.missing() or not per_gpu:
        return []
    cpu = is_cpu(shape)
    engine, tp, memory = (LLAMA_CPP, 1, shape.gpu_specs.gpu_memory_in_gbs) if cpu else (VLLM, count, per_gpu)
    flags = config_flags(params)
    fit = memory_fit(arch, tp, memory, None, flags, engine)
    if fit is None or fit.fits:
        return []
    hint = suggestion(arch, fit, memory, None, flags, engine)
    fix = f"; pass {hint}" if hint else "; give it more GPUs or a smaller precision"
    return [f"{where}: {model.name!r} on {count} GPU(s) of {shape.name}: " + "; ".join(fit.reasons) + fix]


def _params_text(model: ModelInput, shape: Shape, count: int) -> str:
    return " ".join(parameters_for(model.config, shape.name, count).values())


def allocation_keys(models: Sequence[ModelInput]) -> list[str]:
    """Unique keys for :func:`allocate`: the model id, suffixed when the same model appears twice."""
    seen: dict[str, int] = {}
    keys = []
    for m in models:
        n = seen.get(m.model_id, 0)
        seen[m.model_id] = n + 1
        keys.append(m.model_id if n == 0 else f"{m.model_id}#{n + 1}")
    return keys


def plan(
    models: Sequence[ModelInput],
    offered: ShapeCatalog,
    primary_model_id: str | None = None,
    capacity: CapacityInputs | None = None,
) -> Plan:
    """Resolve configs and allocate GPUs on every shape ``offered`` (with GPU specs filled in);
    ``capacity`` holds the what-if inputs of the memory model."""
    if not models:
        raise InvalidInput(Problem("model_ids", "no models given", "pass one or more model ids"))
    ids = [m.model_id for m in models]
    problem = primary_problem(primary_model_id, ids)
    if problem:
        raise InvalidInput(problem)

    offered, oversized = plannable(offered, capacity)
    keys = allocation_keys(models)
    primary_key = keys[ids.index(primary_model_id)] if primary_model_id else None
    alone = len(models) == 1
    result = Plan(
        deployment_config={m.model_id: m.config or DeploymentConfig() for m in models},
        gpu_allocation={},
        primary_model_id=primary_model_id,
        capacity=capacity or CapacityInputs(),
    )
    shared_somewhere = False
    estimated: set[str] = set()

    for shape in _shapes_to_consider(models, offered):
        if shape.name not in offered:
            result.incompatible_shapes[shape.name] = ["not offered by this platform (region/compartment)"]
            continue
        if shape.gpu_count == 0:  # an offered GPU shape whose GPU count nothing tells
            result.incompatible_shapes[shape.name] = list(shape.notes)
            continue
        per_model = [model_candidates(m, shape, alone, capacity) for m in models]
        for m, c in zip(models, per_model, strict=True):
            if not c.estimated:
                result.warnings += [
                    f"model {m.name!r}: its config allows {n} GPUs on {shape.name}, which vLLM refuses ({why})"
                    for n, why in c.rejected.items()
                ]
        if is_sized_flex(shape):  # a config's GPU entries do not apply here: say so per shape, not per model
            result.warnings += [
                f"model {m.name!r}: its OCPUs and memory on {shape.name} are estimated by the memory model"
                for m, c in zip(models, per_model, strict=True)
                if c.estimated
            ]
        else:
            estimated.update(m.model_id for m, c in zip(models, per_model, strict=True) if c.estimated)
        missing = [c.reason for c in per_model if not c.counts]
        if missing:
            result.incompatible_shapes[shape.name] = [r for r in missing if r]
            continue
        shared_somewhere = True
        outcome = allocate(shape.gpu_count, dict(zip(keys, (c.counts for c in per_model), strict=True)), primary_key)
        rejected = [
            f"model {models[keys.index(k)].name!r}: GPU count(s) {bad} ignored (powers of two up to "
            f"{shape.gpu_count} only)"
            for k, bad in outcome.rejected_counts.items()
        ]
        if not outcome.fits:
            result.incompatible_shapes[shape.name] = [_named(r, keys, models) for r in outcome.reasons] + rejected
            continue
        shape_plan = _shape_plan(shape, models, keys, per_model, outcome, rejected)
        over = ram_refusal(shape, [m.estimated_need_in_gbs for m in shape_plan.models])
        if over:
            result.incompatible_shapes[shape.name] = [over]
            continue
        result.gpu_allocation[shape.name] = _in_ocpus(shape, shape_plan)

    result.incompatible_shapes.update(oversized)  # OCI's own refusal of the size, not "not offered"
    for m in models:
        if m.model_id in estimated and m.model_id not in result.estimated_models:
            result.estimated_models.append(m.model_id)
            result.warnings.append(_estimate_warning(m))
    for name, reasons in result.incompatible_shapes.items():
        reasons[:] = [ocpu_words(r, offered.find(name)) for r in reasons]
    result.warnings = list(dict.fromkeys(result.warnings))
    if not result.gpu_allocation:
        tried = [n for n in result.incompatible_shapes if n in offered or n in oversized]  # not "not offered"
        if tried and all(n in oversized or is_sized_flex(offered.find(n)) for n in tried):  # OCPUs/memory short
            result.error_message = NO_FLEX_FIT
        else:
            result.error_message = NO_ALLOCATION if shared_somewhere else NO_COMMON_SHAPE
    return result


def _in_ocpus(shape: Shape, shape_plan: ShapePlan) -> ShapePlan:
    """A sized flex shape's plan says OCPUs and memory, not GPUs."""
    if not is_sized_flex(shape):
        return shape_plan
    shape_plan.slot_unit = "OCPU"
    shape_plan.notes[:] = [ocpu_words(n, shape) for n in shape_plan.notes]
    return shape_plan


def _estimate_warning(m: ModelInput) -> str:
    arch = m.architecture
    if arch is not None and not arch.missing():
        return (
            f"model {m.name!r} has no multi-model deployment config; its GPU counts are estimated from "
            f"its architecture ({arch.source or 'facts given'}) by the memory model — check before deploying"
        )
    size = f"≈{m.parameter_count_b:g}B parameters" if m.parameter_count_b else "size unknown"
    missing = ", ".join(arch.missing()) if arch is not None else "its architecture"
    return (
        f"model {m.name!r} has no multi-model deployment config and {missing} unknown; its GPU counts are "
        f"estimated at 2 bytes per parameter ({size}) — check before deploying"
    )


def _sent_parameters(model: ModelInput, shape: Shape, count: int, notes: list[str] | None = None) -> dict[str, str]:
    """The config's parameters for this count as they will be sent: flags aqua_lab owns dropped."""
    parameters = parameters_for(model.config, shape.name, count)
    for key, text in parameters.items():
        if key.endswith("PARAMS"):
            parameters[key], dropped = P.without_owned(text)
            for flag in dropped if notes is not None else []:
                notes.append(f"model {model.name!r}: config default {flag.name} dropped ({P.owned_reason(flag)})")
    return parameters


def _planned(shape, models, keys, per_model, gpu_counts, notes: list[str] | None = None) -> list[PlannedModel]:
    per_gpu = shape.per_gpu_memory_in_gbs
    planned = []
    for model, key, cands in zip(models, keys, per_model, strict=True):
        count = gpu_counts[key]
        fit = cands.fits.get(count)
        planned.append(
            PlannedModel(
                ocid=model.model_id,
                gpu_count=count,
                model_name=model.name,
                estimated=cands.estimated,
                parameters=_sent_parameters(model, shape, count, notes),
                gpu_memory_in_gbs=round(count * per_gpu, 1) if per_gpu else None,
                estimated_need_in_gbs=_share_need(fit) if fit else cands.need_gb,
                memory=fit,
                suggested_parameters=cands.suggestions.get(count),
            )
        )
    return planned


def _shape_plan(shape, models, keys, per_model, outcome, notes) -> ShapePlan:
    dropped: list[str] = []
    planned = _planned(shape, models, keys, per_model, outcome.gpu_counts, dropped)
    alternatives = []
    for alt in outcome.alternatives:
        above = [models[keys.index(k)] for k in alt.above_primary]
        primary_name = models[keys.index(outcome.primary_model_id)].name
        alternatives.append(
            PlanAlternative(
                models=_planned(shape, models, keys, per_model, alt.gpu_counts),
                used_gpus=alt.used_gpus,
                adds_gpus=alt.adds_gpus,
                above_primary=[m.model_id for m in above],
                note=f"fills {alt.used_gpus} of {shape.gpu_count} GPUs (+{alt.adds_gpus}) but "
                + ", ".join(repr(m.name) for m in above)
                + f" then get(s) more GPUs than the primary {primary_name!r}",
            )
        )
    memory_notes = [
        f"model {(m.model_name or m.ocid)!r} at {m.gpu_count} GPU(s): " + "; ".join(m.memory.reasons)
        for m in planned
        if m.memory is not None and not m.memory.fits
    ]
    notes = [*shape.notes, *notes, *dict.fromkeys(dropped), *memory_notes, *_ram_note(shape, planned)]
    if alternatives:
        notes.append(
            f"uses {outcome.used_gpus} of {shape.gpu_count} GPUs so that the primary model gets the most; "
            "see alternatives for a split that fills more"
        )
    elif outcome.used_gpus < shape.gpu_count:
        notes.append(f"uses {outcome.used_gpus} of {shape.gpu_count} GPUs: no allowed split fills the shape")
    notes += [_named(r, keys, models) for r in outcome.reasons]
    return ShapePlan(
        models=planned,
        total_gpus_available=shape.gpu_count,
        used_gpus=outcome.used_gpus,
        primary_model_id=outcome.primary_model_id and models[keys.index(outcome.primary_model_id)].model_id,
        primary_honoured=outcome.primary_honoured,
        notes=notes,
        alternatives=alternatives,
    )


def _ram_note(shape: Shape, planned: list[PlannedModel]) -> list[str]:
    """On a CPU machine every model's weights and cache share one RAM."""
    fits = [m.memory for m in planned if m.memory is not None]
    if not is_cpu(shape) or not fits:
        return []
    need = sum(f.per_gpu_gb for f in fits)
    usable = fits[0].gpu_memory_gb
    if need <= usable:
        return []
    return [f"the models need {need:.1f} GB of RAM together but this machine gives {usable:.1f} GB"]


def _named(reason: str, keys: list[str], models: Sequence[ModelInput]) -> str:
    """Allocator reasons quote allocation keys; users know models by name."""
    for key, model in sorted(zip(keys, models, strict=True), key=lambda p: -len(p[0])):
        reason = reason.replace(repr(key), repr(model.name))
    return reason


def _shapes_to_consider(models: Sequence[ModelInput], offered: ShapeCatalog) -> list[Shape]:
    """Offered GPU shapes, then shapes a config names that the platform does not offer."""
    shapes = {s.name: s for s in offered if s.gpu_count > 0 or (s.notes and is_gpu_series(s))}
    for m in models:
        if m.config is None:
            continue
        for name, entry in m.config.configuration.items():
            if entry.multi_model_deployment and name not in offered and name not in shapes:
                shapes[name] = Shape(name=name)
    return sorted(shapes.values(), key=shape_order)


__all__ = ["plan", "model_candidates", "memory_warnings", "Candidates", "allocation_keys", "is_power_of_two"]
