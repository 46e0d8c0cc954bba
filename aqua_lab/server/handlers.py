"""REST handlers under ``<base_url>aqua/``: parse (pydantic) → service → JSON.

Every verb needs Jupyter auth; POST/PUT/DELETE need XSRF like every Jupyter API (token-authenticated
requests are exempt, as everywhere in Jupyter).  Blocking platform calls run in an executor, never
on the event loop.  Errors are mapped in :mod:`.errors`.  The route table at the bottom is also the
source of ``openapi.json``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, Field, ValidationError
from tornado import web
from tornado.iostream import StreamClosedError

from ..domain import (
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    ModelState,
    Plan,
    ResolvedModel,
    ScalingChange,
    Shape,
)
from ..errors import AquaLabError, InvalidInput, NotFound, Problem
from ..service import AquaLabService, window_seconds
from .errors import BadRequest, to_response

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------------------------------
# REST-only shapes


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


class ValidationResult(BaseModel):
    instance_shape: str
    models: list[ResolvedModel]
    used_gpus: int
    warnings: list[str]


class Logs(BaseModel):
    model_name: str | None
    text: str


class Error(BaseModel):
    message: str
    errors: list[dict[str, str | None]] | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------------------------------
# Base


class Base(ExtensionHandlerMixin, APIHandler):
    client_gone = False

    def on_connection_close(self) -> None:
        self.client_gone = True
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.cancel()  # closes the upstream request: the model stops generating

    def service(self) -> AquaLabService:
        return self.extensionapp.service(self.get_query_argument("platform", None))

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    def read(self, model: type[M]) -> M:
        try:
            # decode as UTF-8 ourselves: json.loads(bytes) guesses UTF-16/32 from NUL bytes and can
            # fail with a UnicodeDecodeError instead of a JSON error
            data = json.loads((self.request.body or b"null").decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest("the request body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise BadRequest(
                f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from None

    def int_argument(self, name: str, default: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise InvalidInput(Problem(name, f"{raw!r} is not a whole number", f"e.g. ?{name}={default}")) from None

    def reply(self, value: Any, status: int = 200) -> None:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        self.set_status(status)
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, body = to_response(exc) if exc is not None else (status_code, {"message": self._reason})
        self.set_status(status)
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, AquaLabError | ValidationError | web.HTTPError):
            self.log.info("aqua_lab %s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    async def sse(self, events: AsyncIterator[tuple[str | None, dict[str, Any] | str]]) -> None:
        """Stream ``(event name, JSON or JSON text)`` pairs as Server-Sent Events, ending with
        ``data: [DONE]``.

        Errors before the first event are ordinary HTTP errors; after it they become an
        ``event: error`` carrying ``{"message", "status"}``."""
        try:
            first = await anext(events)
        except StopAsyncIteration:
            first = None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        _no_delay(self)

        async def pump() -> None:
            if first is not None:
                await self._send_event(*first)
            async for name, payload in events:
                await self._send_event(name, payload)

        self._pump = asyncio.ensure_future(pump())
        try:
            await self._pump
        except (asyncio.CancelledError, StreamClosedError):
            await events.aclose()
            return
        except Exception as exc:
            status, body = to_response(exc)
            await self._send_event("error", {**body, "status": status})
        finally:
            self._pump = None
        if not self.client_gone:
            self.write("data: [DONE]\n\n")
            self.finish(set_content_type="text/event-stream")

    async def _send_event(self, name: str | None, payload: dict[str, Any] | str) -> None:
        prefix = f"event: {name}\n" if name else ""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.write(f"{prefix}data: {data}\n\n")
        await self.flush()


# --------------------------------------------------------------------------------------------------
# Handlers


class Platforms(Base):
    @web.authenticated
    async def get(self) -> None:
        app = self.extensionapp
        self.reply(
            DataList[PlatformInfo](
                data=[
                    PlatformInfo(name=name, default=name == app.platform, description=text)
                    for name, text in app.platform_descriptions().items()
                ]
            )
        )


class Shapes(Base):
    @web.authenticated
    async def get(self) -> None:
        self.reply(DataList[Shape](data=await self.blocking(self.service().shapes)))


class Models(Base):
    @web.authenticated
    async def get(self) -> None:
        self.reply(DataList[CatalogModel](data=await self.blocking(self.service().models)))


class ModelConfig(Base):
    @web.authenticated
    async def get(self, model_id: str) -> None:
        service = self.service()
        config = (await self.blocking(service.model_input, model_id)).config
        if config is None:
            raise NotFound("deployment_config.json", model_id, "this model has none; planning estimates its GPUs")
        self.reply(config)


class Plans(Base):
    @web.authenticated
    async def post(self) -> None:
        request = self.read(PlanRequest)
        service = self.service()
        self.reply(await self.blocking(service.plan, request.model_ids, request.primary_model_id, request.shape))


class AdsDeploymentConfig(Base):
    """ADS-compatible ``GET deployments/config/<id1>,<id2>?primary_model_id=``."""

    @web.authenticated
    async def get(self, ids: str) -> None:
        ids = ids.replace(" ", "")
        if "," not in ids:  # one id: that model's raw {shape, configuration}, as ADS's handler answers
            config = (await self.blocking(self.service().model_input, ids)).config
            self.reply(config or DeploymentConfig())  # ADS: no config → empty one ("use defaults")
            return
        model_ids = [i for i in ids.split(",") if i]
        primary = self.get_query_argument("primary_model_id", None)
        self.reply(await self.blocking(self.service().plan, model_ids, primary))


class Deployments(Base):
    @web.authenticated
    async def get(self) -> None:
        self.reply(DataList[Deployment](data=await self.blocking(self.service().list_deployments)))

    @web.authenticated
    async def post(self) -> None:
        spec = self.read(DeploymentSpec)
        self.reply(await self.blocking(self.service().create_deployment, spec), status=201)


class Validate(Base):
    @web.authenticated
    async def post(self) -> None:
        validated = await self.blocking(self.service().validate, self.read(DeploymentSpec))
        self.reply(
            ValidationResult(
                instance_shape=validated.shape.name,
                models=validated.models,
                used_gpus=validated.used_gpus,
                warnings=validated.warnings,
            )
        )


class OneDeployment(Base):
    @web.authenticated
    async def get(self, deployment_id: str) -> None:
        self.reply(await self.blocking(self.service().get_deployment, deployment_id))

    @web.authenticated
    async def put(self, deployment_id: str) -> None:
        spec = self.read(DeploymentSpec)
        self.reply(await self.blocking(self.service().update_deployment, deployment_id, spec))

    @web.authenticated
    async def delete(self, deployment_id: str) -> None:
        self.reply(await self.blocking(self.service().delete, deployment_id))


class Activate(Base):
    @web.authenticated
    async def post(self, deployment_id: str) -> None:
        self.reply(await self.blocking(self.service().activate, deployment_id))


class Deactivate(Base):
    @web.authenticated
    async def post(self, deployment_id: str) -> None:
        self.reply(await self.blocking(self.service().deactivate, deployment_id))


class ModelStates(Base):
    @web.authenticated
    async def get(self, deployment_id: str) -> None:
        self.reply(DataList[ModelState](data=await self.blocking(self.service().model_states, deployment_id)))


class DeploymentLogs(Base):
    @web.authenticated
    async def get(self, deployment_id: str) -> None:
        model_name = self.get_query_argument("model_name", None)
        lines = self.int_argument("lines", 200)
        text = await self.blocking(self.service().logs, deployment_id, model_name, lines)
        self.reply(Logs(model_name=model_name, text=text))


class Chat(Base):
    @web.authenticated
    async def post(self, deployment_id: str) -> None:
        request = self.read(ChatRequest)
        service = self.service()
        if not request.stream:
            self.reply(await service.chat(deployment_id, request))
            return

        async def events() -> AsyncIterator[tuple[str | None, dict[str, Any] | str]]:
            async for data in service.chat_events(deployment_id, request):
                yield None, data  # the model's own JSON, relayed as is

        await self.sse(events())


class Compare(Base):
    @web.authenticated
    async def post(self, deployment_id: str) -> None:
        request = self.read(CompareRequest)
        service = self.service()

        async def events() -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
            async for item in service.compare(deployment_id, request):
                kind = item.pop("type")
                if kind == "chunk":
                    yield None, {"model": item["model"], "chunk": item["data"]}
                else:
                    yield kind, item

        await self.sse(events())


class OpenApi(Base):
    @web.authenticated
    async def get(self) -> None:
        from .openapi import openapi_document

        self.reply(openapi_document(self.settings.get("base_url", "/")))


def _no_delay(handler: web.RequestHandler) -> None:
    """Token events are small writes: send each at once instead of letting Nagle hold it back."""
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None and not stream.closed():
        stream.set_nodelay(True)


class NoSuchRoute(Base):
    """Anything else under aqua/: a JSON 404 that points at the API's description."""

    def _missing(self, *_: str) -> None:
        raise NotFound("route", f"{self.request.method} {self.request.path}", "see aqua/openapi.json for the API")

    get = post = put = delete = patch = web.authenticated(_missing)


