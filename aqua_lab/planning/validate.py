"""Validation of a user's own deployment request, with every problem reported at once.

Checks: a known shape in any spelling (kept canonical), every model known, power-of-two GPU counts
that the model's config allows on that shape, a total within the shape (under-use is a warning),
distinct served names (the same model may be deployed twice under two names), LoRA adapters with
distinct names, and vLLM params free of the flags aqua_lab owns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..domain import DeploymentSpec, ModelInput, ResolvedModel, ValidatedDeployment
from ..errors import InvalidInput, Problem, shown
from . import cpu_shapes, flex_memory, group_members, heterogeneous, scaling
from . import params as P
from .allocate import SHARING_IS_LOCAL, is_power_of_two, primary_problem
from .configs import parameters_for
from .cpu_shapes import fixed_size_problems, is_flex_cpu, is_sized_flex, ocpu_words, ram_refusal
from .gpu_sharing import place_request
from .payloads import lora_flags
from .resolve import memory_warnings, model_candidates
from .shapes import ShapeCatalog

INFERENCE_KEY_MAX = 32  # OCI model groups: inference keys are at most 32 characters
DEFAULT_TASK = "text_generation"
#: the tasks a multi-model deployment may serve (ADS's ``MultiModelSupportedTaskType``)
MULTI_MODEL_TASKS = (
    "text_generation",
    "text_generation_inference",
    "text2text_generation",
    "summarization",
    "translation",
    "conversational",
    "feature_extraction",
    "sentence_similarity",
    "automatic_speech_recognition",
    "text_to_speech",
    "text_to_image",
    "text_embedding",
    "image_text_to_text",
    "code_synthesis",
    "question_answering",
    "audio_classification",
    "audio_to_audio",
    "image_classification",
    "image_to_text",
    "image_to_image",
    "video_classification",
    "time_series_forecasting",
)
_NAME_OK = re.compile(r"^[^\s\x00-\x1f]{1,128}$")


def validate_deployment(
    spec: DeploymentSpec,
    models: Mapping[str, ModelInput],
    shapes: ShapeCatalog,
    suggest_model=None,
    params_key: str = P.VLLM_PARAMS,
    updating: bool = False,
    sharing: str | None = None,
) -> ValidatedDeployment:
    """``models`` maps every id the spec may name to what planning knows of it; ``shapes`` are the
    shapes the platform offers; ``updating``: the request replaces a live deployment's models, whose
    shape it cannot change (the advice says so); ``sharing``: the memory model's engine where models may
    share a GPU, each within its budget (the local platform on GPUs; :func:`.gpu_sharing.place_request`),
    None where each model gets whole GPUs.  Raises :class:`InvalidInput` listing every problem."""
    problems: list[Problem] = []
    warnings: list[str] = []
    offered = None

    if not spec.models:
        raise InvalidInput(Problem("models", "no models given", 'add entries like {"model_id": "…", "gpu_count": 1}'))
    problems += _check_type(spec)
    spec, stacked_keys = group_members.with_stacked_keys(spec)
    problems += stacked_keys + group_members.size_problems(spec)

    shape = shapes.find(spec.instance_shape) if spec.instance_shape else None
    if spec.instance_shape is None:
        problems.append(Problem("instance_shape", "missing", "name the shape, e.g. VM.GPU.A10.2"))
    elif shape is None:
        problems.append(
            Problem("instance_shape", f"unknown shape {spec.instance_shape!r}", shapes.suggest(spec.instance_shape))
        )
    elif is_flex_cpu(shape):  # OCPUs and memory instead of GPUs
        offered = shape  # what the flex shape offers at most: the bound of any advice to size it
        shape, spec, flex_problems, flex_warnings = cpu_shapes.for_request(shape, spec)
        problems += flex_problems
        warnings += flex_warnings
    elif shape.gpu_count == 0:
        problems.append(
            Problem("instance_shape", f"{shape.name} has no GPUs", "choose a GPU shape or a CPU flex shape")
        )
        shape = None
    problems += _fixed_size_problems(spec, shape)
    byoc = spec.deployment_type == "HETEROGENEOUS"  # its own container sizes and serves its models
    problems += heterogeneous.problems(spec, shape, updating)
    ram_needs: list[float | None] = []

    resolved: list[ResolvedModel] = []
    served: dict[str, str] = {}
    alone = len(spec.models) == 1
    for i, entry in enumerate(spec.models):
        where = f"models[{i}]"
        model = models.get(entry.model_id)
        if model is None:
            hint = suggest_model(entry.model_id) if suggest_model else None
            problems.append(Problem(f"{where}.model_id", f"unknown model {shown(entry.model_id)}", hint))
            continue
        name = entry.model_name or model.name
        problems += _check_name(name, f"{where}.model_name", served, where, spec.deployment_type)
        for j, lora in enumerate(entry.fine_tune_weights):
            lora_name = lora.model_name or lora.model_id
            problems += _check_name(
                lora_name,
                f"{where}.fine_tune_weights[{j}].model_name",
                served,
                f"{where}.fine_tune_weights[{j}]",
                "STACKED",
            )

        count_problems = _check_count(entry.gpu_count, f"{where}.gpu_count", shape, updating)
        problems += count_problems
        estimated = False
        if shape is not None and not count_problems and not byoc:
            cands = model_candidates(model, shape, alone)
            estimated = cands.estimated
            ram_needs.append(cands.need_gb)
            if not cands.counts and is_sized_flex(shape):  # its memory is what the request sized
                most = offered.memory_in_gbs if offered else None
                problems.append(flex_memory.memory_problem(model, shape, most, alone, cands.reason, updating))
            elif not cands.counts:
                problems.append(
                    Problem(
                        f"{where}.model_id",
                        f"cannot run on {shape.name}: {cands.reason}",
                        _shapes_for(model, shapes, alone),
                    )
                )
            elif estimated and cands.need_gb is None:
                per_gpu = shape.per_gpu_memory_in_gbs
                unknown = (
                    "aqua_lab does not know its size"
                    if model.parameter_count_b is None
                    else f"the GPU memory of {shape.name} is unknown"
                )
                memory = f"{entry.gpu_count} × {per_gpu:g} GB" if per_gpu else f"{entry.gpu_count} GPU(s)"
                warnings.append(
                    f"{where}: {model.name!r} has no multi-model deployment config and {unknown}, so "
                    f"{entry.gpu_count} GPU(s) of {shape.name} is not checked: make sure its weights plus KV cache "
                    f"fit in {memory}"
                )
            elif entry.gpu_count in cands.rejected:  # vLLM's tensor-parallel rule, config or not
                usable = sorted(c for c in set(cands.counts) if is_power_of_two(c) and c <= shape.gpu_count)
                problems.append(
                    Problem(
                        f"{where}.gpu_count",
                        f"{model.name!r} cannot run on {entry.gpu_count} GPUs: {cands.rejected[entry.gpu_count]}",
                        f"use one of {usable}" if usable else _shapes_for(model, shapes, alone),
                    )
                )
            elif entry.gpu_count not in cands.counts:
                usable = sorted(c for c in set(cands.counts) if is_power_of_two(c) and c <= shape.gpu_count)
                if estimated:
                    warnings.append(
                        f"{where}: {model.name!r} is estimated to need about {cands.need_gb} GB; "
                        f"{entry.gpu_count} GPU(s) of {shape.name} may be too few (estimate allows {usable})"
                    )
                else:
                    problems.append(
                        Problem(
                            f"{where}.gpu_count",
                            f"{model.name!r} is configured for {usable} GPU(s) on {shape.name}, not {entry.gpu_count}",
                            f"use one of {usable}" if usable else _shapes_for(model, shapes, alone),
                        )
                    )
            elif estimated and not shape.is_cpu and not _is_local(shape):
                # the count passed, but only an estimate checked it (a machine's own cores need no config)
                warnings.append(_estimated_note(where, model, shape.name, entry.gpu_count, cands.need_gb))
            elif estimated and is_sized_flex(shape):  # as the plan says it: no config sizes a flex shape
                warnings.append(
                    f"{where}: model {model.name!r}: its OCPUs and memory on {shape.name} are estimated by the "
                    "memory model"
                )

        flags, env_var, flag_problems, flag_warnings = _resolve_params(
            entry, model, None if byoc else shape, where, params_key
        )
        problems += flag_problems
        warnings += flag_warnings
        if shape is not None and not count_problems and not flag_problems and not byoc:
            warnings += memory_warnings(model, shape, entry.gpu_count, P.render(flags), where)
        task, task_problems, task_warnings = _task(entry, model, where, spec.deployment_type)
        problems += task_problems
        warnings += task_warnings
        resolved.append(
            ResolvedModel(
                model_id=entry.model_id,
                model_name=name,
                gpu_count=entry.gpu_count,
                params=P.render(flags),
                served_params=P.served_params(
                    name, entry.gpu_count, lora_flags(P.render(flags)) if spec.deployment_type == "STACKED" else flags
                ),
                model_task=task,
                env_var=env_var,
                fine_tune_weights=entry.fine_tune_weights,
                estimated=estimated,
                inference_key=entry.inference_key,
            )
        )
    problems += group_members.key_problems(spec, served, INFERENCE_KEY_MAX)
    if spec.deployment_type == "STACKED":
        warnings += _long_stacked_keys(served)

    if shape is not None:
        total = sum(m.gpu_count for m in spec.models)
        # on this machine's cores, more models than fit take turns (the platform's residency limit)
        if total > shape.gpu_count and is_sized_flex(shape):
            most = offered.core_count if offered else None
            problems.append(cpu_shapes.too_few_ocpus(total, shape, most, updating))
        elif shares := _shares(spec, shape, total, sharing, byoc):
            if not problems:  # every model resolved: place them, budgets and all
                resolved, shared_problems, notes = place_request(spec, resolved, models, shape, shares)
                problems += shared_problems
                warnings += notes
        elif total > shape.gpu_count and not shape.is_cpu:
            bigger = sorted(s.name for s in shapes.gpu_shapes() if s.gpu_count >= total)
            if updating:  # an update keeps the deployment's shape
                fix = (
                    "lower some gpu_count (a lower --max-model-len in params may let a model fit on fewer), or "
                    "deploy fewer or smaller models; for more GPUs create a new deployment on a larger shape"
                    + (f": {bigger}" if bigger else "")
                )
            else:
                fix = "lower some gpu_count" + (f" or choose a shape with more GPUs: {bigger}" if bigger else "")
            fix += f"; {SHARING_IS_LOCAL}" if any(m.gpu_count == 1 for m in spec.models) else ""
            problems.append(
                Problem("models", f"the models need {total} GPUs but {shape.name} has {shape.gpu_count}", fix)
            )
        elif total < shape.gpu_count:
            warnings.append(
                f"the models use {total} of the {shape.gpu_count} GPUs of {shape.name}; "
                f"{shape.gpu_count - total} stay idle"
            )

    problems += _gpu_indices_refused(spec, shape, sharing)
    scaling_problems, scaling_warnings = scaling.check(spec, shape)
    problems += scaling_problems
    warnings += scaling_warnings

    problem = primary_problem(spec.primary_model_id, [m.model_id for m in spec.models])
    if problem:
        problems.append(problem)

    if shape is not None and (over := ram_refusal(shape, ram_needs)):
        problems.append(Problem("memory_in_gbs", over, None))
    if is_sized_flex(shape):
        problems = [
            Problem(p.field, ocpu_words(p.message, shape), ocpu_words(p.fix or "", shape) or None) for p in problems
        ]
        warnings = [ocpu_words(w, shape) for w in warnings]
    if problems:
        raise InvalidInput(problems)
    canonical_spec = spec.model_copy(update={"instance_shape": shape.name})
    return ValidatedDeployment(spec=canonical_spec, shape=shape, models=resolved, warnings=warnings)


def _shares(spec: DeploymentSpec, shape, total: int, sharing: str | None, byoc: bool) -> str | None:
    """The engine whose budgets place this request's models on shared GPUs, when they are to share; a
    request that gives ``gpu_indices`` where GPUs are not shared is refused (:func:`_gpu_indices_refused`)."""
    if sharing is None or byoc or shape.is_cpu:
        return None
    given = any(m.gpu_indices is not None for m in spec.models)
    return sharing if given or total > shape.gpu_count else None


def _gpu_indices_refused(spec: DeploymentSpec, shape, sharing: str | None) -> list[Problem]:
    if sharing is not None and shape is not None and not shape.is_cpu and spec.deployment_type != "HETEROGENEOUS":
        return []
    if shape is not None and shape.is_cpu:
        why = "this machine places each model on its cores itself"
    else:
        why = f"models do not share GPUs here: {SHARING_IS_LOCAL}"
    return [
        Problem(f"models[{i}].gpu_indices", why, "leave it out")
        for i, m in enumerate(spec.models)
        if m.gpu_indices is not None
    ]


def _check_type(spec: DeploymentSpec) -> list[Problem]:
    if spec.deployment_type == "STACKED":
        if len(spec.models) != 1:
            return [
                Problem(
                    "models",
                    f"a stacked deployment has one base model, got {len(spec.models)}",
                    "put the adapters in the base model's fine_tune_weights",
                )
            ]
        if not spec.models[0].fine_tune_weights:
            return [
                Problem(
                    "models[0].fine_tune_weights",
                    "a stacked deployment needs at least one LoRA adapter",
                    'add {"model_id": …, "model_name": …} entries, or use deployment_type MULTI',
                )
            ]
    if spec.deployment_type == "SINGLE" and len(spec.models) != 1:
        return [
            Problem(
                "models",
                f"a single-model deployment has one model, got {len(spec.models)}",
                "use deployment_type MULTI for several models",
            )
        ]
    return []


def _check_count(count: int, field: str, shape, updating: bool = False) -> list[Problem]:
    limit = shape.gpu_count if shape is not None else None
    up_to = ", ".join(str(1 << k) for k in range((limit or 8).bit_length()) if (1 << k) <= (limit or 8))
    if count < 1:
        return [Problem(field, f"{count} GPUs is not possible: every model needs at least one", f"use {up_to}")]
    if not is_power_of_two(count):
        return [
            Problem(
                field,
                f"{count} is not a power of two (tensor parallelism splits a model over 1, 2, 4 or 8 GPUs)",
                f"use {up_to}",
            )
        ]
    if limit is not None and count > limit and not is_sized_flex(shape):  # OCPUs: too_few_ocpus says it
        larger = (
            "create a new deployment on a larger shape (an update keeps its shape)" if updating else "a larger shape"
        )
        return [Problem(field, f"{count} GPUs but {shape.name} has {limit}", f"use {up_to} or {larger}")]
    return []


def _is_local(shape) -> bool:
    return shape.name.upper().startswith("LOCAL.")


def _fixed_size_problems(spec: DeploymentSpec, shape) -> list[Problem]:
    if shape is None or shape.name.upper().endswith(".FLEX"):
        return []
    return fixed_size_problems([f for f in ("ocpus", "memory_in_gbs") if getattr(spec, f) is not None], shape)


def _long_stacked_keys(served: dict[str, str]) -> list[str]:
    return [
        f"{where}: served name {name!r} is {len(name)} characters; it becomes the member's inference key as ADS "
        f"makes it, though OCI's model-group documentation gives keys up to {INFERENCE_KEY_MAX} characters: if OCI "
        "refuses the model group, give a shorter model_name"
        for name, where in served.items()
        if len(name) > INFERENCE_KEY_MAX
    ]


def _check_name(name: str, field: str, served: dict[str, str], where: str, deployment_type: str) -> list[Problem]:
    problems = []
    if not _NAME_OK.match(name):
        problems.append(
            Problem(
                field, f"{name!r} is not a usable served name", "use 1–128 characters without spaces, e.g. 'llama-8b'"
            )
        )
    # a stacked name over the limit passes, as in ADS (its default base name is the model's display name):
    # _long_stacked_keys warns instead
    elif deployment_type == "HETEROGENEOUS" and len(name) > INFERENCE_KEY_MAX:
        problems.append(
            Problem(
                field,
                f"{name!r} is {len(name)} characters; OCI inference keys allow {INFERENCE_KEY_MAX}",
                "give it a shorter model_name",
            )
        )
    if name in served:
        problems.append(
            Problem(
                field,
                f"served name {name!r} is already used by {served[name]}",
                "give each model (and each copy of the same model) a distinct model_name",
            )
        )
    else:
        served[name] = where
    return problems


def _task(entry, model: ModelInput, where: str, deployment_type: str) -> tuple[str, list[Problem], list[str]]:
    """The request's ``model_task``, else the catalog's; a multi-model group serves only ADS's tasks."""
    given = entry.model_task or model.task
    task = (given or DEFAULT_TASK).replace("-", "_").lower()
    warnings = []
    if not given:
        warnings.append(
            f"{where}: {model.name!r} has no task in the catalog; {DEFAULT_TASK} assumed (set model_task if it is "
            "an embedding or other kind of model)"
        )
    if deployment_type == "SINGLE" or task in MULTI_MODEL_TASKS:
        return task, [], warnings
    source = "model_task" if entry.model_task else f"the catalog's task for {model.name!r}"
    return (
        task,
        [
            Problem(
                f"{where}.model_task",
                f"{source} is {given!r}, which a multi-model deployment cannot serve",
                f"use one of {list(MULTI_MODEL_TASKS)}",
            )
        ],
        warnings,
    )


