"""Pydantic models shared by every layer.

Field names follow the AQUA seeds (``gpu_count``, ``instance_shape``, ``model_id``, ``model_name``,
``primary_model_id`` …) so that our JSON is a drop-in for what ``ads aqua deployment …`` prints.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from .inference.protocol import ChatMessage, ChatRequest, ChatRoute, CompareRequest  # noqa: F401 (re-exported)
from .precisions import known_precisions, precision_bytes

#: the vLLM serving container AQUA deploys with unless a request names another
DEFAULT_CONTAINER_IMAGE = "dsmc://odsc-vllm-serving:0.8.1.2"

# --------------------------------------------------------------------------------------------------
# Shapes


class GpuSpec(BaseModel):
    """GPUs of a shape.  ``gpu_memory_in_gbs`` is the *total* for the shape, as in OCI's GPU index
    and the seed's ``list_shapes`` output; the per-GPU figure is derived."""

    gpu_count: int = Field(ge=0)
    gpu_memory_in_gbs: float | None = Field(default=None, ge=0)
    gpu_type: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def per_gpu_memory_in_gbs(self) -> float | None:
        if not self.gpu_count or self.gpu_memory_in_gbs is None:
            return None
        return round(self.gpu_memory_in_gbs / self.gpu_count, 2)


class Shape(BaseModel):
    """A compute shape a deployment can run on (an OCI shape, or this machine for ``local``)."""

    name: str
    core_count: int | None = None
    memory_in_gbs: float | None = None
    shape_series: str | None = None
    gpu_specs: GpuSpec | None = None
    quantization: list[str] = Field(default_factory=list)
    ranking: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="what is not known about the shape, and why")
    # derived from gpu_specs, sent so that every front names a slot and its memory as the platform does
    slot_unit: Literal["GPU", "core"] = Field(
        default="GPU", description="what one slot of the shape is: 'core' on a CPU machine, else 'GPU'"
    )
    memory_unit: Literal["GPU memory", "RAM"] = Field(
        default="GPU memory", description="what the memory a slot gives is called: 'RAM' on a CPU machine"
    )

    @model_validator(mode="after")
    def _units(self) -> Shape:
        self.slot_unit = "core" if self.is_cpu else "GPU"
        self.memory_unit = "RAM" if self.is_cpu else "GPU memory"
        return self

    @property
    def gpu_count(self) -> int:
        return self.gpu_specs.gpu_count if self.gpu_specs else 0

    @property
    def per_gpu_memory_in_gbs(self) -> float | None:
        return self.gpu_specs.per_gpu_memory_in_gbs if self.gpu_specs else None

    @property
    def is_cpu(self) -> bool:
        """A CPU machine as a shape (the local platform): its "GPUs" are cores, its GPU memory RAM."""
        return bool(self.gpu_specs and self.gpu_specs.gpu_type == "CPU")

    def unit(self, count: int = 2) -> str:
        """What one slot of this shape is, in the machine's words: a core on CPU, a GPU otherwise."""
        word = "core" if self.is_cpu else "GPU"
        return word if count == 1 else word + "s"

    @property
    def memory_word(self) -> str:
        return "RAM" if self.is_cpu else "GPU memory"


_GPU_WORDS = [
    (re.compile(r"\bGPU memory\b"), "RAM"),
    (re.compile(r"\bGPU\(s\)"), "core(s)"),
    (re.compile(r"\bGPUs\b"), "cores"),
    (re.compile(r"\bGB/GPU\b"), "GB/core"),
    (re.compile(r"(?<![-.\w])GPU(?![-_.\w]| shape)"), "core"),
    (re.compile(r"-GPU\b"), "-core"),
]


def machine_words(text: str, shape: Shape | None) -> str:
    """``text`` in the words of ``shape``: on a CPU machine its "GPUs" are cores and their memory is
    RAM (the planner speaks of GPUs everywhere; a user of LOCAL.CPU.2 should read "cores")."""
    if shape is None or not shape.is_cpu or not text:
        return text
    for pattern, word in _GPU_WORDS:
        text = pattern.sub(word, text)
    return text


