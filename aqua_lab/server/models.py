"""The REST API's own request and response shapes (the rest are domain models).  They are what
``openapi.json`` documents and what the handlers parse and return."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..domain import CapacityInputs, PathText

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

    path: PathText = Field(min_length=1, description="absolute path on the machine the server runs on")
    name: str | None = Field(default=None, description="the model's name (default: from the file)")
    base_model_id: str | None = Field(default=None, description="for a LoRA adapter: the local model it adapts")


class DatasetUploadRequest(BaseModel):
    """A JSONL evaluation dataset from the user's machine, as text (one JSON object per line)."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255, description="the file's name; must end in .jsonl")
    content: str = Field(description='the file\'s text: {"prompt", "completion", "category"?} per line')


class EvaluationReportContent(BaseModel):
    """ADS's answer to ``GET evaluation/{id}/report``: the HTML report, base64-encoded."""

    evaluation_id: str
    content: str = Field(description="report.html (or the comparison of every model), base64")


class Logs(BaseModel):
    model_name: str | None
    text: str


class FieldProblem(BaseModel):
    field: str = Field(description="where: a field path such as models[1].gpu_count, or a query parameter")
    message: str
    fix: str | None = Field(default=None, description="what to do about it")


class Error(BaseModel):
    message: str
    errors: list[FieldProblem] | None = Field(default=None, description="every field at fault (422)")
    request_id: str | None = Field(default=None, description="the platform's, or the server log's for a 500")


# the payloads of the Server-Sent Events the streaming routes send ----------------------------------


class StreamError(Error):
    """``event: error``: the stream failed after it began (the status it would have had)."""

    status: int


class ChatChunk(BaseModel):
    """``data:`` of a chat stream: the model's own OpenAI chunk object, relayed as it came."""

    model_config = ConfigDict(extra="allow")

    choices: list[dict[str, Any]] = Field(default_factory=list)


class CompareChunk(BaseModel):
    """``data:`` of a compare stream: one model's chunk."""

    model: str
    chunk: dict[str, Any]


class CompareDone(BaseModel):
    """``event: done``: one model has finished."""

    model: str
    tokens: int
    ttft_ms: float | None = None
    tokens_per_s: float | None = None


class CompareError(BaseModel):
    """``event: error`` for one model (the others go on); without ``model`` the whole stream failed."""

    model: str | None = None
    message: str
    status: int | None = None
