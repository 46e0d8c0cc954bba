"""OCI's wire records → aqua_lab's :class:`Deployment`: pure functions, no SDK calls.

A model deployment comes in three forms: a model group (``deploymentType=MODEL_GROUP``; STACKED
for base + LoRA, else the models in the group's ``multi_model_metadata``), a legacy multi-model
deployment (ADS ≤ 2.13: ``MULTI_MODEL_CONFIG`` in its environment) and a single model.  The
records are the SDK's objects (or anything with the same attributes); what needs a call — the
model group, the work-request progress — is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ...domain import DeployedModel, Deployment, DeploymentContainer, DeploymentShapeInfo
from ...errors import InvalidInput
from ...planning.params import flag_key, parse_params
from ...planning.payloads import deployed_models


def custom_metadata(model: Any) -> dict[str, str]:
    return {c.key: c.value for c in (model.custom_metadata_list or [])}


def flag_value(params: str, flag: str) -> str | None:
    """The value of ``flag`` in a container's parameter string (shell-quoted, as we write them)."""
    try:
        flags = parse_params(params or "")
    except InvalidInput:
        return None  # parameters someone else wrote, that do not parse: as if the flag were absent
    key = flag_key(flag)
    values = [f.value for f in flags if f.key == key and f.value is not None]
    return values[-1] if values else None  # the container's argparse keeps the last


def _gpus(params: str) -> int:
    value = flag_value(params, "--tensor-parallel-size")
    return int(value) if value and value.isdigit() else 1


def _group_models(config: Any, group: Any | None) -> tuple[str, list[DeployedModel]]:
    details = group.model_group_details if group else None
    if details is not None and details.type == "STACKED":
        env = config.environment_configuration_details.environment_variables or {}
        members = group.member_model_entries.member_model_details
        base = next(m for m in members if m.model_id == details.base_model_id)
        adapters = [
            {"model_id": m.model_id, "model_name": m.inference_key, "inference_key": m.inference_key}
            for m in members
            if m.model_id != base.model_id
        ]
        model = DeployedModel(
            model_id=base.model_id,
            model_name=base.inference_key or base.model_id,
            inference_key=base.inference_key,
            gpu_count=_gpus(env.get("PARAMS", "")),
            fine_tune_weights=adapters,
        )
        return "STACKED", [model]
    meta = custom_metadata(details) if details else {}
    if "multi_model_metadata" in meta:  # ours or ADS's (whose entries may lack names and counts)
        models = deployed_models(json.loads(meta["multi_model_metadata"]))
        members = getattr(getattr(group, "member_model_entries", None), "member_model_details", None) or []
        keys = {m.model_id: m.inference_key for m in members if getattr(m, "inference_key", None)}
        for model in models:  # the member's key, where one was set (a model served twice has none)
            if sum(x.model_id == model.model_id for x in models) == 1:
                model.inference_key = keys.get(model.model_id)
            for w in model.fine_tune_weights:
                w.inference_key = keys.get(w.model_id)
        return ("HETEROGENEOUS" if details.type == "HETEROGENEOUS" else "MULTI"), models
    return "SINGLE", []  # a group we cannot read (gone, or not written by AQUA)


def _environment_models(config: Any, shape_gpus: int) -> tuple[str, list[DeployedModel]]:
    env = config.environment_configuration_details.environment_variables or {}
    if "MULTI_MODEL_CONFIG" in env:  # legacy (ADS ≤ 2.13) multi-model deployments
        return "MULTI", [
            DeployedModel(
                model_id=entry.get("model_id", entry["model_path"]),
                model_name=flag_value(entry["params"], "--served-model-name") or entry["model_path"],
                gpu_count=_gpus(entry["params"]),
            )
            for entry in json.loads(env["MULTI_MODEL_CONFIG"])["models"]
        ]
    model_id = config.model_configuration_details.model_id
    name = flag_value(env.get("PARAMS", ""), "--served-model-name")
    return "SINGLE", [DeployedModel(model_id=model_id, model_name=name or model_id, gpu_count=shape_gpus)]


CONSOLE = "https://cloud.oracle.com/data-science/model-deployments"


