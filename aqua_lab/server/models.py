"""The REST API's own request and response shapes (the rest are domain models).  They are what
``openapi.json`` documents and what the handlers parse and return."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..domain import CapacityInputs

T = TypeVar("T")


class DataList(BaseModel, Generic[T]):
    data: list[T]


class PlatformInfo(BaseModel):
    name: str
    default: bool
    description: str


class PlanRequest(CapacityInputs):
    """The models, and the what-if inputs of the memory model (``max_model_len``, ``concurrency``,
    ``kv_cache_dtype``, ``weight_precision``, ``gpu_memory_utilization``)."""

    model_ids: list[str] = Field(min_length=1, description="model ids or names")
    primary_model_id: str | None = None
    shape: str | None = Field(default=None, description="only this shape")

    def capacity(self) -> CapacityInputs:
        return CapacityInputs(**self.model_dump(include=set(CapacityInputs.model_fields)))


class RegisterModelRequest(BaseModel):
    """A model file or folder on the server's machine: a GGUF file, a Hugging Face folder, or a GGUF
    LoRA adapter (with ``base_model_id``)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="absolute path on the machine the server runs on")
    name: str | None = Field(default=None, description="the model's name (default: from the file)")
    base_model_id: str | None = Field(default=None, description="for a LoRA adapter: the local model it adapts")


class Logs(BaseModel):
    model_name: str | None
    text: str


class Error(BaseModel):
    message: str
    errors: list[dict[str, str | None]] | None = None
    request_id: str | None = None
