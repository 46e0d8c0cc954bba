"""The members of a model group: their inference keys (seed 003: a request names a member by its key)
and how many one group may hold (seed 002: up to 500).

AQUA's vLLM container serves each model of a HOMOGENEOUS group on its own GPUs (one model per GPU
set), so there the GPU count binds long before 500; the 500 binds where several models share GPUs:
the LoRA adapters of a STACKED group, or a bring-your-own container that packs models per GPU.
"""

from __future__ import annotations

import re

from ..domain import DeploymentSpec
from ..errors import Problem

#: OCI Data Science: "deploy up to 500 models in a single deployment" (one model group)
MAX_GROUP_MODELS = 500
#: a key travels in a header (``model-key``) and in the body's ``model``: no spaces, no slashes
_KEY_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def group_size(spec: DeploymentSpec) -> int:
    """Members of the group the spec makes: one per distinct artifact (base models and adapters)."""
    if spec.deployment_type == "SINGLE":
        return 1
    ids = []
    for m in spec.models:
        ids += [m.model_id, *(w.model_id for w in m.fine_tune_weights)]
    return len(dict.fromkeys(ids))


def size_problems(spec: DeploymentSpec) -> list[Problem]:
    size = group_size(spec)
    if size <= MAX_GROUP_MODELS:
        return []
    return [
        Problem(
            "models",
            f"the model group would hold {size} models; a model group holds at most {MAX_GROUP_MODELS}",
            f"split them over several deployments of at most {MAX_GROUP_MODELS} models (base models and adapters)",
        )
    ]


def with_stacked_keys(spec: DeploymentSpec) -> tuple[DeploymentSpec, list[Problem]]:
    """In a STACKED group a member's inference key is the name it is served under: a key given
    alone becomes the served name; a key and a different ``model_name`` together are refused."""
    if spec.deployment_type != "STACKED":
        return spec, []
    problems: list[Problem] = []
    models = []
    for i, m in enumerate(spec.models):
        weights = []
        for j, w in enumerate(m.fine_tune_weights):
            problems += _same(w.model_name, w.inference_key, f"models[{i}].fine_tune_weights[{j}]")
            weights.append(w.model_copy(update={"model_name": w.model_name or w.inference_key}))
        problems += _same(m.model_name, m.inference_key, f"models[{i}]")
        models.append(
            m.model_copy(update={"model_name": m.model_name or m.inference_key, "fine_tune_weights": weights})
        )
    return spec.model_copy(update={"models": models}), problems


def _same(name: str | None, key: str | None, where: str) -> list[Problem]:
    if name and key and name != key:
        return [
            Problem(
                f"{where}.inference_key",
                f"{key!r} differs from model_name {name!r}; in a stacked group the inference key is the served name",
                "give one of them, or the same value for both",
            )
        ]
    return []


def key_problems(spec: DeploymentSpec, served: dict[str, str], key_max: int) -> list[Problem]:
    """Keys given must be well formed, unique, not another member's served name, and name one
    member (a model served twice under two names is one member of a HOMOGENEOUS group)."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    uses: dict[str, int] = {}
    for m in spec.models:
        uses[m.model_id] = uses.get(m.model_id, 0) + 1
    for i, m in enumerate(spec.models):
        entries = [(f"models[{i}]", m.inference_key, m.model_name, m.model_id)]
        entries += [
            (f"models[{i}].fine_tune_weights[{j}]", w.inference_key, w.model_name, w.model_id)
            for j, w in enumerate(m.fine_tune_weights)
        ]
        for where, key, name, model_id in entries:
            if key is None:
                continue
            field = f"{where}.inference_key"
            if not _KEY_OK.match(key) or len(key) > key_max:
                problems.append(
                    Problem(
                        field,
                        f"{key!r} is not a usable inference key",
                        f"use 1–{key_max} letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
                    )
                )
            elif key in seen:
                problems.append(
                    Problem(field, f"inference key {key!r} is already used by {seen[key]}", "give each a distinct key")
                )
            elif key in served and served[key] != where and key != name:
                problems.append(
                    Problem(field, f"{key!r} is the served name of {served[key]}", "choose a key no model is served as")
                )
            elif spec.deployment_type != "STACKED" and where == f"models[{i}]" and uses[model_id] > 1:
                problems.append(
                    Problem(
                        field,
                        f"{model_id!r} is deployed {uses[model_id]} times but is one member of the group, with one key",
                        "address its copies by their served names (model_name) instead",
                    )
                )
            seen.setdefault(key, where)
    return problems
