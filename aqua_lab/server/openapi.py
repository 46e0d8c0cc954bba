"""``openapi.json``, generated from a route table (:mod:`.routes`) and the pydantic models it names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .models import Error

if TYPE_CHECKING:
    from .routes import Route

REF = "#/components/schemas/{model}"


def openapi_document(routes: Sequence[Route], base_url: str = "/") -> dict[str, Any]:
    models: list[type[BaseModel]] = [Error]
    for route in routes:
        for model in (route.request, route.response):
            if isinstance(model, type) and issubclass(model, BaseModel) and model not in models:
                models.append(model)
    keys = [(m, "validation") for m in models]
    refs, defs = models_json_schema(keys, ref_template=REF)

    def schema(model: Any) -> dict[str, Any]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return refs[(model, "validation")]
        return {"type": "object"}

    error = {"description": "error", "content": {"application/json": {"schema": schema(Error)}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{route.path.replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _path_params(route.path)
            ]
            + [
                {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
                for name, text in route.query.items()
            ],
            "responses": {
                str(route.status): {
                    "description": "ok",
                    "content": {
                        "text/event-stream" if route.stream else "application/json": {
                            "schema": {"type": "string"} if route.stream else schema(route.response)
                        }
                    },
                },
                "400": error,
                "404": error,
                "409": error,
                "422": error,
            },
        }
        if route.status == 201:
            operation["responses"]["201"]["headers"] = {
                "Location": {"description": "URL of the created resource", "schema": {"type": "string"}}
            }
        if route.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema(route.request)}},
            }
        paths.setdefault(f"/aqua/{route.path}", {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aqua_lab",
            "version": __version__,
            "description": "Plan, deploy, chat with and evaluate several LLMs on one GPU shape.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"jupyterToken": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
        "security": [{"jupyterToken": []}],
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
