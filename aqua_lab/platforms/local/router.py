"""The router in front of a local deployment's model servers (what LiteLLM is in the OCI container).

OpenAI-compatible: ``GET /v1/models``; ``POST /v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings`` routed by the body's ``model`` (404 for a name the deployment does not serve —
llama.cpp would silently answer with its own model).  Responses, SSE included, are passed through
chunk by chunk.  When a server dies mid-stream the stream ends with ``event: error``; when the
client goes away the upstream request is closed.

Also the model-group (BYOC) API of OCI: ``GET /health``, ``GET /models/{name}/health``,
``POST /models/{name}/predict``, and ``POST /predict`` routed by ``model`` and the ``route`` header.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tornado import web
from tornado.iostream import StreamClosedError

from ...inference.pool import UpstreamClosed, UpstreamPool

if TYPE_CHECKING:
    from .runtime import Server, Supervisor

OPENAI_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


def openai_error(message: str, kind: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, **extra}}


class Base(web.RequestHandler):
    def initialize(self, supervisor: Supervisor, predict_endpoint: str = "/v1/completions") -> None:
        self.supervisor = supervisor
        self.predict_endpoint = predict_endpoint
        self.client_gone = False

    def on_connection_close(self) -> None:
        self.client_gone = True

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.send_json(status_code, openai_error(self._reason, "server_error"))

    def body_json(self) -> dict[str, Any] | None:
        try:
            body = json.loads((self.request.body or b"{}").decode("utf-8"))
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
        if server.state != "ACTIVE":
            self.send_json(
                503,
                openai_error(
                    f"model {name!r} is {server.state.lower()}: {server.detail or 'not ready'}",
                    "model_unavailable",
                    "model_unavailable",
                    state=server.state,
                ),
            )
            return None
        return found

    async def forward(self, server: Server, name: str, path: str, body: dict[str, Any]) -> None:
        """Send ``body`` to ``server`` and pass its answer through as it arrives."""
        body["model"] = name
        pool: UpstreamPool = self.settings["upstream"]
        response = None
        try:
            response = await pool.post(
                server.port, path, json.dumps(body).encode(), self.request.headers.get("Accept", "*/*")
            )
            self.set_status(response.status)
            content_type = response.headers.get("content-type", "application/json")
            self.set_header("Content-Type", content_type)
            if content_type.startswith("text/event-stream"):
                self.set_header("Cache-Control", "no-cache")
                self.set_header("X-Accel-Buffering", "no")
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None and not stream.closed():
                stream.set_nodelay(True)  # token chunks are small writes: no Nagle delay
            self.flush()  # headers now, as the server itself does
            async for chunk in response.chunks():
                if self.client_gone:
                    return
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            return  # the client went away
        except (UpstreamClosed, OSError) as exc:
            if not self.client_gone:
                self._upstream_failed(server, name, exc, headers_sent=response is not None)
            return
        finally:
            if response is not None:
                response.close()  # unless read to the end: closing stops the server's generation
        self.finish()

    def _upstream_failed(self, server: Server, name: str, exc: Exception, headers_sent: bool) -> None:
        """Say it in the protocol the client is reading: an SSE error event, or a 503."""
        self.settings["upstream"].forget(server.port)
        self.supervisor.poke(server)
        message = f"model {name!r} stopped answering ({exc or type(exc).__name__}); its server is being restarted"
        error = openai_error(message, "model_unavailable", "model_unavailable")
        if headers_sent:
            self.write(f"event: error\ndata: {json.dumps(error)}\n\n")
            self.finish()
        else:
            self.send_json(503, error)


class Models(Base):
    def get(self) -> None:
        data = [
            {"id": name, "object": "model", "owned_by": "aqua_lab", "state": server.state}
            for name, (server, _) in self.supervisor.by_name.items()
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
    def get(self, name: str | None = None) -> None:
        if name is None:
            states = {n: s.state for n, (s, _) in self.supervisor.by_name.items()}
            ok = all(v == "ACTIVE" for v in states.values())
            self.send_json(200 if ok else 503, {"status": "healthy" if ok else "unhealthy", "models": states})
            return
        found = self.supervisor.server_for(name)
        if found is None:
            self.send_json(404, openai_error(f"no model {name!r} here", "invalid_request_error", "model_not_found"))
            return
        server = found[0]
        self.send_json(
            200 if server.state == "ACTIVE" else 503, {"model": name, "state": server.state, "detail": server.detail}
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


def make_router(supervisor: Supervisor, predict_endpoint: str = "/v1/completions") -> web.Application:
    args = {"supervisor": supervisor, "predict_endpoint": predict_endpoint}
    return web.Application(
        [
            (r"/v1/models", Models, args),
            (r"/v1/(?:chat/completions|completions|embeddings)", OpenAI, args),
            (r"/health", Health, args),
            (r"/models/(.+)/health", Health, args),
            (r"/models/(.+)/predict", Predict, args),
            (r"/predict", Predict, args),
        ],
        upstream=UpstreamPool(),
    )
