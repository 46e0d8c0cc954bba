"""The router in front of a local deployment's model servers (what LiteLLM is in the OCI container).

OpenAI-compatible: ``GET /v1/models``; ``POST /v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings`` routed by the body's ``model`` (404 for a name the deployment does not serve —
llama.cpp would silently answer with its own model).  Responses, SSE included, are passed through
chunk by chunk.  When a server dies mid-stream the stream ends with ``event: error``; when the
client goes away the upstream request is closed.

Also the model-group (BYOC) API of OCI: ``GET /health``, ``GET /models/{name}/health``,
``POST /models/{name}/predict``, and ``POST /predict`` routed by ``model`` and the ``route`` header.

It is a server on the user's machine, so it trusts nothing it is sent: every route but ``GET /health``
needs the deployment's key (``Authorization: Bearer …``, as OpenAI clients send it), and the model
servers behind it answer only a secret of the runtime's that it adds when forwarding (so its checks
cannot be skipped by calling a model server's port, with the deployment's key or any other); only loopback
``Host`` values are answered (no DNS rebinding); POST bodies must be JSON (no cross-site "simple"
form posts) and at most :data:`MAX_BODY_BYTES` (413); request fields are checked before they reach
the engine (:func:`~aqua_lab.inference.protocol.check_engine_body`, 422); a model's queue is bounded
(429 with ``Retry-After``).  Every upstream call runs under time limits (connect, first byte, idle,
total: :mod:`aqua_lab.inference.timeouts`, a request may lower them with the ``x-aqua-lab-timeouts``
header); a model that passes one is answered 504 (``event: error`` mid-stream) and marked
``NOT_ANSWERING``: it gets no new requests until its health check passes again (a cooldown).
A stream that ends without ``[DONE]`` or carries the engine's error reaches the client as
``event: error`` with the engine's reason, never as a silent empty answer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST

from ...inference.pool import UpstreamClosed, UpstreamPool, UpstreamTimeout
from ...inference.protocol import RequestProblem, engine_payload
from ...inference.sse import SSEParser
from ...inference.timeouts import HEADER, Limits, Timeouts, timeout_message
from .http1 import Application, ClientGone, Handler
from .metrics import MAX_WINDOW_S, RouterMetrics, completion_tokens

if TYPE_CHECKING:
    from .supervisor import Server, Supervisor

OPENAI_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
#: the largest request body the router reads (a long chat history is far below; a 50 MB prompt
#: would keep a model server tokenising for half a minute)
MAX_BODY_BYTES = 1 << 20
#: requests a model may have waiting beyond the ones its slots decode, per slot
QUEUE_PER_SLOT = 4
#: milliseconds the router itself added to a request (as LiteLLM's x-litellm-overhead-duration-ms)
OVERHEAD_HEADER = "x-aqua-lab-overhead-ms"
#: seconds a request waits for a sleeping model to wake (its weights to load) before a 503 / error
WAKE_WAIT_S = float(os.environ.get("AQUA_LAB_WAKE_WAIT_S") or 60)
#: a streamed request to a waking model gets an SSE comment this often (every client skips comments)
LOADING_EVERY_S = 1.0
_WAKING = ("SLEEPING", "LOADING")
_LOOPBACK_HOST = re.compile(r"^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])(?::\d{1,5})?$", re.I)


class WakeTimeout(Exception):
    """A sleeping model took longer than :data:`WAKE_WAIT_S` to answer its waking request."""


def openai_error(message: str, kind: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, **extra}}


class Base(Handler):
    """Reads the body itself (``data_received``) so that an oversized one is refused with 413 as it
    arrives, never buffered whole."""

    open_route = False  # True: answered without the key (the load balancer's /health)

    def initialize(self, supervisor: Supervisor, predict_endpoint: str = "/v1/completions") -> None:
        self.supervisor = supervisor
        self.predict_endpoint = predict_endpoint
        self.client_gone = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._oversized = 0

    def data_received(self, chunk: bytes) -> None:
        # an oversized body is read to its end and dropped, so the client (still sending) gets the 413
        self._size += len(chunk)
        if self._size > MAX_BODY_BYTES:
            self._oversized, self._chunks = self._size, []
        elif not self._oversized:
            self._chunks.append(chunk)

    def _too_large(self, size: int) -> None:
        self.send_json(
            413,
            openai_error(
                f"request body of {size}+ bytes is over the limit of {MAX_BODY_BYTES} bytes; "
                "shorten the prompt or the history",
                "invalid_request_error",
                "request_too_large",
            ),
        )

    def prepare(self) -> None:
        self.started = time.perf_counter()
        host = self.request.headers.get("Host", "")
        if not _LOOPBACK_HOST.match(host):
            self.send_json(
                421,
                openai_error(f"Host {host[:100]!r} is not this machine's loopback address", "invalid_request_error"),
            )
            return
        if not self.open_route and not self._authorized():
            self.set_header("WWW-Authenticate", 'Bearer realm="aqua_lab deployment"')
            self.send_json(
                401,
                openai_error(
                    "this deployment needs its key: send 'Authorization: Bearer <key>' (the key is the "
                    "deployment's api_key: `aqua-lab deployment get --model_deployment_id ID --platform local`)",
                    "authentication_error",
                    "invalid_api_key",
                ),
            )
            return
        if self.request.method == "POST":
            kind = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                self.send_json(
                    415,
                    openai_error(
                        f"Content-Type {kind or 'missing'!r}: send the body as application/json",
                        "invalid_request_error",
                    ),
                )
                return
            size = self.request.headers.get("Content-Length", "0")
            if size.isdigit() and int(size) > MAX_BODY_BYTES:  # refused before it is sent (Expect: 100-continue)
                self._too_large(int(size))

    def _authorized(self) -> bool:
        key = self.supervisor.api_key
        if not key:
            return True
        given = self.request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())

    def on_connection_close(self) -> None:
        self.client_gone = True

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status: int, message: str) -> None:
        self.send_json(status, _error_body(status, message))

    def body_json(self) -> dict[str, Any] | None:
        if self._oversized:
            self._too_large(self._oversized)
            return None
        try:
            body = json.loads((b"".join(self._chunks) or b"{}").decode("utf-8"))
        except UnicodeDecodeError:
            self.send_json(400, openai_error("request body is not UTF-8 text", "invalid_request_error"))
            return None
        except json.JSONDecodeError as exc:
            self.send_json(400, openai_error(f"request body is not JSON: {exc.msg}", "invalid_request_error"))
            return None
        if not isinstance(body, dict):
            self.send_json(400, openai_error("request body must be a JSON object", "invalid_request_error"))
            return None
        return body

    @property
    def metrics(self) -> RouterMetrics | None:
        return self.settings.get("metrics")

    def _refused(self, name: str, code: int, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.refused(name, code, kind)

    def checked(
        self, body: dict[str, Any], route: str, server: Server, name: str, adds: dict[str, Any]
    ) -> bytes | None:
        """The bytes to send upstream: ``body`` checked, with ``adds`` set (None after answering 422)."""
        try:
            return engine_payload(body, route, server.spec.llama_context(), adds)
        except RequestProblem as exc:
            self._refused(name, exc.status, "invalid_request")
            self.send_json(exc.status, openai_error(exc.message, "invalid_request_error", exc.code, param=exc.field))
            return None

    def resolve(self, name: str | None) -> tuple[Server, str] | None:
        names = list(self.supervisor.by_name)
        if name is None:
            if len(names) == 1:
                return self.supervisor.server_for(names[0])
            self.send_json(
                400,
                openai_error(
                    f"'model' is required: this deployment serves {names}", "invalid_request_error", "model_required"
                ),
            )
            return None
        found = self.supervisor.server_for(name)
        if found is None:
            self.send_json(
                404,
                openai_error(
                    f"model {name!r} is not served by this deployment; it serves {names}",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
            return None
        server = found[0]
        if server.state in _WAKING:
            return found if self._may_wait_for_wake(server, name) else None
        if server.state != "ACTIVE":
            self._refused(name, 503, "model_unavailable")
            self.set_header("Retry-After", "2")
            self.send_json(
                503,
                openai_error(
                    f"model {name!r} is {server.state.lower().replace('_', ' ')}: {server.detail or 'not ready'}",
                    "model_unavailable",
                    "model_unavailable",
                    state=server.state,
                ),
            )
            return None
        limit = server.spec.concurrency * (1 + QUEUE_PER_SLOT)
        if server.in_flight >= limit:
            self._refused(name, 429, "queue_full")
            self.set_header("Retry-After", "1")
            self.send_json(
                429,
                openai_error(
                    f"model {name!r} has {server.in_flight} requests in hand, its limit "
                    f"({server.spec.concurrency} at once + {server.spec.concurrency * QUEUE_PER_SLOT} waiting); "
                    "retry shortly, or deploy it with more --max-num-seqs",
                    "rate_limit_error",
                    "queue_full",
                ),
            )
            return None
        return found

    def _may_wait_for_wake(self, server: Server, name: str) -> bool:
        """A request to a sleeping or waking model waits for it, within two bounds: the requests that
        may wait at once (the model's own queue limit) and how long a wake may take."""
        limit = server.spec.concurrency * (1 + QUEUE_PER_SLOT)
        loading = time.monotonic() - server.wake_started if server.wake_started is not None else 0.0
        if server.in_flight >= limit:
            why = f"{server.in_flight} requests already wait for it to wake, the limit is {limit}"
        elif loading > WAKE_WAIT_S:
            why = f"it has been loading for {loading:.0f} s, over the wake limit of {WAKE_WAIT_S:g} s"
        else:
            return True
        self._refused(name, 503, "model_waking")
        self.set_header("Retry-After", "2")
        self.send_json(
            503,
            openai_error(
                f"model {name!r} is waking up: {why}", "model_unavailable", "model_waking", state=server.state
            ),
        )
        return False

    async def _post_waking(self, server: Server, name: str, post: Any, stream: bool) -> Any:
        """Await the upstream answer of a request that wakes ``server``; a streamed one is told
        ``: loading`` meanwhile (an SSE comment: OpenAI clients and aqua_lab's fronts skip it).
        The wake's time goes on record when the model answers."""
        self.supervisor.waking(server)
        began = time.monotonic()
        task = asyncio.ensure_future(self._woken_then(server, name, post, began + WAKE_WAIT_S))
        if stream:
            self.set_status(200)
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
        while True:
            if stream:
                self.write(f": loading model {name!r}: waking from sleep ({time.monotonic() - began:.0f} s)\n\n")
                await self.flush()
            done, _ = await asyncio.wait({task}, timeout=LOADING_EVERY_S)
            if done:
                response = task.result()
                self.supervisor.woke(server)
                return response
            if time.monotonic() - began > WAKE_WAIT_S:
                task.cancel()
                raise WakeTimeout(
                    f"model {name!r} did not wake within {WAKE_WAIT_S:g} s (AQUA_LAB_WAKE_WAIT_S); see its log"
                )

    async def _woken_then(self, server: Server, name: str, post: Any, deadline: float) -> Any:
        """The request goes out once its model may be resident (room made, an evicted server started)."""
        try:
            await self.supervisor.ensure_resident(server, deadline)
        except (TimeoutError, RuntimeError) as exc:
            raise WakeTimeout(f"model {name!r} could not wake: {exc}") from None
        return await post()

    async def forward(self, server: Server, name: str, path: str, body: dict[str, Any]) -> None:
        """Send ``body`` to ``server`` and pass its answer through as it arrives."""
        lora = server.spec.lora_selection(name)
        # one server holds the base and its adapters: the name picks the adapter.  Encoded from what
        # was checked, never passed on as it came: what the engine reads must be what was checked (a
        # key given twice is one value to json.loads and may be the other to the engine's parser)
        adds = {"model": name} if lora is None else {"model": name, "lora": lora}
        payload = self.checked(body, path, server, name, adds)
        limits = self.limits()
        if payload is None or limits is None:
            return
        # llama-server names its one alias in every answer: an adapter's answers say the adapter
        adapter = lora is not None and name != server.spec.served_name
        rename = _renaming(server.spec.served_name, name) if adapter else None
        held: list[bytes] | None = [] if rename else None  # a non-streamed body, renamed once whole
        pool: UpstreamPool = self.settings["upstream"]
        # the servers' own secret, not the client's key: they answer this router only
        headers = {"authorization": f"Bearer {self.supervisor.server_key}"}
        response = None
        metrics = self.metrics
        first: float | None = None  # when the first answer bytes went to the client
        tokens: int | None = None
        kept: list[bytes] | None = [] if metrics is not None else None  # a non-streamed body, for its usage
        error: str | None = "client_gone"
        waking = server.state in _WAKING
        early = waking and bool(body.get("stream"))  # the loading comments go out before the answer
        if waking:  # the model loads before it answers: the wake's own limit comes first
            limits = Limits(**{**limits.__dict__, "first_byte_s": limits.first_byte_s + WAKE_WAIT_S})
        server.in_flight += 1
        server.dispatched += 1
        server.last_used = time.monotonic()

        def post() -> Any:  # made when sent: a model that wakes in a new process has a new port
            accept = self.request.headers.get("Accept", "*/*")
            return pool.post(server.port, path, payload, accept, headers=headers, limits=limits)

        try:
            before = time.perf_counter()
            response = await (self._post_waking(server, name, post, early) if waking else post())
            after = time.perf_counter()
            if early and response.status != 200:  # 200 went out with the first comment
                answer = b"".join([chunk async for chunk in response.chunks()])
                self.write(b"event: error\ndata: " + b" ".join(answer.splitlines()) + b"\n\n")
                error = f"http_{response.status}"
                self.finish()
                return
            self.set_status(response.status)
            content_type = response.headers.get("content-type", "application/json")
            self.set_header("Content-Type", content_type)
            streaming = content_type.startswith("text/event-stream")
            if streaming:
                self.set_header("Cache-Control", "no-cache")
                self.set_header("X-Accel-Buffering", "no")
            # what the router itself added: reading and checking the request before it went
            # upstream, and passing the answer's headers on (LiteLLM's x-litellm-overhead-duration-ms)
            overhead = (before - self.started) + (time.perf_counter() - after)
            self.set_header(OVERHEAD_HEADER, f"{overhead * 1000:.3f}")
            # each send wakes the client (and on loopback does its TCP work inline): a stream's headers
            # go out at once only while its first chunk has not come with them (a model still reading
            # the prompt), and a whole answer goes out in one send when finished
            if streaming and not response.buffered():
                self.flush()
            watch = StreamWatch(rename) if streaming else None
            async for chunk in response.chunks():
                if self.client_gone:
                    return
                out = watch.feed(chunk) if watch else chunk
                if out and first is None:
                    first = time.perf_counter()
                if kept is not None and watch is None:
                    kept.append(chunk)
                if held is not None and watch is None:
                    held.append(chunk)
                    continue
                self.write(out)
                if watch is not None and not response.complete:  # the last piece goes with the stream's end
                    await self.flush()
            if held:
                self.write(b"".join(held).replace(*rename))
            error = None if response.status == 200 else f"http_{response.status}"
            if watch is not None:
                if not watch.done:
                    self.write(watch.end(name))
                    error = "engine_error" if watch.failed else "incomplete_stream"
                elif watch.failed:
                    error = "engine_error"
            if error is None:  # answered completely (what a crash "after N answered requests" counts)
                server.served += 1
            # the answer's end goes out before the bookkeeping: a short answer's first token often
            # comes in the same read as its end, and the client should not wait for the counting
            self.finish()
            if watch is not None:
                tokens = watch.tokens() if metrics is not None else None
            elif kept and response.status == 200:
                tokens = completion_tokens(b"".join(kept))
        except ClientGone:
            return  # the client went away
        except WakeTimeout as exc:
            error = "model_timeout"
            if server.state != "FAILED":  # a model that failed to wake stays down: asking again is no use
                self.set_header("Retry-After", "5")
            failure = openai_error(str(exc), "model_unavailable", "model_waking")
            if early:
                self.write(f"event: error\ndata: {json.dumps(failure)}\n\n")
                self.finish()
            else:
                self.send_json(503, failure)
            return
        except UpstreamTimeout as exc:
            error = "model_timeout"
            self._timed_out(server, name, exc, headers_sent=response is not None or early)
            return
        except (UpstreamClosed, OSError) as exc:
            error = "model_unavailable"
            if not self.client_gone:
                await self._upstream_failed(server, name, exc, headers_sent=response is not None or early)
            return
        finally:
            server.in_flight -= 1
            if response is not None:
                response.close()  # unless read to the end: closing stops the server's generation
            if metrics is not None:
                end = time.perf_counter()
                code = response.status if response is not None else 504 if error == "model_timeout" else 503
                ttft = (first - self.started) if first is not None else None
                metrics.record(server, name, code, ttft, tokens or 0, end - self.started, error)

    def limits(self) -> Limits | None:
        """The time limits of this request's upstream call: the router's, lowered or raised by the
        client's :data:`HEADER` (None after answering 400 for a malformed one)."""
        given = self.request.headers.get(HEADER)
        limits: Limits = self.settings["limits"]
        try:
            return limits.but(Timeouts.from_header(given)) if given else limits
        except ValueError as exc:  # pydantic's ValidationError is one
            message = f"header {HEADER} {given[:100]!r}: {' '.join(str(exc).split())[:300]}"
            self.send_json(400, openai_error(message, "invalid_request_error", param=HEADER))
            return None

    def _timed_out(self, server: Server, name: str, exc: UpstreamTimeout, headers_sent: bool) -> None:
        """A model that passed a time limit gets no new requests until its health check passes (a
        cooldown); the client learns which limit, in the protocol it is reading (504 or an SSE error)."""
        self.settings["upstream"].forget(server.port)
        self.supervisor.not_answering(server, f"its {exc.limit.removesuffix('_s')} limit of {exc.seconds:g} s passed")
        if self.client_gone:
            return
        message = timeout_message(name, exc.limit, exc.seconds)
        error = openai_error(
            message, "timeout_error", "model_timeout", model=name, limit=exc.limit, seconds=exc.seconds
        )
        if headers_sent:
            self.write(f"event: error\ndata: {json.dumps(error)}\n\n")
            self.finish()
        else:
            self.send_json(504, error)

    async def _upstream_failed(self, server: Server, name: str, exc: Exception, headers_sent: bool) -> None:
        """Say it in the protocol the client is reading: an SSE error event, or a 503; when the model's
        server died (a wake that could not load its weights, a kill), how and why, in the engine's words."""
        self.settings["upstream"].forget(server.port)
        why = await self.supervisor.lost(server, self.started)
        if self.client_gone:
            return
        if why is None:
            why = f"{exc or type(exc).__name__}; its server is being restarted"
        message = f"model {name!r} stopped answering: {why}"
        error = openai_error(message, "model_unavailable", "model_unavailable", state=server.state)
        if server.state != "FAILED":
            self.set_header("Retry-After", "2")
        if headers_sent:
            self.write(f"event: error\ndata: {json.dumps(error)}\n\n")
            self.finish()
        else:
            self.send_json(503, error)


class Models(Base):
    def get(self) -> None:
        data = [
            {
                "id": name,
                "object": "model",
                "owned_by": "aqua_lab",
                "state": self.supervisor.state_of(name),
                "replicas": len(replicas),
            }
            for name, replicas in self.supervisor.by_name.items()
        ]
        self.send_json(200, {"object": "list", "data": data})


class OpenAI(Base):
    async def post(self) -> None:
        body = self.body_json()
        if body is None:
            return
        found = self.resolve(body.get("model"))
        if found is not None:
            await self.forward(*found, self.request.path, body)


class Health(Base):
    open_route = True

    def get(self, name: str | None = None) -> None:
        if name is None:
            states = {n: self.supervisor.state_of(n) for n in self.supervisor.by_name}
            ok = all(v in ("ACTIVE", *_WAKING) for v in states.values())  # asleep is healthy: it wakes
            self.send_json(200 if ok else 503, {"status": "healthy" if ok else "unhealthy", "models": states})
            return
        if not self._authorized():  # a model's own health names it and its state: the key's business
            self.send_json(401, openai_error("this deployment needs its key", "authentication_error"))
            return
        found = self.supervisor.server_for(name)
        if found is None:
            self.send_json(404, openai_error(f"no model {name!r} here", "invalid_request_error", "model_not_found"))
            return
        view = self.supervisor.model_view(name, self.supervisor.by_name[name])
        self.send_json(
            200 if view["state"] == "ACTIVE" else 503, {"model": name, "state": view["state"], "detail": view["detail"]}
        )


class Predict(Base):
    """OCI's predict: the model from the path (model-group API) or the body, the OpenAI route from
    the ``route`` header, else chat when the body has ``messages``, else the deployment default."""

    async def post(self, name: str | None = None) -> None:
        body = self.body_json()
        if body is None:
            return
        route = self.request.headers.get("route")
        if route is None:
            route = "/v1/chat/completions" if "messages" in body else self.predict_endpoint
        if route not in OPENAI_ROUTES:
            self.send_json(
                400, openai_error(f"route {route!r} is not one of {list(OPENAI_ROUTES)}", "invalid_request_error")
            )
            return
        found = self.resolve(name or body.get("model"))
        if found is not None:
            await self.forward(*found, route, body)


class Metrics(Base):
    """``GET /metrics``: Prometheus text; ``GET /metrics/recent?window=300``: the JSON summary and
    series per model that aqua_lab's own surfaces show.  Both need the key: they name the models."""

    def get(self, recent: str | None = None) -> None:
        metrics = self.metrics
        if metrics is None:
            self.send_json(404, openai_error("this deployment's router runs without metrics", "invalid_request_error"))
            return
        if recent is None:
            self.set_header("Content-Type", CONTENT_TYPE_LATEST)
            self.finish(metrics.prometheus())
            return
        raw = self.get_query_argument("window", "300")
        try:
            window = float(raw)
        except ValueError:
            window = -1.0
        if not 1 <= window <= MAX_WINDOW_S:
            self.send_json(
                400,
                openai_error(
                    f"window {raw!r}: give seconds from 1 to {MAX_WINDOW_S:.0f}",
                    "invalid_request_error",
                    param="window",
                ),
            )
            return
        self.send_json(200, metrics.recent(window))


def _renaming(alias: str, name: str) -> tuple[bytes, bytes]:
    """The bytes of ``"model":"<alias>"`` in llama-server's compact JSON, and what they become.  Only
    a key can match: inside a JSON string a quote is escaped (``\\"``)."""
    return tuple(b'"model":' + json.dumps(n, ensure_ascii=False).encode() for n in (alias, name))


class StreamWatch:
    """Follows an SSE body event by event (the one parser, which keeps each event's bytes): an engine
    error becomes ``event: error``, and a stream that ends without ``[DONE]`` gets one at the end (a
    client must never take it for a finished answer)."""

    def __init__(self, rename: tuple[bytes, bytes] | None = None) -> None:
        self.rename = rename
        self.parser = SSEParser()
        self.done = False
        self.failed = False
        self.events = 0
        self.last = ""  # the last data event before [DONE]: where engines put the usage

    def tokens(self) -> int:
        """Tokens generated, by the engine's count when its last event has one."""
        counted = completion_tokens(self.last) if self.last else None
        # without a usage or timings block: one event per token (the first carries only the role)
        return counted if counted is not None else max(0, self.events - 1)

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for event in self.parser.feed(chunk):
            if event.done:
                self.done = True
            elif event.event == "error":
                self.failed = True
            elif event.data.startswith('{"error"'):
                self.failed = True
                out.append(b"event: error\n")
            else:
                self.events += 1
                self.last = event.data
            out.append(event.raw.replace(*self.rename) if self.rename else event.raw)
        return b"".join(out)

    def end(self, name: str) -> bytes:
        rest = self.parser.pending()
        if self.failed:
            return rest + b"data: [DONE]\n\n" if rest else b""
        message = f"model {name!r} ended its answer without finishing it (no [DONE]); see its log"
        error = json.dumps(openai_error(message, "model_error", "incomplete_stream"))
        return rest + f"event: error\ndata: {error}\n\n".encode()


def use_fast_loop() -> str:
    """Make uvloop (the ``local`` extra installs it) this thread's event loop, before tornado makes
    one: fewer wake-ups and cheaper socket calls on every hop; asyncio's own loop where it is not
    installed.  Returns the loop's name (for the runtime's log)."""
    try:
        import uvloop
    except ImportError:
        # set, not left to get_event_loop() to make: the server binds before the loop runs, and
        # Python 3.14's get_event_loop() raises where no loop was set
        asyncio.set_event_loop(asyncio.new_event_loop())
        return "asyncio"
    asyncio.set_event_loop(uvloop.new_event_loop())
    return "uvloop"


def _error_body(status: int, message: str) -> dict[str, Any]:
    """The router's server's own refusals (a malformed request, no such path) in OpenAI's shape."""
    return openai_error(message, "invalid_request_error" if status < 500 else "server_error")


def make_router(supervisor: Supervisor, predict_endpoint: str = "/v1/completions", metrics: bool = True) -> Application:
    """``metrics=False`` runs without measuring (the bench's baseline); ``/metrics`` then answers 404.
    ``.listen(port, address)`` binds at once and serves on the current event loop."""
    args = {"supervisor": supervisor, "predict_endpoint": predict_endpoint}
    return Application(
        [
            (r"/v1/(?:chat/completions|completions|embeddings)", OpenAI, args),  # the hot route first
            (r"/metrics(/recent)?", Metrics, args),
            (r"/v1/models", Models, args),
            (r"/health", Health, args),
            (r"/models/(.+)/health", Health, args),
            (r"/models/(.+)/predict", Predict, args),
            (r"/predict", Predict, args),
        ],
        error_body=_error_body,
        upstream=UpstreamPool(),
        limits=Limits.defaults(),  # the environment's, read once: the runtime's environment is fixed
        metrics=RouterMetrics(supervisor) if metrics else None,
    )
