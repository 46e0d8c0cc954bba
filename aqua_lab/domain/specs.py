"""Deployment requests (the options of ``ads aqua deployment create``) and what validation makes of them."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .scaling import Autoscaling, Instances
from .shapes import Shape

#: the vLLM serving container AQUA deploys with unless a request names another
DEFAULT_CONTAINER_IMAGE = "dsmc://odsc-vllm-serving:0.8.1.2"
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str
    model_name: str | None = None
    model_path: str | None = None
    inference_key: str | None = Field(
        default=None, description="the key a request names this adapter by (in a stacked group: its served name)"
    )


class ModelSpec(BaseModel):
    """One entry of ``--models``: ``{"model_id": …, "gpu_count": 1, "model_name": …}``."""

    model_config = ConfigDict(extra="forbid")

    model_id: str
    gpu_count: int
    model_name: str | None = Field(default=None, description="served name; defaults to the model's name")
    inference_key: str | None = Field(
        default=None,
        description="OCI model groups: the key a request may name this model by (`model`, or the model-key "
        "header) besides its served name; in a stacked group the key is the served name",
    )
    model_task: str | None = None
    params: dict[str, str | int | float | list[str] | None] | str | None = Field(
        default=None,
        description="vLLM flags: a string ('--max-model-len 4096') or a dict (a list value, or a space-separated "
        "string for --lora-modules and other multi-value flags, is several values); null uses the "
        "config's defaults for this shape and GPU count; user flags override defaults flag by flag; "
        "a legacy env_var PARAMS is folded in (params win)",
    )
    env_var: dict[str, str] = Field(default_factory=dict)
    fine_tune_weights: list[LoraSpec] = Field(default_factory=list)
    idle_sleep_s: int | None = Field(
        default=None,
        ge=1,
        description="local: seconds idle before the model sleeps (frees its memory; "
        "the next request wakes it); defaults to the deployment's idle_sleep_s",
    )
    pinned: bool = Field(default=False, description="local: never sleeps, whatever idle_sleep_s says")
    gpu_indices: list[int] | None = Field(
        default=None,
        description="local, on GPUs: the GPUs it runs on as a plan gives them (GPU i of those the deployment "
        "holds); models may share a GPU, each held to its memory budget; left out, models that need more GPUs "
        "than there are are packed as plans pack them",
    )


#: HETEROGENEOUS: a model group served by the user's own container (BYOC, e.g. Triton), one member per model
DeploymentType = Literal["MULTI", "STACKED", "SINGLE", "HETEROGENEOUS"]


class DeploymentSpec(BaseModel):
    """A deployment request, with the option names of ``ads aqua deployment create``."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec]
    instance_shape: str | None = Field(default=None, description="the shape (local: this machine when left out)")
    display_name: str
    deployment_type: DeploymentType = "MULTI"
    description: str | None = None
    container_image_uri: str | None = None
    compartment_id: str | None = None
    project_id: str | None = None
    instance_count: Instances = 1
    autoscaling: Autoscaling | None = Field(default=None, description="one predefined-metric rule (shorthand)")
    scaling_policy: dict[str, Any] | None = Field(
        default=None,
        description="the oci SDK's full scalingPolicy as wire JSON (policyType FIXED_SIZE or AUTOSCALING, "
        "autoScalingPolicies with THRESHOLD rules, PREDEFINED_EXPRESSION or CUSTOM_EXPRESSION)",
    )
    log_group_id: str | None = None
    access_log_id: str | None = None
    predict_log_id: str | None = None
    web_concurrency: int | None = Field(default=None, ge=1)
    image_digest: str | None = Field(
        default=None,
        description="BYOC: pins container_image_uri (sha256:…)",
        json_schema_extra={"pattern": IMAGE_DIGEST.pattern},
    )
    entrypoint: list[str] | None = Field(default=None, description="BYOC: the container's entrypoint")
    cmd_var: list[str] | None = Field(default=None, description="BYOC: the container's cmd (ADS's cmd_var)")
    server_port: int = Field(default=8080, ge=1, le=65535)
    health_check_port: int = Field(default=8080, ge=1, le=65535)
    env_var: dict[str, str] = Field(default_factory=dict)
    private_endpoint_id: str | None = None
    subnet_id: str | None = None
    bandwidth_mbps: int | None = Field(default=None, ge=1)
    ocpus: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    memory_in_gbs: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    freeform_tags: dict[str, str] = Field(default_factory=dict)
    defined_tags: dict[str, dict[str, Any]] = Field(default_factory=dict)
    primary_model_id: str | None = None
    idle_sleep_s: int | None = Field(
        default=None, ge=1, description="local: the idle seconds before each model that is not pinned sleeps"
    )
    max_resident: int | None = Field(
        default=None,
        ge=1,
        description="local: at most this many models resident together (default: as many as the cores and "
        "memory hold); a request to another wakes it and the least recently used one that is not pinned sleeps",
    )
    share_cores: bool = Field(
        default=False,
        description="local: share cores other deployments hold instead of being refused (AQUA_LAB_SHARE_CORES=1 "
        "for every deployment); each runs slower",
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="local, models sharing GPUs: the share of each GPU their budgets may fill together, as the "
        "plan's capacity had it (default 0.9, vLLM's)",
    )

    @field_validator("image_digest")
    @classmethod
    def _digest_form(cls, value: str | None) -> str | None:
        # pydantic's own words would show the regular expression, not the form to give
        if value is not None and not IMAGE_DIGEST.match(value):
            raise ValueError(f"give sha256:<64 hex digits>, not {value[:80]!r}")
        return value

    @model_validator(mode="after")
    def _logs_have_their_group(self) -> DeploymentSpec:
        # OCI takes a log only with its group; without one the request would carry logGroupId null
        if (self.access_log_id or self.predict_log_id) and not self.log_group_id:
            given = "access_log_id" if self.access_log_id else "predict_log_id"
            raise ValueError(f"{given} needs log_group_id: pass the log group the access and predict logs share")
        return self


