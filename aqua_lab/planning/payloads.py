"""Request bodies for OCI, built from a validated deployment — building only, no sending.

Bodies are OCI *wire* JSON (camelCase, as the ``oci`` SDK's ``attribute_map`` names them), so the
OCI platform can hand them to the SDK's deserialiser and the tests can check them against it.

* multi-model: a HOMOGENEOUS model group whose custom metadata carries ``MULTI_MODEL_CONFIG``,
  deployed as ``deploymentType=MODEL_GROUP``;
* stacked: a STACKED group (base + LoRA members, each with its inference key), deployed as
  ``MODEL_GROUP`` with ``--enable-lora`` and runtime LoRA updating;
* single model: a ``SINGLE_MODEL`` deployment with ``PARAMS``.

Tags follow AQUA so that deployments made here show up in AI Quick Actions and vice versa.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..domain import DeployedModel, ResolvedModel, ValidatedDeployment
from ..errors import InvalidInput
from . import params as P
from . import scaling as S

DEFAULT_PREDICT_ENDPOINT = "/v1/completions"
DEFAULT_MAX_LORA_RANK = 32
DEFAULT_BANDWIDTH_MBPS = 10
MODEL_MOUNT = "/opt/ds/model/deployed_model"
#: what the AQUA vLLM container reads to route /predict and stream; a BYOC container has its own API
VLLM_ROUTE = {"MODEL_DEPLOY_PREDICT_ENDPOINT": DEFAULT_PREDICT_ENDPOINT, "MODEL_DEPLOY_ENABLE_STREAMING": "true"}


def _lora_entries(model: ResolvedModel, lora_paths: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    return [
        {
            "model_id": w.model_id,
            "model_name": w.model_name or w.model_id,
            "model_path": w.model_path or (lora_paths or {}).get(w.model_id, w.model_id),
        }
        for w in model.fine_tune_weights
    ]


def model_entry(model: ResolvedModel, model_path: str, lora_paths: Mapping[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "params": P.served_params(model.model_name, model.gpu_count, P.parse_params(model.params)),
        "model_path": model_path,
        "model_id": model.model_id,
        "model_task": model.model_task,
    }
    if model.fine_tune_weights:
        entry["fine_tune_weights"] = _lora_entries(model, lora_paths)
    return entry


def params_dict(flags: list[P.Flag]) -> dict[str, str]:
    """ADS's dict form of flags (``{"--max-model-len": "4096", "--enforce-eager": ""}``); several
    values are one space-separated string, as ADS writes ``--lora-modules``."""
    return {f.name: " ".join(f.values) for f in flags}


def multi_model_metadata(
    deployment: ValidatedDeployment, artifact_locations: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The group's ``multi_model_metadata``: one ``AquaMultiModelRef`` per model with every field ADS
    has, because AI Quick Actions rebuilds a deployment's model list (and its LoRA adapters) and
    the valid evaluation targets from it.  ``params`` are the flags really sent, owned ones aside."""
    return [
        {
            "model_id": m.model_id,
            "model_name": m.model_name,
            "gpu_count": m.gpu_count,
            "model_task": m.model_task,
            "env_var": dict(m.env_var),
            "params": params_dict(P.parse_params(m.params)),
            "artifact_location": (artifact_locations or {}).get(m.model_id),
            "fine_tune_weights": _lora_entries(m) or None,
        }
        for m in deployment.models
    ]


def deployed_models(entries: list[dict[str, Any]]) -> list[DeployedModel]:
    """The inverse of :func:`multi_model_metadata`, for groups made here or by ADS (whose refs may
    lack ``gpu_count`` or ``model_name``, and carry ``params`` as a dict)."""
    models = []
    for entry in entries:
        try:
            flags = P.to_flags(entry.get("params")) if isinstance(entry.get("params"), (dict, str)) else None
        except InvalidInput:  # a group someone else wrote: show the models even if its params do not parse
            flags = None
        models.append(
            DeployedModel(
                model_id=entry["model_id"],
                model_name=entry.get("model_name") or entry["model_id"],
                gpu_count=entry.get("gpu_count") or 1,
                model_task=entry.get("model_task"),
                params=P.render(flags) if flags is not None else None,
                env_var={k: str(v) for k, v in (entry.get("env_var") or {}).items()},
                artifact_location=entry.get("artifact_location"),
                fine_tune_weights=[
                    {k: w.get(k) for k in ("model_id", "model_name", "model_path")}
                    for w in entry.get("fine_tune_weights") or []
                ],
            )
        )
    return models


def multi_model_config(deployment: ValidatedDeployment, model_paths: Mapping[str, str]) -> dict[str, Any]:
    """``MULTI_MODEL_CONFIG``: one entry per model server, what the vLLM container (and our local
    runtime) reads to start each model.  ``model_paths`` maps model id → artifact path."""
    return {"models": [model_entry(m, model_paths.get(m.model_id, m.model_id)) for m in deployment.models]}