def _resolve_params(entry, model: ModelInput, shape, where: str, params_key: str):
    """The user's flags (with a legacy ``env_var.PARAMS`` folded in, ADS's rule) merged over the
    config's defaults; returns (flags, env_var without PARAMS, problems, warnings)."""
    problems, warnings = [], []
    gpu_count = entry.gpu_count
    try:
        user, env_var, folded = P.fold_legacy_params(entry.params, entry.env_var, f"{where}.params")
    except InvalidInput as exc:
        return [], dict(entry.env_var), exc.problems, []
    if folded:
        warnings.append(
            f"{where}: env_var PARAMS moved into params (flags also given in params keep the params value), "
            "as AI Quick Actions does"
        )
    if user:
        if params_key == P.VLLM_PARAMS:
            warnings += P.multi_value_warnings(user, f"{where}.params")
        legacy = P.to_flags(entry.env_var["PARAMS"]) if folded else []
        legacy_keys = {f.key for f in legacy} - {f.key for f in P.to_flags(entry.params) or []}
        for flag in P.owned_flags(user):
            field = f"{where}.env_var.PARAMS" if flag.key in legacy_keys else f"{where}.params"
            problems += P.refuse_owned([flag], field)
    defaults_text = ""
    if shape is not None:
        defaults_text = parameters_for(model.config, shape.name, gpu_count).get(params_key, "")
    try:
        defaults = P.parse_params(defaults_text, f"{model.name} config {params_key}")
    except InvalidInput as exc:
        warnings += [f"config defaults ignored: {p}" for p in exc.problems]
        defaults = []
    for flag in P.owned_flags(defaults):
        warnings.append(f"{where}: config default {flag.name} dropped ({P.owned_reason(flag)})")
    defaults = P.not_owned(defaults)
    merged = P.merge(defaults, P.not_owned(user) if user is not None else None)
    return merged, env_var, problems, warnings


def _estimated_note(where: str, model: ModelInput, shape: str, count: int, need_gb: float | None) -> str:
    arch = model.architecture
    if arch is not None and not arch.missing():
        basis = f"its architecture ({arch.source or 'facts given'}) by the memory model"
    elif model.parameter_count_b:
        basis = f"its size (≈{model.parameter_count_b:g}B parameters at 2 bytes each)"
    else:
        basis = "what is known of its size"
    need = f", about {need_gb:g} GB" if need_gb else ""
    return (
        f"{where}: {model.name!r} has no multi-model deployment config, so its GPU count ({count} on {shape}) was "
        f"checked against an estimate from {basis}{need}, not a config; to give one, add a deployment_config.json "
        "with multi_model_deployment entries for this shape (CLI: --model_config ID=PATH; OCI: the model's "
        "DeploymentConfiguration metadata, as AQUA's service models carry)"
    )


def _shapes_for(model: ModelInput, shapes: ShapeCatalog, alone: bool) -> str:
    fits = [s.name for s in shapes.gpu_shapes() if model_candidates(model, s, alone).counts]
    return f"choose a shape it supports: {fits}" if fits else "no offered shape supports it"