# --------------------------------------------------------------------------------------------------
# deployment_config.json (schema of seed 000 § Custom Models and ADS's AquaDeploymentConfig)


class _Open(BaseModel):
    """Config files carry keys we do not interpret (``env`` namespaces, future fields): keep them so
    a round trip loses nothing."""

    model_config = ConfigDict(extra="allow")


class MultiModelEntry(_Open):
    gpu_count: int
    parameters: dict[str, str] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)


class ShapeInfo(_Open):
    configs: list[dict[str, Any]] = Field(default_factory=list)
    type: str = ""


class ShapeConfig(_Open):
    """``configuration[<shape>]``: single-model parameters and the multi-model GPU entries."""

    parameters: dict[str, str] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    multi_model_deployment: list[MultiModelEntry] = Field(default_factory=list)
    shape_info: ShapeInfo = Field(default_factory=ShapeInfo)


class DeploymentConfig(_Open):
    """A model's ``deployment_config.json``: ``shape`` lists shapes valid for a single-model
    deployment; only shapes with ``multi_model_deployment`` entries are valid for multi-model."""

    shape: list[str] = Field(default_factory=list)
    configuration: dict[str, ShapeConfig] = Field(default_factory=dict)

    def has_multi_model_entries(self) -> bool:
        return any(c.multi_model_deployment for c in self.configuration.values())


# --------------------------------------------------------------------------------------------------
# Models


ModelSource = Literal["service", "registered", "local"]


class CatalogModel(BaseModel):
    """A model a user can pick: an AQUA service model, one they registered, or a local file."""

    id: str = Field(description="OCID on OCI; the catalog name for bundled service models; a local id")
    name: str = Field(description="display name; the default served name (`model_name`)")
    source: ModelSource = "service"
    task: str = "text_generation"
    parameter_count_b: float | None = Field(
        default=None, description="billions of parameters, when known (used for memory estimates)"
    )
    artifact_path: str | None = None
    fine_tuned_from: str | None = Field(default=None, description="base model id of a LoRA adapter")
    tags: dict[str, str] = Field(default_factory=dict)


class Architecture(BaseModel):
    """What the memory model needs to know about a model's network (from its ``config.json``, a
    GGUF header or the bundled table).  Missing facts stay ``None`` and are reported, not guessed."""

    parameters_b: float | None = Field(default=None, description="billions of parameters")
    layers: int | None = Field(default=None, description="num_hidden_layers")
    hidden_size: int | None = None
    attention_heads: int | None = Field(default=None, description="num_attention_heads")
    kv_heads: int | None = Field(default=None, description="num_key_value_heads")
    head_dim: int | None = None
    max_position_embeddings: int | None = None
    dtype: str | None = Field(default=None, description="native weight dtype (torch_dtype, or the GGUF file type)")
    vocab_size: int | None = None
    intermediate_size: int | None = None
    tie_word_embeddings: bool | None = None
    attention_layers: int | None = Field(default=None, description="layers that keep a KV cache, when not all do")
    kv_cache: bool = Field(default=True, description="false for encoder-only models (no KV cache)")
    weight_bytes: int | None = Field(default=None, description="exact weight bytes (safetensors/GGUF headers)")
    experts: int | None = None
    architecture: str | None = Field(default=None, description="the config's architectures[0] or GGUF arch")
    source: str = Field(default="", description="where these facts come from")
    note: str | None = None

    def missing(self) -> list[str]:
        """Facts the memory model needs that are unknown."""
        need = {"parameters_b or weight_bytes": self.parameters_b or self.weight_bytes}
        if self.kv_cache:
            need |= {"layers": self.layers, "kv_heads": self.kv_heads, "head_dim": self.head_dim}
        return [name for name, value in need.items() if value is None]