# --------------------------------------------------------------------------------------------------
# Route table: the URL patterns and, for openapi.json, what each verb takes and returns.

DEPLOYMENT_ID = r"([^/]+)"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template under aqua/
    pattern: str  # tornado regex under aqua/
    handler: type[Base]
    summary: str
    request: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    stream: bool = False


PLATFORM_QUERY = {"platform": "platform to use (default: the server's c.AquaLab.platform)"}

ROUTES = [
    Route(
        "GET",
        "platforms",
        r"platforms",
        Platforms,
        "platforms and which is the default",
        response=DataList[PlatformInfo],
    ),
    Route("GET", "shapes", r"shapes", Shapes, "shapes of a platform", response=DataList[Shape], query=PLATFORM_QUERY),
    Route(
        "GET",
        "deployments/shapes",
        r"deployments/shapes",
        Shapes,
        "shapes (ADS-compatible path)",
        response=DataList[Shape],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "models",
        r"models",
        Models,
        "models of a platform",
        response=DataList[CatalogModel],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "models/{model_id}/config",
        r"models/(.+)/config",
        ModelConfig,
        "a model's deployment_config.json",
        response=DeploymentConfig,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "plans",
        r"plans",
        Plans,
        "plan: compatible shapes, GPU split, reasons",
        request=PlanRequest,
        response=Plan,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/config/{model_ids}",
        r"deployments/config/(.+)",
        AdsDeploymentConfig,
        "ADS-compatible: one id → that model's deployment_config.json; comma-separated ids → plan",
        response=Plan,
        query={**PLATFORM_QUERY, "primary_model_id": "favour this model"},
    ),
    Route(
        "GET",
        "deployments",
        r"deployments",
        Deployments,
        "deployments",
        response=DataList[Deployment],
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments",
        r"deployments",
        Deployments,
        "create a deployment (returns at once, CREATING)",
        request=DeploymentSpec,
        response=Deployment,
        status=201,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/validate",
        r"deployments/validate",
        Validate,
        "validate a deployment request without creating it",
        request=DeploymentSpec,
        response=ValidationResult,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}",
        rf"deployments/{DEPLOYMENT_ID}",
        OneDeployment,
        "one deployment with progress and per-model states (poll it while CREATING)",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "PUT",
        "deployments/{deployment_id}",
        rf"deployments/{DEPLOYMENT_ID}",
        OneDeployment,
        "replace the models of a deployment (OCI: live update; local: servers restart; 409 where impossible)",
        request=DeploymentSpec,
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "DELETE",
        "deployments/{deployment_id}",
        rf"deployments/{DEPLOYMENT_ID}",
        OneDeployment,
        "delete a deployment",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/activate",
        rf"deployments/{DEPLOYMENT_ID}/activate",
        Activate,
        "start a deactivated deployment",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/deactivate",
        rf"deployments/{DEPLOYMENT_ID}/deactivate",
        Deactivate,
        "stop a deployment, keeping it",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/models",
        rf"deployments/{DEPLOYMENT_ID}/models",
        ModelStates,
        "per-model states",
        response=DataList[ModelState],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/logs",
        rf"deployments/{DEPLOYMENT_ID}/logs",
        DeploymentLogs,
        "runtime log, or one model server's",
        response=Logs,
        query={**PLATFORM_QUERY, "model_name": "a served name", "lines": "how many lines (default 200)"},
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/chat",
        rf"deployments/{DEPLOYMENT_ID}/chat",
        Chat,
        "chat with one model: SSE (data: chunk, event: error, data: [DONE]) or JSON with stream=false",
        request=ChatRequest,
        response=dict,
        query=PLATFORM_QUERY,
        stream=True,
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/compare",
        rf"deployments/{DEPLOYMENT_ID}/compare",
        Compare,
        "one prompt to several models, streamed side by side (data: {model, chunk}; event: done|error)",
        request=CompareRequest,
        query=PLATFORM_QUERY,
        stream=True,
    ),
    Route("GET", "openapi.json", r"openapi\.json", OpenApi, "this document", response=dict),
]