class ResolvedModel(BaseModel):
    """A model of a validated deployment: served name, GPUs and the final vLLM flags."""

    model_id: str
    model_name: str
    gpu_count: int
    params: str = Field(description="user/config flags after the merge, without the owned flags")
    served_params: str = Field(
        default="", description="every flag the model server gets (owned ones first), as the payload carries them"
    )
    model_task: str = "text_generation"
    env_var: dict[str, str] = Field(default_factory=dict)
    fine_tune_weights: list[LoraSpec] = Field(default_factory=list)
    estimated: bool = False
    inference_key: str | None = None
    gpu_indices: list[int] | None = Field(
        default=None, description="local, GPUs shared: GPU i of those the deployment holds; None: its own in order"
    )
    memory_budget_in_gbs: float | None = Field(default=None, description="its memory on each of its GPUs")
    sharing: str | None = Field(default=None, description="e.g. shares GPU 0 with 'b'")


class ValidatedDeployment(BaseModel):
    """A deployment request that passed validation: canonical shape name, one resolved entry per
    model, and the warnings the user should see (e.g. unused GPUs)."""

    spec: DeploymentSpec
    shape: Shape
    models: list[ResolvedModel]
    warnings: list[str] = Field(default_factory=list)
    refused_now: str | None = Field(
        default=None, description="why a create would be refused now (what running deployments hold), else None"
    )
    resident_limit: int | None = Field(
        default=None, description="local: how many of its models may be resident together (the others sleep)"
    )

    @property
    def used_gpus(self) -> int:
        return sum(m.gpu_count for m in self.models)


class ValidationResult(BaseModel):
    """What checking a deployment request tells the user (REST ``deployments/validate``, CLI
    ``deployment validate``): the canonical shape, each model as it would be deployed, warnings."""

    instance_shape: str
    models: list[ResolvedModel]
    used_gpus: int
    warnings: list[str]
    slot_unit: Literal["GPU", "core"] = Field(default="GPU", description="what used_gpus counts on this shape")
    refused_now: str | None = Field(
        default=None,
        description="the request is valid, but a create now would be refused: why (e.g. the cores running "
        "deployments hold) and how to free them; None when a create would go ahead",
    )
    resident_limit: int | None = Field(
        default=None, description="local: how many of its models may be resident together (the others sleep)"
    )

    @classmethod
    def of(cls, validated: ValidatedDeployment) -> ValidationResult:
        return cls(
            instance_shape=validated.shape.name,
            models=validated.models,
            used_gpus=validated.used_gpus,
            warnings=validated.warnings,
            slot_unit=validated.shape.slot_unit,
            refused_now=validated.refused_now,
            resident_limit=validated.resident_limit,
        )
