"""Deployments and the states of their models, as ``ads aqua deployment get`` prints them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from .scaling import Scaling
from .specs import DeploymentType, LoraSpec, ResolvedModel
from .versions import DeploymentUpdate

DeploymentState = Literal[
    "CREATING", "ACTIVE", "NEEDS_ATTENTION", "FAILED", "INACTIVE", "UPDATING", "DELETING", "DELETED"
]
# NOT_ANSWERING: a request to it passed a time limit; it gets none until its health check passes
# SLEEPING: idle past its idle_sleep_s, its memory freed; LOADING: a request is waking it
ModelServerState = Literal[
    "PENDING", "STARTING", "ACTIVE", "RESTARTING", "NOT_ANSWERING", "SLEEPING", "LOADING", "FAILED", "STOPPED"
]


class DeployedModel(BaseModel):
    """A model of a deployment, as ``ads aqua deployment get`` lists it."""

    model_id: str
    model_name: str
    gpu_count: int
    env_var: dict[str, str] = Field(default_factory=dict)
    fine_tune_weights: list[LoraSpec] = Field(default_factory=list)
    model_task: str | None = None
    params: str | None = Field(default=None, description="the model's vLLM flags, when the deployment records them")
    artifact_location: str | None = None
    inference_key: str | None = Field(default=None, description="OCI model groups: the member's inference key")


class ModelMemory(BaseModel):
    """A local model server's memory (MiB, 2^20 bytes): the capacity planner's estimate next to what
    the OS (RSS of its process) and the engine (its logged buffer sizes) report."""

    planned_mib: float | None = Field(default=None, description="planned: weights + KV cache + engine overhead")
    planned_weights_mib: float | None = None
    planned_kv_cache_mib: float | None = None
    rss_mib: float | None = Field(default=None, description="measured: resident set size of its process now")
    weights_mib: float | None = Field(default=None, description="engine-reported model buffers")
    kv_cache_mib: float | None = Field(default=None, description="engine-reported KV cache buffers")
    compute_mib: float | None = Field(default=None, description="engine-reported compute buffers")
    gpu_mib: float | None = Field(
        default=None, description="measured: GPU memory its process holds (NVML / nvidia-smi), on a GPU"
    )
    error_pct: float | None = Field(
        default=None, description="(planned - measured) / measured × 100 while resident: GPU memory on a GPU, else RSS"
    )


class ModelState(BaseModel):
    """Per-model state inside a deployment (the model-states API of model groups)."""

    model_name: str
    model_id: str
    state: ModelServerState
    restarts: int = 0
    detail: str | None = None
    asleep_since: str | None = Field(default=None, description="local: when it fell asleep (ISO time), if SLEEPING")
    last_wake_s: float | None = Field(default=None, description="local: seconds its last wake took")
    last_woke_at: str | None = Field(default=None, description="local: when it last woke (ISO time)")
    memory: ModelMemory | None = Field(default=None, description="local: planned vs measured memory")


class DeploymentShapeInfo(BaseModel):
    """``shape_info`` of ``ads aqua deployment get``: where and on how many instances it runs."""

    instance_shape: str
    instance_count: int = 1
    ocpus: float | None = None
    memory_in_gbs: float | None = None


class DeploymentContainer(BaseModel):
    """The container an OCI deployment runs (BYOC: the user's own), as its environment
    configuration names it: which image exactly, how it starts, where it listens."""

    image: str
    image_digest: str | None = None
    entrypoint: list[str] = Field(default_factory=list)
    cmd: list[str] = Field(default_factory=list)
    server_port: int | None = None
    health_check_port: int | None = None


class Deployment(BaseModel):
    """A (multi-model) deployment on some platform.  Field names follow ``ads aqua deployment``:
    every field ADS's ``AquaDeployment`` prints is here (``model_id`` … ``environment_variables``),
    aqua_lab's own (``platform``, ``deployment_type``, ``progress``, ``model_states``) beside them."""

    id: str
    display_name: str
    platform: str
    state: DeploymentState
    endpoint: str | None = Field(default=None, description="OpenAI-compatible base URL of the deployment")
    instance_shape: str
    deployment_type: DeploymentType = "MULTI"
    models: list[DeployedModel]
    description: str | None = None
    created_on: str | None = None
    lifecycle_details: str | None = None
    progress: int = Field(default=0, ge=0, le=100, description="percent of models up while CREATING")
    tags: dict[str, str] = Field(default_factory=dict)
    model_states: list[ModelState] = Field(default_factory=list)
    api_key: str | None = Field(
        default=None,
        description="the key a local deployment's endpoint needs (Authorization: Bearer …); shown to its owner only",
    )
    model_id: str | None = Field(
        default=None, description="ADS: the model group's OCID for a multi-model deployment, else the model's"
    )
    aqua_service_model: bool = False
    aqua_model_name: str = ""
    created_by: str | None = None
    private_endpoint_id: str | None = None
    console_link: str | None = None
    shape_info: DeploymentShapeInfo | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    compartment_id: str | None = None
    project_id: str | None = None
    log_group_id: str | None = None
    access_log_id: str | None = None
    predict_log_id: str | None = None
    scaling: Scaling | None = None
    container: DeploymentContainer | None = Field(
        default=None, description="OCI: the container image (digest, entrypoint/cmd, ports) it runs; None elsewhere"
    )
    slots: list[int] = Field(
        default_factory=list,
        description="local: the cores (CPU machine) or GPUs it owns while it runs, so no other deployment takes them",
    )
    warnings: list[str] = Field(default_factory=list, description="what the platform noted when it placed it")
    update: DeploymentUpdate | None = Field(
        default=None, description="in the answer to an update or rollback: LIVE or ZDT, and why"
    )

    @model_validator(mode="after")
    def _ads_defaults(self) -> Deployment:
        # every platform prints ADS's shape_info and model_id, even one that records neither
        if self.shape_info is None:
            count = self.scaling.instance_count if self.scaling else 1
            self.shape_info = DeploymentShapeInfo(instance_shape=self.instance_shape, instance_count=count)
        if self.model_id is None and self.models:
            self.model_id = self.models[0].model_id
        return self

    def served_names(self) -> list[str]:
        return [name for name, _ in served_models(self.models)]

    def inference_keys(self) -> dict[str, str]:
        """Inference key → the served name it reaches (a model group's members; OCI routes by key)."""
        keys = {}
        for m in self.models:
            if m.inference_key:
                keys[m.inference_key] = m.model_name
            keys.update({w.inference_key: w.model_name or w.model_id for w in m.fine_tune_weights if w.inference_key})
        return keys

    def names_meant(self, model: str) -> list[str]:
        """The served names ``model`` may mean — the one rule chat, compare and OCI's ``model-key``
        header follow: a served name itself, else a model group member's inference key, else a model's
        id (an OCID on OCI, as seed 003 addresses a member; a local model's id), which one model served
        under several names makes ambiguous.  Empty: nothing here answers to ``model``."""
        if model in self.served_names():
            return [model]
        keys = self.inference_keys()
        if model in keys:
            return [keys[model]]
        return list(dict.fromkeys(name for name, model_id in served_models(self.models) if model_id == model))

    def inference_key_of(self, name: str) -> str | None:
        """The inference key of what is served as ``name`` (None: it has none)."""
        return next((key for key, served in self.inference_keys().items() if served == name), None)


def served_models(models: Sequence[DeployedModel | ResolvedModel]) -> list[tuple[str, str]]:
    """(served name, model id) of everything a deployment answers to: each model under its
    ``model_name``, then each of its LoRA adapters under its own name (else its id)."""
    served = []
    for m in models:
        served.append((m.model_name, m.model_id))
        served += [(w.model_name or w.model_id, w.model_id) for w in m.fine_tune_weights]
    return served
