"""The model catalog: catalog entries, architectures, planning inputs and the ``deployment_config.json`` schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
