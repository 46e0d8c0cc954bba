"""Allocation and plans: how a shape's GPUs split between models, and why a shape cannot hold them."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from .capacity import CapacityInputs, MemoryFit
from .catalog import DeploymentConfig


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
    gpu_indices: list[int] | None = Field(
        default=None, description="the shape's GPUs it runs on, where models share GPUs (the local platform)"
    )
    memory_budget_in_gbs: float | None = Field(
        default=None,
        description="memory it may use on each of its GPUs when it shares one; its parameters hold it there",
    )
    sharing: str | None = Field(default=None, description="e.g. shares GPU 0 with 'b'; None: its GPUs are its own")


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
    slot_unit: str = Field(
        default="GPU", description="what gpu_count counts here: OCPU on an OCI CPU flex shape (sized by ocpus)"
    )
    gpu_usable_in_gbs: float | None = Field(
        default=None, description="where models share GPUs: the memory of each GPU their budgets share (× utilisation)"
    )

    def gpu_owners(self, models: Sequence[PlannedModel] | None = None) -> list[str | None]:
        """The model id owning each GPU of the shape, in order (None: idle) — what a picture draws;
        ``models``: another split of the same shape (one of its ``alternatives``)."""
        if models is None and self.shares_gpus:  # a shared GPU is drawn by its first model; gpu_stacks has all
            return [stack[0][0] if stack else None for stack in self.gpu_stacks()]
        cells: list[str | None] = [
            m.ocid for m in (self.models if models is None else models) for _ in range(m.gpu_count)
        ]
        return cells + [None] * (self.total_gpus_available - len(cells))

    @property
    def shares_gpus(self) -> bool:
        return any(m.gpu_indices is not None for m in self.models)

    def gpu_stacks(self) -> list[list[tuple[str, float]]]:
        """Where models share GPUs: for each GPU of the shape, (model id, memory budget) of every model
        on it, in model order — the stacked bar per GPU a picture draws (empty list: an idle GPU)."""
        stacks: list[list[tuple[str, float]]] = [[] for _ in range(self.total_gpus_available)]
        for m in self.models:
            for g in m.gpu_indices or []:
                stacks[g].append((m.ocid, m.memory_budget_in_gbs or 0.0))
        return stacks


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