class ModelInput(BaseModel):
    """What planning needs to know about one model: who it is, its config (if any), its size."""

    model_id: str
    name: str
    config: DeploymentConfig | None = None
    parameter_count_b: float | None = None
    task: str | None = Field(default=None, description="the catalog's task (its `task` tag on OCI)")
    architecture: Architecture | None = None

    @classmethod
    def from_catalog(cls, model: CatalogModel, config: DeploymentConfig | None) -> ModelInput:
        return cls(
            model_id=model.id,
            name=model.name,
            config=config,
            parameter_count_b=model.parameter_count_b,
            task=model.task,
        )


# --------------------------------------------------------------------------------------------------
# Allocation and plans


class AllocationAlternative(BaseModel):
    """A split that fills more of the shape than the primary-first one, at the primary's expense."""

    gpu_counts: dict[str, int] = Field(description="model id → GPUs, in input order")
    used_gpus: int
    adds_gpus: int = Field(description="GPUs it uses beyond the chosen split")
    above_primary: list[str] = Field(description="models that then get more GPUs than the primary")


class AllocationResult(BaseModel):
    """What :func:`aqua_lab.planning.allocate` decides for one shape."""

    fits: bool
    total_gpus: int
    gpu_counts: dict[str, int] = Field(
        default_factory=dict, description="model id → GPUs, in input order; empty when it does not fit"
    )
    used_gpus: int = 0
    primary_model_id: str | None = None
    primary_honoured: bool | None = Field(
        default=None,
        description="with a primary model: whether it got at least as many GPUs as every other model",
    )
    reasons: list[str] = Field(
        default_factory=list, description="why it does not fit, or why the primary was not favoured"
    )
    alternatives: list[AllocationAlternative] = Field(
        default_factory=list,
        description="with a primary model: a split that uses more GPUs but gives another model more than the primary",
    )
    rejected_counts: dict[str, list[int]] = Field(
        default_factory=dict,
        description="allowed counts that were ignored (not a power of two, or more than the shape has)",
    )


KvCacheDtype = Literal["auto", "fp8"]


