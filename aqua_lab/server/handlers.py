"""REST handlers under ``<base_url>aqua/``: parse (pydantic) → service → JSON.

Every verb needs Jupyter auth; POST/PUT/DELETE need XSRF like every Jupyter API (token-authenticated
requests are exempt, as everywhere in Jupyter).  Handlers only parse and reply: they await the
service's async face, which keeps blocking platform calls off the event loop.  Errors are mapped
in :mod:`.errors`; the URLs are in :mod:`.routes`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_escape, url_path_join
from pydantic import BaseModel, ValidationError
from tornado import web
from tornado.iostream import StreamClosedError

from ..domain import (
    CapacityInputs,
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    Evaluation,
    EvaluationConfig,
    EvaluationMetrics,
    EvaluationSpec,
    EvaluationStatus,
    MetricDescription,
    ModelGroupVersion,
    ModelState,
    RollbackRequest,
    ScalingChange,
    Shape,
    ValidationResult,
)
from ..errors import AquaLabError, InvalidInput, NotFound, Problem, shown
from ..service import AsyncAquaLabService, window_seconds
from ..service.arena import MAX_RESAMPLES, BlindPairRequest, Vote, VoteRequest
from ..service.datasets import DatasetRow, SavedDataset, dataset_name
from .errors import BadRequest, PayloadTooLarge, retry_after_header, to_response
from .limits import DEFAULT_LOG_LINES, MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_LOG_LINES, MAX_UPLOAD_BYTES
from .models import (
    DataList,
    DatasetUploadRequest,
    EvaluationReportContent,
    Logs,
    PlanRequest,
    PlatformInfo,
    RegisterModelRequest,
)

M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------------------------------
# The base handler


#: what a Jupyter authorizer (JupyterHub's, or a custom one) is asked about: reads (GET, plans,
#: validation) and writes (create, update, delete, activate, chat) on "aqua_lab"
AUTH_RESOURCE = "aqua_lab"


class AquaLabHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE
    client_gone = False

    def on_connection_close(self) -> None:
        self.client_gone = True
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.cancel()  # closes the upstream request: the model stops generating

    def service(self) -> AsyncAquaLabService:
        # unstripped: " local" is not a platform name, only the empty string means the default
        return self.extensionapp.service(self.get_query_argument("platform", None, strip=False))

    def read(self, model: type[M], limit: int = MAX_BODY_BYTES, hint: str = "send a shorter prompt or history") -> M:
        body = self.request.body or b"null"
        if len(body) > limit:
            raise PayloadTooLarge(
                f"the request body is {len(body)} bytes; the limit is {limit} bytes ({limit // 1024} KiB) — {hint}"
            )
        try:
            # decode as UTF-8 ourselves: json.loads(bytes) guesses UTF-16/32 from NUL bytes and can
            # fail with a UnicodeDecodeError instead of a JSON error
            data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise BadRequest("the request body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise BadRequest(
                f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        except RecursionError:  # the parser recurses per level: 100 000 '[' exhaust the stack
            raise BadRequest(_TOO_DEEP) from None
        except _NotJson as exc:
            raise BadRequest(str(exc)) from None
        except ValueError:  # a JSONDecodeError is one, so this is Python's 4300-digit limit on an int
            raise BadRequest(
                "the request body has a number with more than 4300 digits; no field takes one — send a smaller number"
            ) from None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object")
        if _depth_over(data, MAX_JSON_DEPTH):
            raise BadRequest(_TOO_DEEP)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from None

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        fix = f"a whole number from {low} to {high}, e.g. ?{name}={default}"
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(Problem(name, f"{shown(raw)} is not a whole number", fix)) from None
        if not low <= value <= high:
            raise InvalidInput(Problem(name, f"{value} is out of range", fix))
        return value

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        # pydantic's own encoder: several times faster than model_dump + json.dumps, and this runs on
        # the event loop once per request
        self.finish(value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, body = to_response(exc) if exc is not None else (status_code, {"message": self._reason})
        self.set_status(status)
        if (wait := retry_after_header(body)) is not None:
            self.set_header("Retry-After", wait)
        if status == 405:
            allowed = self.allowed_methods()
            self.set_header("Allow", ", ".join(allowed))
            body["message"] = f"{self.request.method} is not allowed here; use {' or '.join(allowed)}"
        self.finish(json.dumps(body))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The verbs this handler answers (those it defines itself), for a 405's ``Allow``."""
        verbs = ("GET", "POST", "PUT", "DELETE", "PATCH")
        return [v for v in verbs if getattr(cls, v.lower()) is not getattr(web.RequestHandler, v.lower())]

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