def aqua_tags(deployment: ValidatedDeployment, **extra: str) -> dict[str, str]:
    tags = {"OCI_AQUA": "active"}
    if deployment.spec.deployment_type in ("MULTI", "HETEROGENEOUS"):  # ADS lists the group's models by it
        tags["aqua_multimodel"] = "true"
    if deployment.spec.deployment_type == "STACKED":
        tags["aqua_stacked_model"] = "true"
    tags.update(extra)
    tags.update(deployment.spec.freeform_tags)
    return tags


def _metadata(key: str, value: Any) -> dict[str, str]:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return {"key": key, "value": text, "category": "Other"}


def model_group_request(
    deployment: ValidatedDeployment,
    model_paths: Mapping[str, str],
    compartment_id: str,
    project_id: str,
    artifact_locations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``CreateModelGroupDetails`` for a MULTI (HOMOGENEOUS) or STACKED deployment.
    ``artifact_locations`` (model id → ``oci://`` URI) go into ``multi_model_metadata``."""
    spec = deployment.spec
    base = {
        "createType": "CREATE",
        "compartmentId": compartment_id,
        "projectId": project_id,
        "displayName": f"{spec.display_name} (model group)",
        "description": "aqua_lab group of " + ", ".join(m.model_name for m in deployment.models),
        "freeformTags": {k: v for k, v in aqua_tags(deployment).items() if k != "OCI_AQUA"},
    }
    if spec.deployment_type == "STACKED":
        model = deployment.models[0]
        members = [{"inferenceKey": w.model_name or w.model_id, "modelId": w.model_id} for w in model.fine_tune_weights]
        members.append({"inferenceKey": model.model_name, "modelId": model.model_id})
        details = {
            "type": "STACKED",
            "baseModelId": model.model_id,
            "customMetadataList": [_metadata("model_group_count", "1")],
        }
    elif spec.deployment_type == "HETEROGENEOUS":
        # one member per model, keyed by its served name: OCI hands a request to the container by key
        members = [{"modelId": m.model_id, "inferenceKey": m.inference_key or m.model_name} for m in deployment.models]
        details = {
            "type": "HETEROGENEOUS",
            "customMetadataList": [
                _metadata("model_group_count", str(len(deployment.models))),
                _metadata("multi_model_metadata", multi_model_metadata(deployment, artifact_locations)),
            ],
        }
    else:
        members, seen = [], set()
        for m in deployment.models:
            keyed = [(m.model_id, m.inference_key), *((w.model_id, w.inference_key) for w in m.fine_tune_weights)]
            for model_id, key in keyed:
                if model_id not in seen:  # one member per artifact, even when served twice
                    seen.add(model_id)
                    # a key only where the user set one: AQUA's own groups carry none
                    members.append({"modelId": model_id, **({"inferenceKey": key} if key else {})})
        details = {
            "type": "HOMOGENEOUS",
            "customMetadataList": [
                _metadata("MULTI_MODEL_CONFIG", multi_model_config(deployment, model_paths)),
                _metadata("model_group_count", str(len(deployment.models))),
                _metadata("multi_model_metadata", multi_model_metadata(deployment, artifact_locations)),
            ],
        }
    return {**base, "modelGroupDetails": details, "memberModelEntries": {"memberModelDetails": members}}


def _environment(deployment: ValidatedDeployment, image: str, extra: Mapping[str, str]) -> dict[str, Any]:
    spec = deployment.spec
    vllm = {} if spec.deployment_type == "HETEROGENEOUS" else VLLM_ROUTE  # BYOC answers /models/{key}/predict
    env = {
        **vllm,
        "PORT": str(spec.server_port),
        "HEALTH_CHECK_PORT": str(spec.health_check_port),
        **extra,
        **spec.env_var,
    }
    if spec.web_concurrency:
        env["WEB_CONCURRENCY"] = str(spec.web_concurrency)
    return {
        "environmentConfigurationType": "OCIR_CONTAINER",
        "image": image,
        "serverPort": spec.server_port,
        "healthCheckPort": spec.health_check_port,
        "environmentVariables": env,
        **{
            key: value
            for key, value in (
                ("imageDigest", spec.image_digest),
                ("entrypoint", spec.entrypoint),
                ("cmd", spec.cmd_var),
            )
            if value is not None
        },
    }


def _instance(deployment: ValidatedDeployment) -> dict[str, Any]:
    spec = deployment.spec
    instance: dict[str, Any] = {"instanceShapeName": deployment.shape.name}
    if spec.subnet_id:
        instance["subnetId"] = spec.subnet_id
    if spec.private_endpoint_id:
        instance["privateEndpointId"] = spec.private_endpoint_id
    if spec.ocpus and spec.memory_in_gbs and deployment.shape.name.endswith("Flex"):
        instance["modelDeploymentInstanceShapeConfigDetails"] = {"ocpus": spec.ocpus, "memoryInGBs": spec.memory_in_gbs}
    return instance


def _logs(deployment: ValidatedDeployment) -> dict[str, Any]:
    """``categoryLogDetails``: empty when no logs are given, as ADS sends it — OCI then returns an
    empty object, which ADS's ``get`` reads (``.access``); a missing one makes it crash."""
    spec = deployment.spec
    logs = {}
    if spec.access_log_id:
        logs["access"] = {"logId": spec.access_log_id, "logGroupId": spec.log_group_id}
    if spec.predict_log_id:
        logs["predict"] = {"logId": spec.predict_log_id, "logGroupId": spec.log_group_id}
    return logs


def model_deployment_request(
    deployment: ValidatedDeployment,
    image: str,
    compartment_id: str,
    project_id: str,
    model_group_id: str | None = None,
    model_artifact_prefix: str | None = None,
) -> dict[str, Any]:
    """``CreateModelDeploymentDetails``.  MULTI and STACKED need ``model_group_id``; SINGLE deploys
    ``models[0]`` directly (``model_artifact_prefix`` becomes ``BASE_MODEL``)."""
    spec = deployment.spec
    scaling = S.wire_policy(spec)
    bandwidth = spec.bandwidth_mbps or DEFAULT_BANDWIDTH_MBPS
    first = deployment.models[0]

    if spec.deployment_type == "SINGLE":
        env = {"PARAMS": P.served_params(first.model_name, first.gpu_count, P.parse_params(first.params))}
        if model_artifact_prefix:
            env["BASE_MODEL"] = model_artifact_prefix
        config = {
            "deploymentType": "SINGLE_MODEL",
            "modelConfigurationDetails": {
                "modelId": first.model_id,
                "instanceConfiguration": _instance(deployment),
                "scalingPolicy": scaling,
                "bandwidthMbps": bandwidth,
            },
            "environmentConfigurationDetails": _environment(deployment, image, env),
        }
        tags = aqua_tags(deployment, aqua_model_name=first.model_name)
    else:
        if not model_group_id:
            raise ValueError("a MULTI or STACKED deployment is made from a model group: pass model_group_id")
        env: dict[str, str] = {}
        if spec.deployment_type == "STACKED":
            flags = lora_flags(first.params)
            env = {
                "PARAMS": P.served_params(first.model_name, first.gpu_count, flags),
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true",
                "MODEL": f"{MODEL_MOUNT}/{first.model_id}/",
            }
        config = {
            "deploymentType": "MODEL_GROUP",
            "modelGroupConfigurationDetails": {"modelGroupId": model_group_id},
            "infrastructureConfigurationDetails": {
                "infrastructureType": "INSTANCE_POOL",
                "instanceConfiguration": _instance(deployment),
                "scalingPolicy": scaling,
                "bandwidthMbps": bandwidth,
            },
            "environmentConfigurationDetails": _environment(deployment, image, env),
        }
        tags = aqua_tags(deployment, aqua_model_id=model_group_id)

    body: dict[str, Any] = {
        "displayName": spec.display_name,
        "compartmentId": compartment_id,
        "projectId": project_id,
        "modelDeploymentConfigurationDetails": config,
        "freeformTags": tags,
    }
    if spec.description:
        body["description"] = spec.description
    if spec.defined_tags:
        body["definedTags"] = spec.defined_tags
    body["categoryLogDetails"] = _logs(deployment)
    return body


def lora_flags(params: str) -> list[P.Flag]:
    """A stacked base model's flags plus what LoRA serving needs, unless the user set them."""
    flags = P.parse_params(params)
    keys = {f.key for f in flags}
    if "enable-lora" not in keys:
        flags.append(P.Flag("--enable-lora"))
    if "max-lora-rank" not in keys:
        flags.append(P.Flag("--max-lora-rank", str(DEFAULT_MAX_LORA_RANK)))
    return flags


def update_scaling_request(
    deployment_type: str,
    scaling_policy: dict[str, Any] | None = None,
    bandwidth_mbps: int | None = None,
) -> dict[str, Any]:
    """``UpdateModelDeploymentDetails`` that changes only the scaling policy and/or the load
    balancer's bandwidth of a live deployment: OCI applies both in place (same deployment, same
    endpoint; instances are added or drained), unlike a change of the deployment type, which needs
    a new deployment.  ``deployment_type`` is the deployment's wire type (SINGLE_MODEL, MODEL_GROUP)."""
    infra: dict[str, Any] = {}
    if scaling_policy is not None:
        infra["scalingPolicy"] = scaling_policy
    if bandwidth_mbps is not None:
        infra["bandwidthMbps"] = bandwidth_mbps
    if not infra:
        raise ValueError("nothing to update: pass scaling_policy or bandwidth_mbps")
    if deployment_type == "SINGLE_MODEL":
        config = {"deploymentType": "SINGLE_MODEL", "modelConfigurationDetails": infra}
    else:
        config = {
            "deploymentType": "MODEL_GROUP",
            # ZDT: new instances come up before old ones go, as ADS does for every non-LoRA update
            "updateType": "ZDT",
            "infrastructureConfigurationDetails": {"infrastructureType": "INSTANCE_POOL", **infra},
        }
    return {"modelDeploymentConfigurationDetails": config}