class CapacityInputs(BaseModel):
    """What-if inputs of a plan.  ``None`` means: what the model's config says, else vLLM's default."""

    model_config = ConfigDict(extra="forbid")

    max_model_len: int | None = Field(default=None, ge=16, description="context each sequence must hold")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="sequences of max_model_len that must fit at once (vLLM: 1; llama.cpp: its slots)",
    )
    kv_cache_dtype: KvCacheDtype | None = Field(default=None, description="auto (the weights' dtype) or fp8")
    weight_precision: str | None = Field(
        default=None, description="auto, bf16, fp16, fp8, int8, int4, mxfp4 or a GGUF type (Q4_K_M, Q8_0, …)"
    )
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1, description="vLLM's default is 0.9")

    @staticmethod
    def precisions() -> list[str]:
        """The weight precisions the memory model knows (for the fronts' choices)."""
        return known_precisions()

    @field_validator("weight_precision")
    @classmethod
    def _known_precision(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or precision_bytes(value) is not None:
            return value
        raise ValueError(f"unknown precision {value!r}: use one of {', '.join(known_precisions())}")


class MemoryFit(BaseModel):
    """One model at one tensor-parallel size: what each of its GPUs holds (GB are 10^9 bytes)."""

    tensor_parallel_size: int
    weights_gb: float = Field(description="weights per GPU")
    kv_bytes_per_token: int = Field(description="KV cache bytes per token per GPU")
    kv_cache_gb: float = Field(description="KV cache per GPU for concurrency × max_model_len tokens")
    overhead_gb: float = Field(description="runtime overhead per GPU (activations, CUDA graphs, context)")
    per_gpu_gb: float = Field(description="weights + KV cache + overhead on each GPU")
    gpu_memory_gb: float = Field(description="memory the engine may use per GPU (memory × utilisation)")
    gpu_memory_utilization: float
    max_model_len: int = Field(description="the context checked")
    concurrency: int
    kv_cache_dtype: str
    weight_precision: str
    kv_capacity_tokens: int = Field(description="tokens the KV cache holds on this share")
    max_model_len_fit: int = Field(description="the largest context for which `concurrency` sequences fit")
    fits: bool
    reasons: list[str] = Field(default_factory=list)


class PlannedModel(BaseModel):
    """One model's share of a shape.  ``ocid`` and ``gpu_count`` are the seed's fields."""

    ocid: str
    gpu_count: int
    model_name: str | None = None
    estimated: bool = Field(
        default=False, description="counts came from a memory estimate, not a deployment_config.json"
    )
    parameters: dict[str, str] = Field(
        default_factory=dict, description="config parameters for this count (e.g. VLLM_PARAMS)"
    )
    gpu_memory_in_gbs: float | None = Field(default=None, description="GPU memory this share gives")
    estimated_need_in_gbs: float | None = Field(
        default=None, description="memory the model needs across its GPUs (weights + KV cache + overhead)"
    )
    memory: MemoryFit | None = Field(default=None, description="per-GPU memory at this GPU count")
    suggested_parameters: str | None = Field(
        default=None, description="vLLM flags the memory model suggests (--max-model-len, --kv-cache-dtype)"
    )


class PlanAlternative(BaseModel):
    """Another split of the same shape a user may take instead: it fills more GPUs, but the primary
    model no longer gets the most."""

    models: list[PlannedModel]
    used_gpus: int
    adds_gpus: int = Field(description="GPUs it uses beyond the plan's split")
    above_primary: list[str] = Field(description="ids of the models that then get more GPUs than the primary")
    note: str = ""


class ShapePlan(BaseModel):
    """An entry of ``gpu_allocation``: seed fields ``models`` and ``total_gpus_available`` plus ours."""

    models: list[PlannedModel]
    total_gpus_available: int
    used_gpus: int
    primary_model_id: str | None = None
    primary_honoured: bool | None = None
    notes: list[str] = Field(default_factory=list)
    alternatives: list[PlanAlternative] = Field(default_factory=list)

    def gpu_owners(self, models: Sequence[PlannedModel] | None = None) -> list[str | None]:
        """The model id owning each GPU of the shape, in order (None: idle) — what a picture draws;
        ``models``: another split of the same shape (one of its ``alternatives``)."""
        cells: list[str | None] = [
            m.ocid for m in (self.models if models is None else models) for _ in range(m.gpu_count)
        ]
        return cells + [None] * (self.total_gpus_available - len(cells))


class Plan(BaseModel):
    """The answer to "where can these models run together, and how are the GPUs split".

    Serialises like ADS's ``get_multimodel_deployment_config`` output (``deployment_config``,
    ``gpu_allocation``, ``error_message``) with extra fields a user needs: why each other shape
    cannot, which models were sized by estimate, and warnings about their configs.
    """

    deployment_config: dict[str, DeploymentConfig]
    gpu_allocation: dict[str, ShapePlan]
    error_message: str | None = None
    primary_model_id: str | None = None
    incompatible_shapes: dict[str, list[str]] = Field(default_factory=dict)
    estimated_models: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    capacity: CapacityInputs | None = Field(default=None, description="the what-if inputs the memory figures use")


# --------------------------------------------------------------------------------------------------
# Deployment requests (the options of `ads aqua deployment create`)


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str
    model_name: str | None = None
    model_path: str | None = None


class ModelSpec(BaseModel):
    """One entry of ``--models``: ``{"model_id": …, "gpu_count": 1, "model_name": …}``."""

    model_config = ConfigDict(extra="forbid")

    model_id: str
    gpu_count: int
    model_name: str | None = Field(default=None, description="served name; defaults to the model's name")
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


DeploymentType = Literal["MULTI", "STACKED", "SINGLE"]


#: the answer to "can it scale to zero?" (issue 28 item 6), wherever a count of 0 is given
NO_ZERO_INSTANCES = (
    "0 instances: a model deployment cannot scale to zero (OCI Data Science refuses an instance count of 0, "
    "autoscaling included); use 1 or more, and deactivate the deployment to stop its instances (locally, "
    "idle models sleep instead: idle_sleep_s)"
)


def _not_zero(value: Any) -> Any:
    if value == 0 and not isinstance(value, bool):
        raise ValueError(NO_ZERO_INSTANCES)
    return value


Instances = Annotated[int, BeforeValidator(_not_zero), Field(ge=1)]


class Autoscaling(BaseModel):
    """``--autoscaling``: the shorthand for one predefined-metric rule (what most deployments need);
    ``scaling_policy`` takes the SDK's full ``AutoScalingPolicy`` instead."""

    model_config = ConfigDict(extra="forbid")

    minimum_instance_count: Instances = 1
    maximum_instance_count: Instances
    initial_instance_count: Instances | None = Field(default=None, description="defaults to the minimum")
    metric: Literal["CPU_UTILIZATION", "MEMORY_UTILIZATION"] = "CPU_UTILIZATION"
    scale_in_threshold: int = Field(default=20, description="percent; fewer instances below it")
    scale_out_threshold: int = Field(default=75, description="percent; more instances above it")
    cool_down_in_seconds: int = 600
    pending_duration: str = Field(default="PT5M", description="ISO 8601 duration the metric must stay over")
    instance_count_adjustment: int = Field(default=1, ge=1)
    is_enabled: bool = True


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
    server_port: int = Field(default=8080, ge=1, le=65535)
    health_check_port: int = Field(default=8080, ge=1, le=65535)
    env_var: dict[str, str] = Field(default_factory=dict)
    private_endpoint_id: str | None = None
    subnet_id: str | None = None
    bandwidth_mbps: int | None = Field(default=None, ge=1)
    ocpus: float | None = Field(default=None, gt=0)
    memory_in_gbs: float | None = Field(default=None, gt=0)
    freeform_tags: dict[str, str] = Field(default_factory=dict)
    defined_tags: dict[str, dict[str, Any]] = Field(default_factory=dict)
    primary_model_id: str | None = None
    idle_sleep_s: int | None = Field(
        default=None, ge=1, description="local: the idle seconds before each model that is not pinned sleeps"
    )

    @model_validator(mode="after")
    def _logs_have_their_group(self) -> DeploymentSpec:
        # OCI takes a log only with its group; without one the request would carry logGroupId null
        if (self.access_log_id or self.predict_log_id) and not self.log_group_id:
            given = "access_log_id" if self.access_log_id else "predict_log_id"
            raise ValueError(f"{given} needs log_group_id: pass the log group the access and predict logs share")
        return self


class ScalingChange(BaseModel):
    """``deployment update --instance_count/--autoscaling/--scaling_policy/--bandwidth_mbps``: one of
    the three scaling forms of :class:`DeploymentSpec`, for a live deployment."""

    model_config = ConfigDict(extra="forbid")

    instance_count: Instances | None = None
    autoscaling: Autoscaling | None = None
    scaling_policy: dict[str, Any] | None = None
    bandwidth_mbps: int | None = Field(default=None, ge=1)


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

    @classmethod
    def of(cls, validated: ValidatedDeployment) -> ValidationResult:
        return cls(
            instance_shape=validated.shape.name,
            models=validated.models,
            used_gpus=validated.used_gpus,
            warnings=validated.warnings,
            slot_unit=validated.shape.slot_unit,
            refused_now=validated.refused_now,
        )


# --------------------------------------------------------------------------------------------------
# Deployments


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
    error_pct: float | None = Field(default=None, description="(planned - RSS) / RSS × 100, while it is resident")


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


class ScalingEvent(BaseModel):
    """One change of a deployment's instance count, and why."""

    time: str
    from_count: int
    to_count: int
    reason: str


class Scaling(BaseModel):
    """A deployment's scaling: the policy it runs (OCI wire JSON), its instances now, recent events."""

    policy: dict[str, Any]
    instance_count: int = Field(description="instances (OCI) or replicas of each model (local) running now")
    minimum_instance_count: int = 1
    maximum_instance_count: int = 1
    bandwidth_mbps: int | None = None
    events: list[ScalingEvent] = Field(default_factory=list)


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
    slots: list[int] = Field(
        default_factory=list,
        description="local: the cores (CPU machine) or GPUs it owns while it runs, so no other deployment takes them",
    )
    warnings: list[str] = Field(default_factory=list, description="what the platform noted when it placed it")

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


# --------------------------------------------------------------------------------------------------
# Chat


# ChatRequest, CompareRequest and ChatMessage are the REST face of the one OpenAI wire
# (inference/protocol.py, imported above): every sampling field's bounds are written there, once.


# --------------------------------------------------------------------------------------------------
# Evaluation (the options of `ads aqua evaluation create`)


def _no_nul(value: str) -> str:
    # the OS refuses such a path with a ValueError deep inside open()/stat(): refuse it here, by name
    if "\x00" in value:
        raise ValueError("a path cannot contain a NUL character (\\x00)")
    return value


#: a file system path (or an oci:// URI) given in a request
PathText = Annotated[str, AfterValidator(_no_nul)]


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["bertscore", "rouge", "bleu", "perplexity_score", "text_readability", "pairwise_judge", "judge_score"]
    args: dict[str, Any] = Field(default_factory=dict)


class EvaluationSpec(BaseModel):
    """One model of a deployment evaluated on a dataset (one evaluation per model of a multi-model
    deployment, as the seed says)."""

    model_config = ConfigDict(extra="forbid")

    evaluation_source_id: str = Field(description="the deployment")
    evaluation_name: str = Field(min_length=1)
    dataset_path: PathText = Field(
        description="JSONL of prompt, completion rows: oci://bucket@namespace/path/dataset.jsonl on OCI; "
        "a file path, or sample (the bundled 36 rows), on the local platform"
    )
    report_path: PathText = Field(description="oci://bucket@namespace/report/path/ on OCI; a local directory on local")
    model_parameters: dict[str, Any] = Field(
        description='sampling parameters; "model" (served name) picks one model (required on OCI for multi-model; '
        "local without it evaluates every model of the deployment side by side)"
    )
    shape_name: str = "VM.Standard.E4.Flex"
    block_storage_size: int = Field(default=50, ge=50)
    compartment_id: str | None = None
    project_id: str | None = None
    evaluation_description: str | None = None
    memory_in_gbs: float | None = Field(default=None, gt=0)
    ocpus: float | None = Field(default=None, gt=0)
    experiment_id: str | None = None
    experiment_name: str | None = None
    experiment_description: str | None = None
    log_group_id: str | None = None
    log_id: str | None = None
    metrics: list[MetricSpec] = Field(default_factory=lambda: [MetricSpec(name="bertscore"), MetricSpec(name="rouge")])
    force_overwrite: bool = False
    container_image_uri: str | None = None

    @model_validator(mode="after")
    def _log_has_its_group(self) -> EvaluationSpec:
        if self.log_id and not self.log_group_id:
            raise ValueError("log_id needs log_group_id: pass the log group the log belongs to")
        return self


class MetricDescription(BaseModel):
    """A metric an evaluation accepts (``metrics: [{"name", "args"}]``), as ``GET evaluations/metrics`` lists it."""

    name: str
    label: str
    keys: list[str] = Field(description="per-row score keys (the keys of a report's data rows)")
    args: dict[str, Any] = Field(description="accepted args and their defaults")
    higher_is_better: bool = True
    description: str = ""


class ModelProgress(BaseModel):
    """One model's share of an evaluation."""

    model: str
    state: str = Field(description="ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED")
    rows_done: int = 0
    rows_total: int = 0
    rows_failed: int = 0
    eta_s: float | None = Field(default=None, description="seconds left at the current pace")
    report: str | None = Field(default=None, description="report.json once scored")
    evaluation_id: str | None = Field(default=None, description="OCI: this model's evaluation (model OCID)")
    details: str | None = Field(default=None, description="OCI: the job run's lifecycle details")


class ResourceRef(BaseModel):
    """An OCI resource as AQUA names it in its outputs (``AquaResourceIdentifier``)."""

    id: str = ""
    name: str = ""
    url: str = ""


class Evaluation(BaseModel):
    id: str = Field(
        description="OCI: the evaluation model's OCID (as ADS; for a comparison, its first member's); "
        "local: the local evaluation"
    )
    job_id: str | None = None
    name: str
    state: str = Field(description="ADS lifecycle words: ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED")
    deployment_id: str
    model: str = Field(description="served name; for a comparison of several models, the first")
    report_path: str
    created_on: str | None = None
    models: list[ModelProgress] = Field(default_factory=list, description="per-model progress (local platform)")
    metrics: list[MetricSpec] = Field(default_factory=list)
    dataset_path: str | None = None
    details: str | None = None
    comparison_report: str | None = Field(default=None, description="comparison.html once scored")
    # what ADS's AquaEvaluationSummary/Detail carry (OCI)
    aqua_service_model: bool = Field(default=False, description="the evaluated deployment serves AQUA service models")
    description: str | None = None
    created_by: str | None = None
    compartment_id: str | None = None
    project_id: str | None = None
    console_url: str | None = Field(default=None, description="the evaluation model in the OCI console")
    endpoint: str | None = Field(default=None, description="the evaluated deployment's endpoint")
    shape_info: dict[str, Any] | None = Field(
        default=None, description="the job's instance_shape, instance_count, ocpus, memory_in_gbs"
    )
    tags: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict, description="model_params as ADS stores them")
    experiment: ResourceRef | None = Field(default=None, description="the model version set")
    source: ResourceRef | None = Field(default=None, description="the evaluated deployment")
    job: ResourceRef | None = Field(default=None, description="the job run")
    log_group: ResourceRef | None = None
    log: ResourceRef | None = None