def _ads_fields(md: Any, config: Any, group_id: str | None, region: str | None) -> dict[str, Any]:
    """The fields ADS's ``AquaDeployment`` prints that aqua_lab's own model has no other name for."""
    tags = dict(md.freeform_tags or {})
    if config.deployment_type == "MODEL_GROUP":
        infra, model_id = config.infrastructure_configuration_details, group_id
    else:
        infra = config.model_configuration_details
        model_id = getattr(infra, "model_id", None)
    # records may be partial (what an older SDK, or a test, gives): read every field defensively
    instance = getattr(infra, "instance_configuration", None)
    scaling = getattr(infra, "scaling_policy", None)
    flex = getattr(instance, "model_deployment_instance_shape_config_details", None)
    env = getattr(getattr(config, "environment_configuration_details", None), "environment_variables", None) or {}
    logs = getattr(md, "category_log_details", None)
    access = getattr(logs, "access", None) if logs else None
    predict = getattr(logs, "predict", None) if logs else None
    return {
        "model_id": model_id,
        "aqua_service_model": bool(tags.get("aqua_service_model")),
        "aqua_model_name": tags.get("aqua_model_name", ""),
        "created_by": getattr(md, "created_by", None),
        "private_endpoint_id": getattr(instance, "private_endpoint_id", None),
        "console_link": f"{CONSOLE}/{md.id}" + (f"?region={region}" if region else ""),
        "shape_info": DeploymentShapeInfo(
            instance_shape=getattr(instance, "instance_shape_name", None) or "",
            instance_count=int(getattr(scaling, "instance_count", None) or 1),
            ocpus=getattr(flex, "ocpus", None),
            memory_in_gbs=getattr(flex, "memory_in_gbs", None),
        ),
        "environment_variables": dict(env),
        "compartment_id": getattr(md, "compartment_id", None),
        "project_id": getattr(md, "project_id", None),
        "log_group_id": getattr(access, "log_group_id", None) or getattr(predict, "log_group_id", None),
        "access_log_id": getattr(access, "log_id", None),
        "predict_log_id": getattr(predict, "log_id", None),
        "container": _container(getattr(config, "environment_configuration_details", None)),
    }


def _container(environment: Any) -> DeploymentContainer | None:
    """What a BYOC user needs to know runs: the image, the digest it was pinned to, how it starts."""
    image = getattr(environment, "image", None)
    if not image:
        return None
    return DeploymentContainer(
        image=image,
        image_digest=getattr(environment, "image_digest", None),
        entrypoint=list(getattr(environment, "entrypoint", None) or []),
        cmd=list(getattr(environment, "cmd", None) or []),
        server_port=getattr(environment, "server_port", None),
        health_check_port=getattr(environment, "health_check_port", None),
    )


def to_deployment(
    md: Any,
    group: Any | None,
    progress: int,
    gpus_of_shape: Callable[[str], int],
    platform: str = "oci",
    region: str | None = None,
) -> Deployment:
    """The :class:`Deployment` a ModelDeployment record describes (``group``: its model group, when
    it is one and could be read; ``gpus_of_shape``: a single model uses all of its shape's GPUs)."""
    config = md.model_deployment_configuration_details
    group_id = None
    if config.deployment_type == "MODEL_GROUP":
        shape = config.infrastructure_configuration_details.instance_configuration.instance_shape_name
        group_id = config.model_group_configuration_details.model_group_id
        kind, models = _group_models(config, group)
    else:
        shape = config.model_configuration_details.instance_configuration.instance_shape_name
        kind, models = _environment_models(config, gpus_of_shape(shape))
    return Deployment(
        id=md.id,
        display_name=md.display_name,
        platform=platform,
        state=md.lifecycle_state if md.lifecycle_state != "UNKNOWN_ENUM_VALUE" else "NEEDS_ATTENTION",
        endpoint=md.model_deployment_url,
        instance_shape=shape,
        deployment_type=kind,
        models=models,
        description=getattr(md, "description", None),
        created_on=str(md.time_created),
        lifecycle_details=getattr(md, "lifecycle_details", None),
        progress=progress,
        tags=dict(md.freeform_tags or {}),
        **_ads_fields(md, config, group_id, region),
    )
