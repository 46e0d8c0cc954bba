"""Async OpenAI-compatible calls to a deployment: streamed (SSE events) or whole (JSON).

Plain-http endpoints on this machine (local deployments) go through a keep-alive pool, so the chat
handler adds little to the time-to-first-token.  Closing the iterator closes the connection, which
is how a browser's disconnect reaches the model server.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from ..errors import UpstreamError
from .pool import UpstreamClosed, UpstreamPool
from .sse import Event, SSEParser

# Idle connections belong to the event loop that opened them: one pool per loop (an explicit cache).
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UpstreamPool] = weakref.WeakKeyDictionary()


def _pool() -> UpstreamPool:
    loop = asyncio.get_running_loop()
    if loop not in _pools:
        _pools[loop] = UpstreamPool()
    return _pools[loop]


def _target(url: str) -> tuple[str, int, str, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"cannot reach {url!r}: not an http(s) URL", 502)
    tls = parts.scheme == "https"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port or (443 if tls else 80), path, tls


#: the most of an engine's error message a user gets (vLLM's validation errors repeat the whole body)
MESSAGE_CHARS = 500
# a source location in a traceback line or an error text: File "/x/y.py", line 3 · /x/y.py:3 · /x/y.py
_SOURCE = re.compile(r'File "[^"]+", line \d+(, in \S+)?|(?<![\w.])(/[\w.@+-]+)+\.(py|cpp|cc|c|h|hpp)(:\d+)*')


def clean_message(text: str) -> str:
    """An engine's message as a user may see it: source paths and lines cut (they say nothing to a
    user and show the server's layout), whitespace folded, at most :data:`MESSAGE_CHARS` characters."""
    text = " ".join(_SOURCE.sub("<engine source>", text).split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + f"… ({len(text)} characters in all)"


def _parsed_error(raw: bytes) -> tuple[str | None, str | None]:
    """(message, field) from an OpenAI-style ``{"error": {...}}``, FastAPI's ``{"detail": ...}`` or
    vLLM's ``{"object": "error", "message": ...}``; (None, None) when the body is none of them."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    error = data.get("error", data.get("detail", data))
    if isinstance(error, dict):
        field = error.get("param")
        message = error.get("message")
        return (message if isinstance(message, str) else json.dumps(error)), (field if isinstance(field, str) else None)
    if isinstance(error, list) and error and isinstance(error[0], dict):  # FastAPI validation: [{loc, msg}]
        loc = error[0].get("loc") or []
        field = ".".join(str(part) for part in loc if part != "body") or None
        return "; ".join(str(e.get("msg", e)) for e in error[:3]), field
    return str(error), None


def error_message(status: int, raw: bytes) -> str:
    message, _ = _parsed_error(raw)
    if message is None:
        message = raw.decode("utf-8", "replace") or f"HTTP {status}"
    return clean_message(message)


def refusal(status: int, raw: bytes, request_id: str | None = None) -> UpstreamError:
    """The error an endpoint's non-200 answer becomes: its status, its cleaned message and the field it named."""
    _, field = _parsed_error(raw)
    return UpstreamError(error_message(status, raw), status, request_id, field=field)


def _bytes(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


async def stream_events(
    url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
) -> AsyncIterator[Event]:
    """POST ``body`` (a dict, or the exact bytes a signature covers) and yield the SSE events of the
    answer.  Raises :class:`UpstreamError` for an error status, or when the stream breaks (after
    the events that did arrive)."""
    host, port, path, tls = _target(url)
    try:
        response = await _pool().post(port, path, _bytes(body), "text/event-stream", host, headers, tls)
    except (UpstreamClosed, OSError) as exc:
        raise UpstreamError(f"the deployment at {url} did not answer: {exc}", 502) from None
    try:
        if response.status != 200:
            raw = b"".join([chunk async for chunk in response.chunks()])
            raise refusal(response.status, raw, response.headers.get("opc-request-id"))
        parser = SSEParser()
        async for chunk in response.chunks():
            for event in parser.feed(chunk):
                yield event
        for event in parser.feed("\n\n"):
            yield event
    except UpstreamClosed as exc:
        raise UpstreamError(f"the stream from {url} broke: {exc}", 502) from None
    finally:
        response.close()


async def post_json(url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    host, port, path, tls = _target(url)
    try:
        response = await _pool().post(port, path, _bytes(body), "application/json", host, headers, tls)
        raw = b"".join([chunk async for chunk in response.chunks()])
    except (UpstreamClosed, OSError) as exc:
        raise UpstreamError(f"the deployment at {url} did not answer: {exc}", 502) from None
    if response.status != 200:
        raise refusal(response.status, raw, response.headers.get("opc-request-id"))
    return json.loads(raw)
