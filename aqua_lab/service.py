"""The service facade: the one implementation behind the REST handlers, the widgets and the CLI.

It resolves model ids through the platform, plans and validates with the pure planning core, and
hands validated requests to the platform.  Planning inputs are cached per platform and model id
(an explicit cache: configs do not change while a session runs; ``clear_cache`` drops it).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import cache, partial
from typing import Any

from .domain import (
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentMetrics,
    DeploymentSpec,
    Evaluation,
    EvaluationSpec,
    ModelInput,
    ModelState,
    Plan,
    ScalingChange,
    Shape,
    ValidatedDeployment,
)
from .errors import Conflict, InvalidInput, NotFound, Problem, UpstreamError
from .inference import client
from .planning import ShapeCatalog, plan, validate_deployment
from .planning.shapes import shape_order
from .platforms.base import Measures, Platform, Scales, require

PLATFORMS = ("local", "bundled", "oci")


@cache
def get_platform(name: str) -> Platform:
    """One platform object per name and process (platforms hold no request state)."""
    if name == "local":
        from .platforms.local import LocalPlatform

        return LocalPlatform()
    if name == "bundled":
        from .platforms.bundled import BundledPlatform

        return BundledPlatform()
    if name == "oci":
        from .platforms.oci import OciPlatform, resolve_auth

        return OciPlatform.from_environment(resolve_auth())
    raise InvalidInput(Problem("platform", f"unknown platform {name!r}", f"use one of {list(PLATFORMS)}"))


class AquaLabService:
    #: how long a chat may trust a deployment's looked-up endpoint and state (an explicit cache: a
    #: chat turn should not pay a state lookup; a deployment that died meanwhile fails fast anyway)
    CHAT_TARGET_TTL_S = 2.0

    def __init__(self, platform: Platform | str = "local"):
        self.platform = get_platform(platform) if isinstance(platform, str) else platform
        self._inputs: dict[str, ModelInput] = {}
        self._chat_deployments: dict[str, tuple[float, Deployment]] = {}

    # catalog --------------------------------------------------------------------------------------

    def shapes(self) -> list[Shape]:
        return sorted(self.platform.list_shapes(), key=shape_order)

    def shape_catalog(self) -> ShapeCatalog:
        return ShapeCatalog(self.shapes())

    def models(self) -> list[CatalogModel]:
        return self.platform.list_models()

    def model_input(self, model_id: str) -> ModelInput:
        model = self.platform.get_model(model_id)
        if model.id not in self._inputs:
            self._inputs[model.id] = ModelInput.from_catalog(model, self.platform.get_model_config(model.id))
        return self._inputs[model.id]

    def clear_cache(self) -> None:
        self._inputs.clear()

    def _inputs_for(self, ids: Sequence[str], field: str) -> list[ModelInput]:
        problems, inputs = [], []
        for i, model_id in enumerate(ids):
            try:
                inputs.append(self.model_input(model_id))
            except NotFound as exc:
                problems.append(Problem(f"{field}[{i}]", f"unknown model {model_id!r}", exc.hint))
        if problems:
            raise InvalidInput(problems)
        return inputs

    # planning -------------------------------------------------------------------------------------

    def plan(
        self,
        model_ids: Sequence[str],
        primary_model_id: str | None = None,
        shape: str | None = None,
        extra: Sequence[ModelInput] = (),
    ) -> Plan:
        """Where can these models run together and how do the GPUs split.  ``extra`` adds models
        the platform does not know (e.g. one with a deployment_config.json given by path)."""
        own = {m.model_id: m for m in extra}
        prefetch = getattr(self.platform, "prefetch_models", None)
        if prefetch:  # one concurrent round of config fetches instead of one per model
            prefetch([i for i in model_ids if i not in own])
        inputs = [own[i] if i in own else self._inputs_for([i], "model_ids")[0] for i in model_ids]
        if primary_model_id is not None and primary_model_id not in own:
            try:
                primary_model_id = self.platform.get_model(primary_model_id).id
            except NotFound:
                pass  # plan() names the problem with the list of valid ids
        shapes = self.shape_catalog()
        if shape:
            shapes = ShapeCatalog([shapes.get(shape)])
        result = plan(inputs, shapes, primary_model_id)
        warn = getattr(self.platform, "config_warnings", None)
        if warn:
            result.warnings += [w for m in inputs if m.model_id not in own for w in warn(m.model_id)]
        return result

    def validate(self, spec: DeploymentSpec, extra: Sequence[ModelInput] = ()) -> ValidatedDeployment:
        own = {m.model_id: m for m in extra}
        known: dict[str, ModelInput] = dict(own)
        models = []
        for entry in spec.models:
            if entry.model_id not in own:
                try:
                    found = self.model_input(entry.model_id)
                    known[found.model_id] = found
                    entry = entry.model_copy(update={"model_id": found.model_id})
                except NotFound:
                    pass  # validate_deployment reports it with the suggestion
            models.append(entry)
        spec = spec.model_copy(update={"models": models})
        suggest = getattr(self.platform, "suggest", None)
        validated = validate_deployment(spec, known, self.shape_catalog(), suggest, params_key=self.platform.params_key)
        self._check_scaling(validated.spec)
        return validated

    # deployments ----------------------------------------------------------------------------------

    def create_deployment(self, spec: DeploymentSpec) -> Deployment:
        return self.platform.create_deployment(self.validate(spec))

    def list_deployments(self) -> list[Deployment]:
        return self.platform.list_deployments()

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self.platform.get_deployment(deployment_id)

    def update_deployment(self, deployment_id: str, spec: DeploymentSpec) -> Deployment:
        """Replace a deployment's models in place (OCI: a new model group, LIVE for stacked)."""
        update = getattr(self.platform, "update_models", None)
        if update is None:
            raise Conflict(
                f"the {self.platform.name} platform cannot update a deployment in place; "
                "create a new one and delete the old"
            )
        self._chat_deployments.pop(deployment_id, None)
        return update(deployment_id, self.validate(spec))

    # scaling and metrics (issue 15) --------------------------------------------------------------

    def _check_scaling(self, spec: DeploymentSpec) -> None:
        """A policy the platform cannot run is refused at validate time, not after a create.  A
        planning-only platform (bundled) previews OCI's bodies, so it takes every policy."""
        if isinstance(self.platform, Scales):
            refusal = self.platform.scaling_refusal(spec)
            if refusal:
                raise refusal

    def update_scaling(self, deployment_id: str, change: ScalingChange) -> Deployment:
        """Change a live deployment's instance count, autoscaling policy or bandwidth."""
        platform = require(
            self.platform,
            Scales,
            "change a deployment's scaling",
            "it has no instances to add",
            "use --platform oci or --platform local",
        )
        policy = change.wire_policy()
        self._chat_deployments.pop(deployment_id, None)
        return platform.update_scaling(deployment_id, policy, change.bandwidth_mbps)

    def deployment_metrics(self, deployment_id: str, window_s: float = 300) -> DeploymentMetrics:
        """Per-model requests, errors, TTFT p50/p95, tokens/s, in-flight and replicas over a window."""
        if not 1 <= window_s <= 14 * 24 * 3600:
            raise InvalidInput(Problem("window", f"{window_s:g} s is out of range", "give 60s to 14d (e.g. 5m, 1h)"))
        platform = require(
            self.platform,
            Measures,
            "report deployment metrics",
            "it runs no deployments",
            "use --platform oci or --platform local",
        )
        return platform.deployment_metrics(deployment_id, window_s)

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        """Evaluate one model of a deployment (a job on the platform)."""
        submit = getattr(self.platform, "create_evaluation_job", None)
        if submit is None:
            raise Conflict(f"the {self.platform.name} platform does not run evaluation jobs yet")
        return submit(spec)

    def activate(self, deployment_id: str) -> Deployment:
        self._chat_deployments.pop(deployment_id, None)
        return self.platform.activate(deployment_id)

    def deactivate(self, deployment_id: str) -> Deployment:
        self._chat_deployments.pop(deployment_id, None)
        return self.platform.deactivate(deployment_id)

    def delete(self, deployment_id: str) -> Deployment:
        self._chat_deployments.pop(deployment_id, None)
        return self.platform.delete(deployment_id)

    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self.platform.model_states(deployment_id)

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        return self.platform.logs(deployment_id, model_name, lines)

    def wait(
        self,
        deployment_id: str,
        timeout: float = 600,
        until: tuple[str, ...] = ("ACTIVE", "FAILED", "NEEDS_ATTENTION"),
        progress: Callable[[Deployment], None] | None = None,
        interval: float = 0.5,
    ) -> Deployment:
        """Poll until the deployment reaches one of ``until`` (or the timeout), reporting progress."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.get_deployment(deployment_id)
            if progress:
                progress(d)
            if d.state in until or time.monotonic() > deadline:
                return d
            time.sleep(interval)

    # chat -----------------------------------------------------------------------------------------

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Platform calls touch disks, databases and networks: keep them off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    async def _chat_deployment(self, deployment_id: str) -> Deployment:
        cached = self._chat_deployments.get(deployment_id)
        if cached and time.monotonic() - cached[0] < self.CHAT_TARGET_TTL_S:
            return cached[1]
        deployment: Deployment = await self._blocking(self.platform.get_deployment, deployment_id)
        self._chat_deployments[deployment_id] = (time.monotonic(), deployment)
        return deployment

    async def _chat_request(self, deployment_id: str, request: ChatRequest, stream: bool) -> tuple[str, bytes, dict]:
        """(url, body bytes, headers) of the call to the model; signed where the platform signs."""
        deployment = await self._chat_deployment(deployment_id)
        names = deployment.served_names()
        if request.model not in names:
            raise InvalidInput(
                Problem("model", f"{request.model!r} is not served by {deployment_id}", f"use one of {names}")
            )
        if deployment.state not in ("ACTIVE", "NEEDS_ATTENTION"):
            raise Conflict(f"deployment {deployment_id} is {deployment.state}; chat needs it ACTIVE")
        body = json.dumps(request.upstream_body(request.model, stream)).encode()
        route = request.resolved_route()
        if self.platform.signs_requests:
            url, headers = await self._blocking(self.platform.inference_request, deployment, route, body, stream)
        else:
            url, headers = self.platform.inference_request(deployment, route, body, stream)
        return url, body, headers

    async def chat_events(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[str]:
        """The model's streamed chunks as the JSON text it sent (relayed without re-encoding).  An
        error the model server reports mid-stream, or a broken stream, raises
        :class:`UpstreamError` after the chunks that came."""
        request.check_input()
        url, body, headers = await self._chat_request(deployment_id, request, stream=True)
        async for event in client.stream_events(url, body, headers):
            if event.done:
                return
            if event.event == "error" or event.data.startswith('{"error"'):
                data = json.loads(event.data)
                error = data.get("error", data) if isinstance(data, dict) else data
                raise UpstreamError(error.get("message", event.data) if isinstance(error, dict) else str(error), 502)
            yield event.data

    async def chat_stream(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[dict[str, Any]]:
        """The model's streamed chunks (OpenAI chunk objects); errors as in :meth:`chat_events`."""
        async for data in self.chat_events(deployment_id, request):
            yield json.loads(data)

    async def chat(self, deployment_id: str, request: ChatRequest) -> dict[str, Any]:
        request.check_input()
        url, body, headers = await self._chat_request(deployment_id, request, stream=False)
        return await client.post_json(url, body, headers)

    async def compare(self, deployment_id: str, request: CompareRequest) -> AsyncIterator[dict[str, Any]]:
        """The same input to several models at once.  Yields ``{"type": "chunk", "model", "data"}``
        as chunks arrive from any model, then per model ``{"type": "done", "model", "ttft_ms",
        "tokens", "tokens_per_s"}`` or ``{"type": "error", "model", "message"}``."""
        request.check_input()
        deployment = await self._chat_deployment(deployment_id)
        models = request.models or deployment.served_names()
        unknown = [m for m in models if m not in deployment.served_names()]
        if unknown:
            raise InvalidInput(
                Problem(
                    "models", f"{unknown} not served by {deployment_id}", f"use names from {deployment.served_names()}"
                )
            )
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def one(model: str) -> None:
            started, first, tokens = time.perf_counter(), None, 0
            single = ChatRequest(model=model, **request.model_dump(exclude={"models"}, exclude_none=True))
            try:
                async for chunk in self.chat_stream(deployment_id, single):
                    choice = (chunk.get("choices") or [{}])[0]
                    if choice.get("delta", {}).get("content") or choice.get("text"):
                        tokens += 1
                        first = first or time.perf_counter()
                    await queue.put({"type": "chunk", "model": model, "data": chunk})
                end = time.perf_counter()
                rate = (tokens - 1) / (end - first) if first and tokens > 1 and end > first else None
                await queue.put(
                    {
                        "type": "done",
                        "model": model,
                        "tokens": tokens,
                        "ttft_ms": round((first - started) * 1000, 1) if first else None,
                        "tokens_per_s": round(rate, 1) if rate else None,
                    }
                )
            except Exception as exc:  # one model failing must not end the others' answers
                await queue.put({"type": "error", "model": model, "message": str(exc)})

        tasks = [asyncio.create_task(one(m)) for m in models]
        watcher = asyncio.create_task(_close_when_done(tasks, queue))
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            for task in [*tasks, watcher]:
                task.cancel()


_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def window_seconds(raw: str | float | None, default: float = 300) -> float:
    """``?window=`` / ``--window``: seconds, or a number with s, m, h or d (``5m``, ``1h``)."""
    if raw is None or raw == "":
        return default
    if isinstance(raw, int | float):
        return float(raw)
    match = _WINDOW.match(raw)
    if not match:
        raise InvalidInput(Problem("window", f"{raw!r} is not a duration", "e.g. 300, 5m, 1h or 1d"))
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


async def _close_when_done(tasks: list[asyncio.Task], queue: asyncio.Queue) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
    await queue.put(None)
