"""Chat through the service: one model (streamed or not) or several at once, relayed from the
deployment's endpoint.  The request is checked (model served, deployment ACTIVE) before any call
to the model; the target's endpoint and state are trusted for ``TARGET_TTL_S`` (an explicit cache:
a chat turn should not pay a state lookup; a deployment that died meanwhile fails fast anyway).

A local model asleep (issue 28) loads its weights before its first token; meanwhile the router sends
``: loading …`` comments, which reach the fronts as :class:`Loading` items (REST: ``event: loading``)
so they can say "waking <model>…" instead of looking hung."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..domain import ChatRequest, CompareRequest, Deployment, chunk_text
from ..errors import Conflict, InvalidInput, Problem, UpstreamError, shown
from ..inference import client
from ..platforms.base import Platform
from .cache import TTLCache
from .chat_meter import ChatMeter
from .executor import execute

#: the ``object`` of a :meth:`ChatRelay.stream` item that says the model is waking (no chunk has it)
LOADING_OBJECT = "aqua_lab.loading"


@dataclass(frozen=True)
class Loading:
    """The model is asleep and loads its weights before it answers (the router's ``: loading`` comments)."""

    model: str
    waited_s: float

    def as_dict(self) -> dict[str, Any]:
        waited = round(self.waited_s, 1)
        return {"object": LOADING_OBJECT, "model": self.model, "waited_s": waited, "message": loading_text(self)}


def loading_text(item: Loading | dict[str, Any]) -> str:
    model, waited = (item.model, item.waited_s) if isinstance(item, Loading) else (item["model"], item["waited_s"])
    return f"waking {model}… loading its weights ({waited:.0f} s)"


class ChatRelay:
    TARGET_TTL_S = 2.0

    def __init__(self, platform: Platform):
        self.platform = platform
        self.targets: TTLCache[Deployment] = TTLCache(self.TARGET_TTL_S)
        self.meter = ChatMeter()  # TTFT, tokens and errors per model of what this relay carried

    async def _target(self, deployment_id: str) -> Deployment:
        cached = self.targets.get(deployment_id)
        if cached is not None:
            return cached
        return self.targets.put(deployment_id, await execute(self.platform.get_deployment, deployment_id))

    async def _resolved(self, deployment_id: str, request: ChatRequest) -> ChatRequest:
        """``request`` for the served name its ``model`` means (a model's id, as OCI's /predict takes it, included)."""
        name = served_name(await self._target(deployment_id), request.model, "model")
        return request if name == request.model else request.model_copy(update={"model": name})

    async def _request(self, deployment_id: str, request: ChatRequest, stream: bool) -> tuple[str, bytes, dict]:
        """(url, body bytes, headers) of the call to the model; signed where the platform signs."""
        deployment = await self._target(deployment_id)
        served_name(deployment, request.model, "model")
        if deployment.state not in ("ACTIVE", "NEEDS_ATTENTION"):
            raise Conflict(f"deployment {deployment_id} is {deployment.state}; chat needs it ACTIVE")
        body = json.dumps(request.upstream_body(request.model, stream)).encode()
        route = request.resolved_route()
        if self.platform.inference_request_blocks:
            url, headers = await execute(self.platform.inference_request, deployment, route, body, stream)
        else:  # no thread hop for what is only a URL and a key
            url, headers = self.platform.inference_request(deployment, route, body, stream)
        return url, body, headers

    async def events(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[str | Loading]:
        """The model's streamed chunks as the JSON text it sent (relayed without re-encoding), after
        a :class:`Loading` per ``: loading`` comment while a sleeping model wakes.  An error the model
        server reports mid-stream, or a broken stream, raises :class:`UpstreamError` after the chunks
        that came."""
        request.check_input()
        request = await self._resolved(deployment_id, request)
        url, body, headers = await self._request(deployment_id, request, stream=True)
        started, first, tokens, failed = time.perf_counter(), None, 0, True
        try:
            stream = client.stream_events(url, body, headers, request.model, request.timeouts, comments=True)
            async for event in stream:
                if event.comment:  # keep-alives say nothing; the router's loading ones say the model wakes
                    if first is None and event.data.startswith("loading"):
                        yield Loading(request.model, time.perf_counter() - started)
                    continue
                if event.done:
                    failed = False
                    return
                if event.event == "error" or event.data.startswith('{"error"'):
                    raise client.stream_error(event.data)
                first = first or time.perf_counter()
                tokens += 1  # one streamed chunk per token, as vLLM and llama.cpp send them
                yield event.data
        except GeneratorExit:  # the caller stopped reading (Stop, a closed tab): not the model's error
            failed = False
            raise
        except UpstreamError as exc:
            raise _refused_input(exc) from None
        finally:
            ttft = first - started if first else None
            self.meter.record(deployment_id, request.model, ttft, tokens, failed)

    async def stream(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[dict[str, Any]]:
        """The model's streamed chunks (OpenAI chunk objects), a waking model's :meth:`Loading.as_dict`
        items first (``object`` ``aqua_lab.loading``: no text, so a reader of chunks skips them);
        errors as in :meth:`events`."""
        async for data in self.events(deployment_id, request):
            yield data.as_dict() if isinstance(data, Loading) else json.loads(data)

    async def chat(self, deployment_id: str, request: ChatRequest) -> dict[str, Any]:
        request.check_input()
        request = await self._resolved(deployment_id, request)
        url, body, headers = await self._request(deployment_id, request, stream=False)
        started = time.perf_counter()
        try:
            answer = await client.post_json(url, body, headers, request.model, request.timeouts)
        except UpstreamError as exc:
            self.meter.record(deployment_id, request.model, None, 0, True)
            raise _refused_input(exc) from None
        except Exception:
            self.meter.record(deployment_id, request.model, None, 0, True)
            raise
        usage = answer.get("usage") if isinstance(answer, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        # not streamed: the first token reaches the caller with the whole answer
        self.meter.record(deployment_id, request.model, time.perf_counter() - started, int(tokens or 0), False)
        return answer

    async def compare(self, deployment_id: str, request: CompareRequest) -> AsyncIterator[dict[str, Any]]:
        """The same input to several models at once.  Yields ``{"type": "chunk", "model", "data"}``
        as chunks arrive from any model (``{"type": "loading", "model", "waited_s", "message"}`` while
        one wakes), then per model ``{"type": "done", "model", "ttft_ms", "tokens", "tokens_per_s"}``
        or ``{"type": "error", "model", "message"}``."""
        request.check_input()
        deployment = await self._target(deployment_id)
        served = deployment.served_names()
        # a model's id (OCID) or inference key means its served name, as in chat; each name at most
        # once, so a list that repeats a model does not multiply the work
        asked = request.models or []
        unknown = list(dict.fromkeys(m for m in asked if not deployment.names_meant(m)))
        given = [served_name(deployment, m, "models") for m in asked if m not in unknown]
        models = list(dict.fromkeys(given or served))
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            names = ", ".join(shown(m) for m in unknown[:3]) + more
            raise InvalidInput(Problem("models", f"{names} not served by {deployment_id}", f"use names from {served}"))
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def one(model: str) -> None:
            started, first, tokens = time.perf_counter(), None, 0
            single = ChatRequest(model=model, **request.model_dump(exclude={"models"}, exclude_none=True))
            try:
                async for chunk in self.stream(deployment_id, single):
                    if chunk.get("object") == LOADING_OBJECT:
                        await queue.put({"type": "loading", **{k: chunk[k] for k in ("model", "waited_s", "message")}})
                        continue
                    if chunk_text(chunk):
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


def served_name(deployment: Deployment, model: str, field: str) -> str:
    """The served name ``model`` means: itself, or the one name the model with that id (an OCID on OCI,
    as seed 003 and OCI's /predict address models; a local model's id) is served under."""
    meant = deployment.names_meant(model)
    if len(meant) == 1:
        return meant[0]
    if meant:
        raise InvalidInput(
            Problem(field, f"{shown(model)} is served under several names: {meant}", "use one of those names")
        )
    raise InvalidInput(
        Problem(
            field,
            f"{shown(model)} is not served by {deployment.id}",
            f"use one of {deployment.served_names()} or a model's id",
        )
    )


def _refused_input(exc: UpstreamError) -> UpstreamError | InvalidInput:
    """The engine refusing the request's content (400/422) is the caller's input at fault: a 422 on
    the field the engine named; anything else stays the upstream error it was."""
    if exc.status in (400, 422):
        return InvalidInput(Problem(exc.field or "body", str(exc), "change that field and send again"))
    return exc


async def _close_when_done(tasks: list[asyncio.Task], queue: asyncio.Queue) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
    await queue.put(None)
