"""Heterogeneous model groups: several models served by the user's own container (bring your own
container, e.g. NVIDIA Triton), one deployment.  OCI routes each request to a member by its inference
key (the ``model-key`` header) or its OCID (``model-ocid``); the container answers the model-group API
(``/models/{id}/predict``, ``/models/{id}/health``, ``/health``) on ``server_port``/``health_check_port``.

What aqua_lab plans for vLLM does not apply: the container, not vLLM, loads the models, so their
vLLM configs and flags are not used and a model is not sized by the memory model.
"""

from __future__ import annotations

import re

from ..domain import DeploymentSpec, Shape
from ..errors import Problem, shown

BYOC_TYPE = "HETEROGENEOUS"
#: the images OCI runs as a BYOC container: OCIR's <region>.ocir.io/<namespace>/<repo>, tagged or pinned
OCIR_IMAGE = re.compile(r"[a-z0-9-]+\.ocir\.io/[^/\s:@]+(/[^/\s:@]+)+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})")
OCIR_FORM = "<region>.ocir.io/<namespace>/<repo>:<tag> (or @sha256:…)"
#: the image option as each front spells it (the CLI's error lines say --x; REST names the JSON field)
IMAGE_FIELD = "--container_image_uri (REST: container_image_uri)"


def problems(spec: DeploymentSpec, shape: Shape | None = None, updating: bool = False) -> list[Problem]:
    """What a request may not ask of a heterogeneous group (or of a container it does not name):
    checked by validation, so a validate refuses what a create would (``updating``: an update keeps the
    deployment's container, so only a create needs one)."""
    found = []
    if spec.deployment_type == BYOC_TYPE and shape is not None and shape.name.upper().startswith("LOCAL."):
        found.append(
            Problem(
                "deployment_type",
                "the local platform runs its own model servers, not your container",
                "use MULTI: its router answers the same model-group API (/models/{name}/predict, /health)",
            )
        )
    elif spec.deployment_type == BYOC_TYPE and not updating and (no_image := missing_image(spec)) is not None:
        found.append(no_image)
    if spec.deployment_type == BYOC_TYPE and spec.container_image_uri:
        if not OCIR_IMAGE.fullmatch(spec.container_image_uri):
            found.append(
                Problem(
                    "container_image_uri",
                    "not an OCIR path",
                    f"use {OCIR_FORM}, not {shown(spec.container_image_uri)}",
                )
            )
    if spec.deployment_type == BYOC_TYPE:
        seen: set[str] = set()
        for i, model in enumerate(spec.models):
            if model.model_id in seen:  # OCI keys a group's members by model
                found.append(
                    Problem(f"models[{i}].model_id", f"{model.model_id} is already a member", "list each model once")
                )
            seen.add(model.model_id)
            if model.params:
                found.append(
                    Problem(
                        f"models[{i}].params",
                        "a heterogeneous group's own container takes no vLLM flags",
                        "pass its settings in env_var, cmd_var or entrypoint",
                    )
                )
            if model.fine_tune_weights:
                found.append(
                    Problem(
                        f"models[{i}].fine_tune_weights",
                        "LoRA adapters are served by a STACKED group (vLLM), not a heterogeneous one",
                        "use deployment_type STACKED for a base model and its adapters",
                    )
                )
    if spec.image_digest and not spec.container_image_uri:
        found.append(Problem("image_digest", "pins an image, but no container_image_uri is given", "pass both"))
    return found


def missing_image(spec: DeploymentSpec) -> Problem | None:
    """A heterogeneous group is created on the user's own image: without one there is nothing to run
    (an update keeps the deployment's container, so only a create needs it)."""
    if spec.deployment_type != BYOC_TYPE or spec.container_image_uri:
        return None
    return Problem(
        "container_image_uri",
        "a HETEROGENEOUS deployment runs your own container, and none is given",
        f"pass {IMAGE_FIELD} <region>.ocir.io/<namespace>/<repo>:<tag> (e.g. a Triton image)",
    )
