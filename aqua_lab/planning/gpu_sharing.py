"""Several models on one GPU, for platforms whose engines can be held to a memory budget (the local
platform; a BYOC container could be): a pass over a plan after the whole-GPU split of :mod:`.resolve`.

A GPU shape the whole-GPU split could not hold (more models than GPUs, or counts that do not add up) is
packed by :func:`~.allocate.pack_shared`: each model keeps its smallest allowed GPU count (the primary
the smallest count at least every other model's, DESIGN.md's primary rule), its need per GPU comes from
the memory model for the engine that will run it, and that need becomes its budget — flags in its
parameters that the engine cannot exceed (:func:`~.capacity.budget_flags`: llama.cpp's context, slots
and batch sizes; vLLM's ``--kv-cache-memory-bytes``), so neither start order nor the engine's own sizing
decides who gets the memory.  Shapes the whole-GPU split holds are left as they were: nothing shares
that need not.  Platforms that give whole GPUs (OCI's AQUA container) get :func:`whole_gpus_only`,
which says where sharing would have helped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..domain import (
    CapacityInputs,
    DeploymentSpec,
    MemoryFit,
    ModelInput,
    Plan,
    PlannedModel,
    ResolvedModel,
    Shape,
    ShapePlan,
)
from ..errors import Problem
from . import params as P
from .allocate import SHARING_IS_LOCAL, SharedPlacement, pack_shared
from .capacity import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    FALLBACK_CONTEXT,
    VLLM,
    VLLM_MEASURED,
    budget_flags,
    config_flags,
    memory_fit,
)
from .configs import parameters_for
from .resolve import Candidates, _named, _planned, allocation_keys, is_cpu, model_candidates
from .shapes import ShapeCatalog

MORE_MODELS_THAN_GPUS = "need at least one GPU each"


def share_gpus(
    plan: Plan,
    models: Sequence[ModelInput],
    offered: ShapeCatalog,
    engine: str,
    params_key: str,
    capacity: CapacityInputs | None = None,
) -> Plan:
    """``plan`` with every offered GPU shape it could not hold packed with shared GPUs where that fits.
    ``engine`` is the memory model's engine for the budgets (``llama.cpp-cuda`` or ``vllm-measured``),
    ``params_key`` the parameters entry the budget flags join (``LLAMA_CPP_PARAMS``, ``VLLM_PARAMS``)."""
    keys = allocation_keys(models)
    ids = [m.model_id for m in models]
    primary = keys[ids.index(plan.primary_model_id)] if plan.primary_model_id in ids else None
    for name in list(plan.incompatible_shapes):
        shape = next((s for s in offered if s.name == name), None)
        if shape is None or is_cpu(shape) or not shape.gpu_count or not shape.per_gpu_memory_in_gbs:
            continue
        shared = _shared_plan(shape, models, keys, primary, engine, params_key, capacity)
        if isinstance(shared, ShapePlan):
            del plan.incompatible_shapes[name]
            plan.gpu_allocation[name] = shared
        elif shared:
            plan.incompatible_shapes[name] = [*plan.incompatible_shapes[name], *shared]
    if plan.gpu_allocation:
        plan.error_message = None
    return plan


def place_request(
    spec: DeploymentSpec,
    resolved: list[ResolvedModel],
    models: Mapping[str, ModelInput],
    shape: Shape,
    engine: str,
) -> tuple[list[ResolvedModel], list[Problem], list[str]]:
    """A deployment request's models on shared GPUs (their ``gpu_indices`` as a plan gave them, or else
    packed as :func:`share_gpus` packs a plan), each with its budget's flags in its params: the resolved
    models, the problems (a GPU whose budgets exceed its usable memory names the model that overflows it)
    and a note.  ``resolved`` holds one entry per ``spec.models`` entry, in order.  Budgets are sized and
    packed within ``spec.gpu_memory_utilization`` as :func:`share_gpus` sized and packed the plan within its
    capacity's, so a plan's packing is not refused at create."""
    utilization = spec.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
    capacity = CapacityInputs(gpu_memory_utilization=utilization)
    usable = shape.per_gpu_memory_in_gbs * utilization
    fits: dict[str, MemoryFit] = {}
    problems: list[Problem] = []
    for i, (entry, m) in enumerate(zip(spec.models, resolved, strict=True)):
        model = models[entry.model_id]
        asked = config_flags(P.render(P.to_flags(entry.params) or [])).max_model_len is not None
        # sized as plans size it (every params entry of its config), its own flags last so they win
        sized = " ".join([*parameters_for(model.config, shape.name, m.gpu_count).values(), m.params])
        fit = _budget_fit(model, shape, m.gpu_count, engine, capacity, sized, asked)
        if fit is None:
            problems.append(
                Problem(
                    f"models[{i}].model_id",
                    f"{m.model_name!r} cannot share a GPU: its memory cannot be sized (its architecture is unknown)",
                    f"give every model GPUs of its own (at most {shape.gpu_count} GPUs in all on {shape.name})",
                )
            )
        else:
            fits[m.model_name] = fit
    if problems:
        return resolved, problems, []
    needs = {m.model_name: (m.gpu_count, fits[m.model_name].per_gpu_gb) for m in resolved}
    if any(e.gpu_indices is not None for e in spec.models):
        placement, problems = _given_placement(spec, resolved, shape, utilization, needs)
    else:
        primary = next((m.model_name for m in resolved if m.model_id == spec.primary_model_id), None)
        placement = pack_shared(shape.gpu_count, usable, needs, primary)
        problems = [
            Problem(
                "models",
                f"{reason} (even sharing GPUs)",
                "deploy fewer or smaller models, or hold one to less memory (a lower --max-model-len or "
                "--max-num-seqs in its params)",
            )
            for reason in placement.reasons
        ]
    if problems:
        return resolved, problems, []
    placed = []
    for m in resolved:
        fit = fits[m.model_name]
        flags = _with_budget(m.params, fit, shape, engine)
        placed.append(
            m.model_copy(
                update={
                    "params": P.render(flags),
                    "served_params": P.served_params(m.model_name, m.gpu_count, flags),
                    "gpu_indices": placement.gpus[m.model_name],
                    "memory_budget_in_gbs": fit.per_gpu_gb,
                    "sharing": placement.note(m.model_name),
                }
            )
        )
    used = len({g for gs in placement.gpus.values() for g in gs})
    note = (
        f"{len(resolved)} models on {used} of {shape.gpu_count} GPUs of {shape.name}: models share GPUs, each held "
        f"to its memory budget by its parameters (of {usable:.1f} GB per GPU)"
    )
    return placed, [], [note]


def _given_placement(
    spec: DeploymentSpec,
    resolved: list[ResolvedModel],
    shape: Shape,
    utilization: float,
    needs: dict[str, tuple[int, float]],
) -> tuple[SharedPlacement, list[Problem]]:
    """The request's own ``gpu_indices`` (a plan's), checked: every model gives its count of distinct GPUs
    of the shape, and the budgets on each GPU sum to at most its usable memory (× ``utilization``)."""
    usable = shape.per_gpu_memory_in_gbs * utilization
    problems: list[Problem] = []
    gpus: dict[str, list[int]] = {}
    for i, (entry, m) in enumerate(zip(spec.models, resolved, strict=True)):
        field = f"models[{i}].gpu_indices"
        given = entry.gpu_indices
        if given is None:
            problems.append(
                Problem(field, "missing while other models give theirs", "give every model its gpu_indices, or none")
            )
        elif len(given) != m.gpu_count or len(set(given)) != len(given):
            problems.append(
                Problem(field, f"{given} is not {m.gpu_count} distinct GPU(s) (its gpu_count)", "list each GPU once")
            )
        elif bad := [g for g in given if not 0 <= g < shape.gpu_count]:
            problems.append(
                Problem(
                    field,
                    f"GPU {bad[0]} is not one of the {shape.gpu_count} GPUs of {shape.name}",
                    f"use 0–{shape.gpu_count - 1}",
                )
            )
        else:
            gpus[m.model_name] = list(given)
    on: dict[int, list[str]] = {}
    for i, m in enumerate(resolved):
        for g in gpus.get(m.model_name, []):
            on.setdefault(g, []).append(m.model_name)
            total = sum(needs[n][1] for n in on[g])
            if total > usable + 1e-9:
                parts = " + ".join(f"{n!r} {needs[n][1]:.2f}" for n in on[g])
                problems.append(
                    Problem(
                        f"models[{i}].gpu_indices",
                        f"{m.model_name!r} over-commits GPU {g}: its budgets {parts} = {total:.2f} GB, but a GPU of "
                        f"{shape.name} gives {usable:.2f} GB ({shape.per_gpu_memory_in_gbs:g} GB × "
                        f"{utilization:g})",
                        f"put {m.model_name!r} on another GPU, or hold it to less memory (a lower --max-model-len or "
                        "--max-num-seqs in its params)",
                    )
                )
                on[g].pop()
    budgets = {n: need for n, (_, need) in needs.items()}
    return SharedPlacement(fits=not problems, gpus=gpus, budgets_gb=budgets), problems


def whole_gpus_only(plan: Plan, offered: ShapeCatalog) -> Plan:
    """On a platform that gives whole GPUs, a GPU shape refused for having fewer GPUs than models says
    that sharing them is another platform's capability (a CPU shape's slots are cores: not said there)."""
    cpu = {s.name for s in offered if is_cpu(s)}
    for name, reasons in plan.incompatible_shapes.items():
        if name not in cpu and any(MORE_MODELS_THAN_GPUS in r for r in reasons) and SHARING_IS_LOCAL not in reasons:
            reasons.append(SHARING_IS_LOCAL)
    return plan


def _shared_plan(
    shape: Shape,
    models: Sequence[ModelInput],
    keys: list[str],
    primary: str | None,
    engine: str,
    params_key: str,
    capacity: CapacityInputs | None,
) -> ShapePlan | list[str]:
    """The shape packed with shared GPUs, or why it cannot be (empty: the models' own reasons stand)."""
    per_model = [model_candidates(m, shape, len(models) == 1, capacity) for m in models]
    if any(not c.counts for c in per_model):
        return []  # a model that fits no count here cannot share either: resolve's reason says why
    counts = _counts(keys, per_model, primary)
    per_gpu = shape.per_gpu_memory_in_gbs
    fits: dict[str, MemoryFit] = {}
    unsized = []
    for model, key in zip(models, keys, strict=True):
        fit = _budget_fit(model, shape, counts[key], engine, capacity)
        if fit is None:
            unsized.append(f"model {model.name!r} cannot share a GPU: its memory cannot be sized (no architecture)")
        else:
            fits[key] = fit
    if unsized:
        return unsized
    utilization = (capacity and capacity.gpu_memory_utilization) or DEFAULT_GPU_MEMORY_UTILIZATION
    usable = per_gpu * utilization
    placement = pack_shared(shape.gpu_count, usable, {k: (counts[k], fits[k].per_gpu_gb) for k in keys}, primary)
    if not placement.fits:
        return [_named(r, keys, models) + " (even sharing GPUs)" for r in placement.reasons]
    return _shape_plan(shape, models, keys, per_model, counts, fits, placement, engine, params_key, usable, primary)


def _counts(keys: list[str], per_model: list[Candidates], primary: str | None) -> dict[str, int]:
    """Each model's smallest allowed count; the primary's smallest that is at least every other's."""
    counts = {k: min(c.counts) for k, c in zip(keys, per_model, strict=True)}
    if primary is not None:
        top = max(counts.values())
        allowed = per_model[keys.index(primary)].counts
        counts[primary] = min((c for c in allowed if c >= top), default=counts[primary])
    return counts


def _budget_fit(
    model: ModelInput,
    shape: Shape,
    count: int,
    engine: str,
    capacity: CapacityInputs | None,
    params: str | None = None,
    asked_context: bool = False,
) -> MemoryFit | None:
    """The model's memory on each of its GPUs, for the engine that runs it, sized from ``params`` (a
    request's, resolved) or else its config's; at the asked (or configured) context when that fits, else
    at a short one, which its budget flags then pin — never shorter than a context the user asked for."""
    arch = model.architecture
    if arch is None or arch.missing():
        return None
    if params is None:
        params = " ".join(parameters_for(model.config, shape.name, count).values())
    flags = config_flags(params)
    fit = memory_fit(arch, count, shape.per_gpu_memory_in_gbs, capacity, flags, engine)
    if fit is not None and not fit.fits and not asked_context and not (capacity and capacity.max_model_len):
        short = min(FALLBACK_CONTEXT, arch.max_position_embeddings or FALLBACK_CONTEXT)
        fit = memory_fit(arch, count, shape.per_gpu_memory_in_gbs, capacity, flags, engine, max_model_len=short)
    return fit


def _shape_plan(
    shape: Shape,
    models: Sequence[ModelInput],
    keys: list[str],
    per_model: list[Candidates],
    counts: dict[str, int],
    fits: dict[str, MemoryFit],
    placement: SharedPlacement,
    engine: str,
    params_key: str,
    usable: float,
    primary: str | None,
) -> ShapePlan:
    labels = dict(zip(keys, _labels(models), strict=True))
    planned = _planned(shape, models, keys, per_model, counts)
    shaped: list[PlannedModel] = []
    for key, m in zip(keys, planned, strict=True):
        fit = fits[key]
        note = _note(placement, key, labels)
        shaped.append(
            m.model_copy(
                update={
                    "parameters": {
                        **m.parameters,
                        params_key: P.render(_with_budget(m.parameters.get(params_key, ""), fit, shape, engine)),
                    },
                    "memory": _within_budget(fit),
                    "estimated_need_in_gbs": round(fit.per_gpu_gb * counts[key], 2),
                    "gpu_indices": placement.gpus[key],
                    "memory_budget_in_gbs": placement.budgets_gb[key],
                    "sharing": note,
                    "suggested_parameters": None,
                }
            )
        )
    used = sorted({g for gs in placement.gpus.values() for g in gs})
    notes = [
        *shape.notes,
        f"{len(models)} models on {len(used)} of {shape.gpu_count} GPUs: models share GPUs here, each held to its "
        f"memory budget by its parameters (of {usable:.1f} GB per GPU), so start order cannot matter",
    ]
    notes += [f"{labels[k]!r} {m.sharing}" for k, m in zip(keys, shaped, strict=True) if m.sharing]
    return ShapePlan(
        models=shaped,
        total_gpus_available=shape.gpu_count,
        used_gpus=len(used),
        primary_model_id=models[keys.index(primary)].model_id if primary else None,
        primary_honoured=True if primary else None,  # pack_shared refuses a split that does not favour it
        notes=notes,
        gpu_usable_in_gbs=round(usable, 2),
    )


def _with_budget(params: str, fit: MemoryFit, shape: Shape, engine: str) -> list[P.Flag]:
    """``params`` with the budget's flags in place of their own values (the budget was sized from them)."""
    budget = P.parse_params(budget_flags(fit, engine) + _fraction(fit, shape, engine))
    return P.merge(P.parse_params(params), budget)


def _within_budget(fit: MemoryFit) -> MemoryFit:
    """The fit as its budget leaves it: its flags pin the context and the KV cache, so the memory it has is
    its budget and the KV room is what those flags allocate, not what a whole GPU would hold."""
    return fit.model_copy(
        update={
            "gpu_memory_gb": fit.per_gpu_gb,
            "kv_capacity_tokens": fit.max_model_len * fit.concurrency,
            "max_model_len_fit": fit.max_model_len,
        }
    )


def _fraction(fit: MemoryFit, shape: Shape, engine: str) -> str:
    """vLLM: the budget as a fraction of the GPU too, for versions without ``--kv-cache-memory-bytes``
    (the local engine picks which flag it passes: engines.vllm_memory_flags); rounded up."""
    if engine not in (VLLM, VLLM_MEASURED):
        return ""
    return f" --gpu-memory-utilization {math.ceil(fit.per_gpu_gb / shape.per_gpu_memory_in_gbs * 1e4) / 1e4:g}"


def _note(placement: SharedPlacement, key: str, labels: dict[str, str]) -> str | None:
    """ "shares GPU 0 with 'b'", in the names the deployment serves."""
    parts = [
        f"GPU {g} with {', '.join(repr(labels[m]) for m in held if m != key)}"
        for g, held in placement.shared.items()
        if key in held
    ]
    return "shares " + "; ".join(parts) if parts else None


def _labels(models: Sequence[ModelInput]) -> list[str]:
    """Each entry's served name: a second copy of a model is "name-2" (as the fronts propose)."""
    seen: dict[str, int] = {}
    out = []
    for m in models:
        seen[m.model_id] = seen.get(m.model_id, 0) + 1
        out.append(m.name if seen[m.model_id] == 1 else f"{m.name}-{seen[m.model_id]}")
    return out


__all__ = ["place_request", "share_gpus", "whole_gpus_only"]