class EvaluationStatus(BaseModel):
    """The light poll of a running evaluation: its state and each model's rows done / total and ETA
    (``lifecycle_state``/``lifecycle_details`` are ADS's names for ``state``/``details``)."""

    id: str
    name: str
    state: str = Field(description="ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED")
    lifecycle_state: str = Field(description="ADS's name for state")
    lifecycle_details: str | None = Field(default=None, description="why it failed or was canceled")
    finished: bool = Field(description="state is SUCCEEDED, FAILED or CANCELED: polling can stop")
    rows_done: int = Field(description="answers generated, all models together")
    rows_total: int
    eta_s: float | None = Field(default=None, description="seconds until the slowest model is done, at its pace")
    models: list[ModelProgress] = Field(default_factory=list)
    # ADS's get_status names its job's logs so; empty where the platform keeps no log (local: the job's log file)
    log_id: str = ""
    log_url: str = ""
    loggroup_id: str = ""
    loggroup_url: str = ""


class MetricStats(BaseModel):
    """One score key over a model's rows (the numbers behind a report's summary line)."""

    count: int = 0
    median: float | None = None
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None


class MetricSummaryLine(BaseModel):
    """A report's ``metric_summary_result`` entry, ADS's wording: ``Median F1: 0.598 (SD: 0.018)``."""

    metric: str
    label: str | None = None
    score: str
    grade: str | None = None