class Platforms(AquaLabHandler):
    @web.authenticated
    @authorized
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


class Shapes(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(DataList[Shape](data=await self.service().shapes()))


class Models(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(DataList[CatalogModel](data=await self.service().models()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.read(RegisterModelRequest)
        model = await self.service().register_model(request.path, request.name, request.base_model_id)
        self.set_header("Location", url_path_join(self.base_url, "aqua", "models", url_escape(model.id)))
        self.reply(model, status=201)


class OneModel(AquaLabHandler):
    @web.authenticated
    @authorized
    async def delete(self, model_id: str) -> None:
        self.reply(await self.service().unregister_model(model_id))


class ModelConfig(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, model_id: str) -> None:
        service = self.service()
        config = (await service.model_input(model_id)).config
        if config is None:
            raise NotFound("deployment_config.json", model_id, "this model has none; planning estimates its GPUs")
        self.reply(config)


class Plans(AquaLabHandler):
    @web.authenticated
    @authorized("read")  # computes, changes nothing
    async def post(self) -> None:
        request = self.read(PlanRequest)
        service = self.service()
        self.reply(await service.plan(request.model_ids, request.primary_model_id, request.shape, request.capacity()))


class AdsDeploymentConfig(AquaLabHandler):
    """ADS-compatible ``GET deployments/config/<id1>,<id2>?primary_model_id=``."""

    @web.authenticated
    @authorized
    async def get(self, model_ids: str) -> None:
        model_ids = model_ids.replace(" ", "")
        if "," not in model_ids:  # one id: that model's raw {shape, configuration}, as ADS's handler answers
            config = (await self.service().model_input(model_ids)).config
            self.reply(config or DeploymentConfig())  # ADS: no config → empty one ("use defaults")
            return
        ids = [i for i in model_ids.split(",") if i]
        primary = self.get_query_argument("primary_model_id", None)
        given = {k: self.get_query_argument(k) for k in CapacityInputs.model_fields if self.get_query_argument(k, None)}
        try:
            capacity = CapacityInputs.model_validate(given)
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from None
        self.reply(await self.service().plan(ids, primary, None, capacity))


class Deployments(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(DataList[Deployment](data=await self.service().list_deployments()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.read(DeploymentSpec)
        created = await self.service().create_deployment(spec)
        self.set_header("Location", url_path_join(self.base_url, "aqua", "deployments", url_escape(created.id)))
        self.reply(created, status=201)


class Validate(AquaLabHandler):
    @web.authenticated
    @authorized("read")  # computes, changes nothing
    async def post(self) -> None:
        self.reply(ValidationResult.of(await self.service().validate(self.read(DeploymentSpec))))


class OneDeployment(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        self.reply(await self.service().get_deployment(deployment_id))

    @web.authenticated
    @authorized
    async def put(self, deployment_id: str) -> None:
        spec = self.read(DeploymentSpec)
        self.reply(await self.service().update_deployment(deployment_id, spec))

    @web.authenticated
    @authorized
    async def delete(self, deployment_id: str) -> None:
        self.reply(await self.service().delete(deployment_id))


class Activate(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        self.reply(await self.service().activate(deployment_id))


class Deactivate(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        self.reply(await self.service().deactivate(deployment_id))


class DeploymentVersions(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        self.reply(DataList[ModelGroupVersion](data=await self.service().deployment_versions(deployment_id)))


class Rollback(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        request = self.read(RollbackRequest)
        self.reply(await self.service().rollback(deployment_id, request.version))


class ModelStates(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        self.reply(DataList[ModelState](data=await self.service().model_states(deployment_id)))


class DeploymentLogs(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        model_name = self.get_query_argument("model_name", None)
        lines = self.int_argument("lines", DEFAULT_LOG_LINES, 0, MAX_LOG_LINES)
        text = await self.service().logs(deployment_id, model_name, lines)
        self.reply(Logs(model_name=model_name, text=text))


class DeploymentScaling(AquaLabHandler):
    @web.authenticated
    @authorized
    async def put(self, deployment_id: str) -> None:
        self.reply(await self.service().update_scaling(deployment_id, self.read(ScalingChange)))


class DeploymentMetricsHandler(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        window = window_seconds(self.get_query_argument("window", None))
        metrics: DeploymentMetrics = await self.service().deployment_metrics(deployment_id, window)
        self.reply(metrics)


class Chat(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        request = self.read(ChatRequest)
        service = self.service()
        if not request.stream:
            self.reply(await service.chat(deployment_id, request))
            return

        async def events() -> AsyncIterator[tuple[str | None, dict[str, Any] | str]]:
            async for data in service.chat_events(deployment_id, request):
                # the model's own JSON, relayed as is; a waking model's Loading as `event: loading`
                yield (None, data) if isinstance(data, str) else ("loading", data.as_dict())

        await self.sse(events())


class Compare(AquaLabHandler):
    @web.authenticated
    @authorized
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


# choosing between models: blind pairs, votes, the leaderboard ---------------------------------------


class BlindPairs(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        self.reply(await self.service().blind_pair(deployment_id, self.read(BlindPairRequest)))


class Votes(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        source = self.get_query_argument("source", "both")
        self.reply(DataList[Vote](data=await self.service().votes(deployment_id, source)))

    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        request = self.read(VoteRequest)
        user = self.current_user
        voter = getattr(user, "username", None) or getattr(user, "name", None) or str(user)
        vote = await self.service().vote(deployment_id, request, voter)
        where = url_path_join(self.base_url, "aqua", "deployments", url_escape(deployment_id), "votes", vote.id)
        self.set_header("Location", where)
        self.reply(vote, status=201)


class OneVote(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str, vote_id: str) -> None:
        self.reply(await self.service().get_vote(deployment_id, vote_id))


class VotesExport(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        fmt = self.get_query_argument("format", "jsonl")
        text = await self.service().export_votes(deployment_id, fmt, self.get_query_argument("source", "both"))
        kind = "text/csv" if fmt == "csv" else "application/x-ndjson"
        self.set_header("Content-Disposition", f'attachment; filename="votes-{deployment_id}.{fmt}"')
        self.finish(text, set_content_type=f"{kind}; charset=utf-8")


class LeaderboardHandler(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        source = self.get_query_argument("source", "votes")
        resamples = self.int_argument("resamples", 200, 0, MAX_RESAMPLES)
        self.reply(await self.service().leaderboard(deployment_id, source, resamples))


class Evaluations(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(DataList[Evaluation](data=await self.service().list_evaluations()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.read(EvaluationSpec)
        created = await self.service().create_evaluation(spec)
        self.set_header("Location", url_path_join(self.base_url, "aqua", "evaluations", url_escape(created.id)))
        self.reply(created, status=201)


class SupportedMetrics(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(DataList[MetricDescription](data=await self.service().supported_metrics()))


class OneEvaluation(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, evaluation_id: str) -> None:
        self.reply(await self.service().get_evaluation(evaluation_id))

    @web.authenticated
    @authorized
    async def delete(self, evaluation_id: str) -> None:
        self.reply(await self.service().delete_evaluation(evaluation_id))


class CancelEvaluation(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, evaluation_id: str) -> None:
        self.reply(await self.service().cancel_evaluation(evaluation_id))


class EvaluationStatusHandler(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, evaluation_id: str) -> None:
        status: EvaluationStatus = await self.service().evaluation_status(evaluation_id)
        self.reply(status)


class EvaluationMetricsHandler(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, evaluation_id: str) -> None:
        model = self.get_query_argument("model", None)
        metrics: EvaluationMetrics = await self.service().evaluation_metrics(evaluation_id, model)
        self.reply(metrics)


class EvaluationConfigHandler(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        config: EvaluationConfig = await self.service().evaluation_config()
        self.reply(config)


class DatasetUploads(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.read(
            DatasetUploadRequest, MAX_UPLOAD_BYTES, "give a larger dataset as a path on the server's machine"
        )
        self.reply(await self.service().upload_dataset(request.filename, request.content), status=201)


class Datasets(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(DataList[SavedDataset](data=await self.service().list_datasets()))


class DatasetRows(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        saved = await self.service().save_dataset_row(name, self.read(DatasetRow))
        self.set_header("Location", url_path_join(self.base_url, "aqua", "datasets", url_escape(saved.name)))
        self.reply(saved, status=201)


class OneDataset(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        text = await self.service().get_dataset(name)
        self.set_header("Content-Disposition", f'attachment; filename="{dataset_name(name)}.jsonl"')
        self.finish(text, set_content_type="application/x-ndjson; charset=utf-8")


#: a report page is model output rendered by aqua_lab: no script runs in it, nothing loads from elsewhere
REPORT_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


class EvaluationReport(AquaLabHandler):
    @property
    def content_security_policy(self) -> str:
        if self.get_query_argument("format", "json") == "html":
            return REPORT_POLICY
        return super().content_security_policy

    @web.authenticated
    @authorized
    async def get(self, evaluation_id: str) -> None:
        model = self.get_query_argument("model", None)
        fmt = self.get_query_argument("format", "json")
        text = await self.service().evaluation_report(evaluation_id, model, fmt)
        # the report as written (report.json / report.html), not re-encoded: what the files hold
        self.finish(text, set_content_type="text/html; charset=utf-8" if fmt == "html" else "application/json")


class AdsEvaluationReport(AquaLabHandler):
    """ADS-compatible ``GET evaluation/{id}/report``: the HTML report, base64-encoded in JSON."""

    @web.authenticated
    @authorized
    async def get(self, evaluation_id: str) -> None:
        html = await self.service().evaluation_report(evaluation_id, self.get_query_argument("model", None), "html")
        content = base64.b64encode(html.encode("utf-8")).decode("ascii")
        self.reply(EvaluationReportContent(evaluation_id=evaluation_id, content=content))


class AdsCancelEvaluation(AquaLabHandler):
    """ADS-compatible ``PUT evaluation/{id}/cancel``."""

    @web.authenticated
    @authorized
    async def put(self, evaluation_id: str) -> None:
        self.reply(await self.service().cancel_evaluation(evaluation_id))


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> float:
    # Python's json takes NaN and Infinity, which JSON does not: a float field would take inf and
    # arithmetic on it (int(inf)) fail deep in planning as a 500
    raise _NotJson(f"the request body has {name}, which is not JSON — send a finite number")


_TOO_DEEP = f"the request body is nested more than {MAX_JSON_DEPTH} levels deep"


def _depth_over(value: Any, limit: int) -> bool:
    """Whether JSON data nests deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _no_delay(handler: web.RequestHandler) -> None:
    """Token events are small writes: send each at once instead of letting Nagle hold it back."""
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None and not stream.closed():
        stream.set_nodelay(True)


class NoSuchRoute(AquaLabHandler):
    """Anything else under aqua/: a JSON 404 that points at the API's description."""

    def _missing(self, *_: str) -> None:
        raise NotFound("route", f"{self.request.method} {self.request.path}", "see aqua/openapi.json for the API")

    # one wrapper per verb: @authorized settles its action (read/write) on the first request it sees
    get = web.authenticated(authorized(_missing))
    post = web.authenticated(authorized(_missing))
    put = web.authenticated(authorized(_missing))
    delete = web.authenticated(authorized(_missing))
    patch = web.authenticated(authorized(_missing))