# scaling and metrics (issue 15) --------------------------------------------------------------------


class DeploymentScaling(Base):
    @web.authenticated
    async def put(self, deployment_id: str) -> None:
        change = self.read(ScalingChange)
        self.reply(await self.blocking(self.service().update_scaling, deployment_id, change))


class DeploymentMetricsHandler(Base):
    @web.authenticated
    async def get(self, deployment_id: str) -> None:
        window = window_seconds(self.get_query_argument("window", None))
        self.reply(await self.blocking(self.service().deployment_metrics, deployment_id, window))


ROUTES += [
    Route(
        "PUT",
        "deployments/{deployment_id}/scaling",
        rf"deployments/{DEPLOYMENT_ID}/scaling",
        DeploymentScaling,
        "change a live deployment's instance count, autoscaling policy or bandwidth (409 where the platform cannot)",
        request=ScalingChange,
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/metrics",
        rf"deployments/{DEPLOYMENT_ID}/metrics",
        DeploymentMetricsHandler,
        "per-model requests, errors, TTFT p50/p95, tokens/s, in-flight and replicas over a window, with series",
        response=DeploymentMetrics,
        query={**PLATFORM_QUERY, "window": "seconds or 5m, 1h, 1d (default 300)"},
    ),
]


def handlers() -> list[tuple[str, type[Base]]]:
    """Tornado (pattern, handler) pairs under ``aqua/``, one per URL (more specific ones first)."""
    seen: dict[str, type[Base]] = {}
    for route in ROUTES:  # listed so that fixed paths (deployments/shapes) precede deployments/{id}
        seen.setdefault(route.pattern, route.handler)
    return [(f"aqua/{pattern}", handler) for pattern, handler in seen.items()]