class MetricScores(BaseModel):
    """One metric of one model: its score keys' statistics and corpus-level figures."""

    name: str
    label: str
    keys: list[str]
    headline: str | None = Field(default=None, description="the key the summary line reports")
    higher_is_better: bool = True
    summary: dict[str, MetricStats] = Field(description="per score key")
    corpus: dict[str, Any] | None = Field(default=None, description="corpus-level scores (e.g. BLEU's)")
    note: str | None = None


class ModelEvaluationMetrics(BaseModel):
    model: str
    metric_summary_result: list[MetricSummaryLine]
    metrics: list[MetricScores]
    generation: dict[str, Any] = Field(default_factory=dict, description="latency and token figures")


class EvaluationMetrics(BaseModel):
    """Per model the report's scores without its rows: enough for a table or a chart."""

    id: str
    name: str
    state: str
    models: list[ModelEvaluationMetrics]


class UploadedDataset(BaseModel):
    """A JSONL dataset sent to the server and stored on its machine: pass ``dataset_path`` to create."""

    dataset_path: str = Field(description="where the server stored it: the dataset_path of an evaluation")
    filename: str
    rows: int
    bytes: int
    categories: dict[str, int] = Field(default_factory=dict, description="rows per category (none: uncategorised)")


class EvaluationConfig(BaseModel):
    """What a form needs to start an evaluation (ADS's ``evaluation/config`` answers ``model_params``,
    ``shape`` and ``default``; the metrics and where reports go by default are aqua_lab's)."""

    model_params: dict[str, Any] = Field(description="default sampling parameters")
    shape: dict[str, dict[str, Any]] = Field(default_factory=dict, description="job shapes (OCI) by name")
    default: dict[str, Any] = Field(default_factory=dict, description="the default job shape")
    metrics: list[MetricDescription]
    default_metrics: list[str]
    reports_dir: str | None = Field(default=None, description="a directory for reports on the server's machine")
    sample_rows: int = Field(description="rows of the bundled dataset (dataset_path: sample)")
    platform: str = Field(default="", description="the platform these defaults are for")
    progress: Literal["rows", "state"] = Field(
        default="rows",
        description="what a running evaluation reports per model: rows done/total (local), or only the job "
        "run's state (OCI: ACCEPTED, IN_PROGRESS, SUCCEEDED)",
    )
    fields: list[str] = Field(
        default_factory=list,
        description="EvaluationSpec fields only this platform uses (OCI: shape_name, block_storage_size, "
        "experiment_name, log_group_id, log_id, force_overwrite), so a form shows them only here",
    )
    report_path_hint: str = Field(default="", description="the form report_path takes here (a placeholder)")
    dataset_hint: str = Field(default="", description="what dataset_path accepts here (a placeholder)")
    dataset_note: str = Field(default="", description="what happens to a dataset file on this machine")


