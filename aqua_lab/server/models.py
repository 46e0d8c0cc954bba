"""The REST API's own request and response shapes (the rest are domain models).  They are what
``openapi.json`` documents and what the handlers parse and return."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class DataList(BaseModel, Generic[T]):
    data: list[T]


class PlatformInfo(BaseModel):
    name: str
    default: bool
    description: str


class PlanRequest(BaseModel):
    model_ids: list[str] = Field(min_length=1, description="model ids or names")
    primary_model_id: str | None = None
    shape: str | None = Field(default=None, description="only this shape")


class Logs(BaseModel):
    model_name: str | None
    text: str


class Error(BaseModel):
    message: str
    errors: list[dict[str, str | None]] | None = None
    request_id: str | None = None
