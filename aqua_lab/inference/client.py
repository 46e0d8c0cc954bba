"""Async OpenAI-compatible calls to a deployment: streamed (SSE events) or whole (JSON).

Plain-http endpoints on this machine (local deployments) go through a keep-alive pool, so the chat
handler adds little to the time-to-first-token.  Closing the iterator closes the connection, which
is how a browser's disconnect reaches the model server.
"""

from __future__ import annotations

import asyncio
import json
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


def _error_message(status: int, raw: bytes) -> str:
    try:
        data = json.loads(raw)
        error = data.get("error", data.get("detail", data))
        return error.get("message", json.dumps(error)) if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        return raw.decode("utf-8", "replace")[:300] or f"HTTP {status}"


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
            raise UpstreamError(
                _error_message(response.status, raw), response.status, response.headers.get("opc-request-id")
            )
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
        raise UpstreamError(
            _error_message(response.status, raw), response.status, response.headers.get("opc-request-id")
        )
    return json.loads(raw)