def chunk_text(chunk: dict[str, Any]) -> str:
    """The text an OpenAI stream chunk adds (chat: ``delta.content``; completions: ``text``)."""
    choice = (chunk.get("choices") or [{}])[0]
    return choice.get("delta", {}).get("content") or choice.get("text") or ""


def served_models(models: Sequence[DeployedModel | ResolvedModel]) -> list[tuple[str, str]]:
    """(served name, model id) of everything a deployment answers to: each model under its
    ``model_name``, then each of its LoRA adapters under its own name (else its id)."""
    served = []
    for m in models:
        served.append((m.model_name, m.model_id))
        served += [(w.model_name or w.model_id, w.model_id) for w in m.fine_tune_weights]
    return served


# --------------------------------------------------------------------------------------------------
# Metrics


class MetricPoint(BaseModel):
    time: float = Field(description="end of the bucket, seconds since the epoch")
    requests: int = 0
    errors: int = 0
    ttft_p95_ms: float | None = None
    tokens_per_s: float | None = None
    value: float | None = Field(default=None, description="the value of a deployment-wide series' metric")


class ModelMetrics(BaseModel):
    """One served model of a deployment over a window."""

    model_name: str
    requests: int | None = None
    errors: int | None = None
    generated_tokens: int | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    tokens_per_s: float | None = None
    in_flight: int | None = None
    replicas: int | None = None
    per_replica: dict[str, int] = Field(default_factory=dict, description="requests per replica in the window")
    series: list[MetricPoint] = Field(default_factory=list)


class DeploymentMetrics(BaseModel):
    deployment_id: str
    platform: str
    window_s: float
    source: str = Field(description="where the numbers come from (the local router, OCI Monitoring, …)")
    models: list[ModelMetrics]
    deployment: dict[str, list[MetricPoint]] = Field(
        default_factory=dict, description="deployment-wide series (OCI Monitoring: PredictRequestCount, …)"
    )
