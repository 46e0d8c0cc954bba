"""``openapi.json``, generated from a route table (:mod:`.routes`) and the pydantic models it names.

The document is the contract a client (and schemathesis, in the test suite) holds the server to:
every status a route can answer is listed, query parameters carry their types and ranges, and a
streaming route names the payload of each Server-Sent Event it sends (``x-sse-events``: event
name → schema; ``message`` is a ``data:`` line without an event name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..version import __version__
from .limits import MAX_BODY_BYTES
from .models import Error

if TYPE_CHECKING:
    from .route import Route

REF = "#/components/schemas/{model}"

#: what every route may answer besides its success, and why
ERRORS = {
    "400": "the body is not a JSON object, or the request cannot be carried out as asked",
    "401": "no valid Jupyter token or session",
    "403": "Jupyter refused: a write without XSRF from a cookie session, a foreign Origin, or the authorizer said no",
    "404": "unknown id or route",
    "405": "method not allowed here (`Allow` lists the ones that are)",
    "409": "clashes with the deployment's state, or the platform cannot do this",
    "422": "a field or query parameter does not validate (`errors` names each, with its fix)",
    "502": "the platform or the model server failed or broke the stream",
    "503": "something this machine needs is missing or unreadable (the engine, the state file); the message says what",
    "507": "the disk holding aqua_lab's data is full: the message says how much is free and needed; reads go on",
}


def body_errors(limit: int = MAX_BODY_BYTES) -> dict[str, str]:
    """Added where a route takes a body."""
    return {"413": f"the body is over {limit} bytes ({limit // 1024} KiB)"}


#: added where a route relays to a model
MODEL_ERRORS = {
    "429": "the model's queue is full; retry after the `Retry-After` seconds",
    "504": "the model passed a time limit (connect, first byte, idle or total; `timeouts` sets this request's)",
}


def _models_of(routes: Sequence[Route]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [Error]
    for route in routes:
        for model in (route.request, route.response, *route.events.values()):
            if isinstance(model, type) and issubclass(model, BaseModel) and model not in models:
                models.append(model)
    return models


def _query_parameter(name: str, given: str | dict[str, Any]) -> dict[str, Any]:
    """A query parameter from a route's ``query`` entry: a description (a string), or a JSON schema
    with its ``description``."""
    schema = {"type": "string"} if isinstance(given, str) else {k: v for k, v in given.items() if k != "description"}
    text = given if isinstance(given, str) else given.get("description", "")
    return {"name": name, "in": "query", "required": False, "description": text, "schema": schema}


def openapi_document(routes: Sequence[Route], base_url: str = "/") -> dict[str, Any]:
    keys = [(m, "validation") for m in _models_of(routes)]
    refs, defs = models_json_schema(keys, ref_template=REF)

    def schema(model: Any) -> dict[str, Any]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return refs[(model, "validation")]
        return {"type": "object"}

    def error(text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": schema(Error)}}}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        content: dict[str, Any] = {}
        if route.stream:
            content["text/event-stream"] = {
                "schema": {
                    "type": "string",
                    "description": "Server-Sent Events: `data: <json>` lines, `event: <name>` before named ones, "
                    "and `data: [DONE]` last",
                    "x-sse-events": {name: schema(model) for name, model in route.events.items()},
                }
            }
        if not route.stream or route.response is not None:
            for media in route.media_types:
                content[media] = (
                    {"schema": schema(route.response)}
                    if media == "application/json"
                    else {"schema": {"type": "string"}}
                )
        errors = {**ERRORS, **(body_errors(route.body_limit) if route.request is not None else {})}
        errors.update(MODEL_ERRORS if route.stream else {})
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{route.path.replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _path_params(route.path)
            ]
            + [_query_parameter(name, given) for name, given in route.query.items()],
            "responses": {
                str(route.status): {"description": "ok", "content": content},
                **{code: error(text) for code, text in sorted(errors.items())},
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
