"""Async OpenAI-compatible calls to a deployment: streamed (SSE events) or whole (JSON).

Plain-http endpoints on this machine (local deployments) go through a keep-alive pool, so the chat
handler adds little to the time-to-first-token.  Closing the iterator closes the connection, which
is how a browser's disconnect reaches the model server.  Every call runs under the time limits of
:mod:`.timeouts` (a request's own ``timeouts`` also go to a local router in its header, so the
router's upstream call gives up with it); passing one is a :class:`~aqua_lab.errors.ModelTimeout`.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from ..errors import ModelTimeout, UpstreamError
from .pool import UpstreamClosed, UpstreamPool, UpstreamTimeout
from .sse import Event, SSEParser
from .timeouts import HEADER, Limits, Timeouts, limits, timeout_message

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


def _timed_out(raw: bytes | str) -> ModelTimeout | None:
    """A router's answer (a 504 body or an SSE error) saying a model passed a time limit, as the typed error."""
    try:
        error = json.loads(raw).get("error")
        if isinstance(error, dict) and error.get("code") == "model_timeout":
            model, limit = str(error.get("model")), str(error.get("limit"))
            return ModelTimeout(clean_message(str(error.get("message"))), model, limit, float(error["seconds"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def stream_error(data: str) -> UpstreamError:
    """The error an SSE error event (or an engine's ``{"error": …}`` chunk) becomes."""
    return _timed_out(data) or UpstreamError(error_message(502, data.encode()), 502)


def refusal(status: int, raw: bytes, headers: Any = None) -> UpstreamError:
    """The error an endpoint's non-200 answer becomes: its status, its cleaned message, the field it
    named, its request id and how long it asked a busy client to wait."""
    if status == 504 and (timed_out := _timed_out(raw)):
        return timed_out
    _, field = _parsed_error(raw)
    headers = headers or {}
    return UpstreamError(
        error_message(status, raw),
        status,
        headers.get("opc-request-id"),
        field=field,
        retry_after=_retry_after(headers) if status in RETRY_STATUSES else None,
    )


def _retry_after(headers: Any) -> float | None:
    try:
        after = float(headers.get("retry-after") or "")
    except (TypeError, ValueError):
        return None
    return after if after >= 0 else None


def _bytes(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


#: a deployment that is busy (429) or briefly unavailable (503) is asked again, a bounded few times
RETRY_STATUSES = (429, 503)
RETRY_DELAYS_S = (0.5, 1.0, 2.0)


def _retry_delay(attempt: int, headers: Any) -> float | None:
    """Seconds to wait before asking again, or None when no attempt is left (Retry-After honoured,
    capped at 10 s)."""
    if attempt >= len(RETRY_DELAYS_S):
        return None
    return min(10.0, max(RETRY_DELAYS_S[attempt], _retry_after(headers) or 0.0))


def _timeout(exc: UpstreamTimeout, model: str | None, url: str) -> ModelTimeout:
    who = model or f"at {url}"
    return ModelTimeout(timeout_message(who, exc.limit, exc.seconds), who, exc.limit, exc.seconds)


def _with_limits(headers: dict[str, str] | None, timeouts: Timeouts | None) -> dict[str, str] | None:
    given = timeouts.header() if timeouts is not None else None
    return {**(headers or {}), HEADER: given} if given else headers


async def _post(
    url: str,
    body: bytes,
    accept: str,
    headers: dict[str, str] | None,
    call: Limits,
    model: str | None,
    method: str = "POST",
) -> Any:
    """The response to POST ``body``, asked again on 429/503 before any of it is read (a signed
    request stays valid for minutes, so the same headers are sent again)."""
    host, port, path, tls = _target(url)
    for attempt in range(len(RETRY_DELAYS_S) + 1):
        try:
            response = await _pool().post(port, path, body, accept, host, headers, tls, call, method)
        except UpstreamTimeout as exc:
            raise _timeout(exc, model, url) from None
        except (UpstreamClosed, OSError) as exc:
            raise UpstreamError(f"the deployment at {url} did not answer: {exc}", 502) from None
        delay = _retry_delay(attempt, response.headers) if response.status in RETRY_STATUSES else None
        if delay is None:
            return response
        try:
            async for _ in response.chunks():
                pass
        except (UpstreamClosed, UpstreamTimeout):
            pass
        finally:
            response.close()
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


async def stream_events(
    url: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
    model: str | None = None,
    timeouts: Timeouts | None = None,
    comments: bool = False,
) -> AsyncIterator[Event]:
    """POST ``body`` (a dict, or the exact bytes a signature covers) and yield the SSE events of the
    answer (its comment lines too with ``comments``).  Raises :class:`UpstreamError` for an error
    status, or when the stream breaks (after the events that did arrive); :class:`ModelTimeout`
    (naming ``model``) past a time limit."""
    call = limits(timeouts)
    response = await _post(url, _bytes(body), "text/event-stream", _with_limits(headers, timeouts), call, model)
    try:
        if response.status != 200:
            raw = b"".join([chunk async for chunk in response.chunks()])
            raise refusal(response.status, raw, response.headers)
        parser = SSEParser(comments)
        async for chunk in response.chunks():
            for event in parser.feed(chunk):
                yield event
        for event in parser.close():
            yield event
    except UpstreamTimeout as exc:
        raise _timeout(exc, model, url) from None
    except UpstreamClosed as exc:
        raise UpstreamError(f"the stream from {url} broke: {exc}", 502) from None
    finally:
        response.close()


async def post_json(
    url: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
    model: str | None = None,
    timeouts: Timeouts | None = None,
) -> dict[str, Any]:
    """POST ``body`` and return the JSON answer; errors as :func:`stream_events`."""
    call = limits(timeouts)
    response = await _post(url, _bytes(body), "application/json", _with_limits(headers, timeouts), call, model)
    return await _json_answer(response, url, model)


async def get_json(url: str, headers: dict[str, str] | None = None, timeouts: Timeouts | None = None) -> Any:
    """GET ``url``'s JSON (a router's own routes: its metrics), under the same limits as a model call."""
    response = await _post(url, b"", "application/json", headers, limits(timeouts), None, "GET")
    return await _json_answer(response, url, None)


async def _json_answer(response: Any, url: str, model: str | None) -> Any:
    try:
        raw = b"".join([chunk async for chunk in response.chunks()])
    except UpstreamTimeout as exc:
        raise _timeout(exc, model, url) from None
    except (UpstreamClosed, OSError) as exc:
        raise UpstreamError(f"the deployment at {url} did not answer: {exc}", 502) from None
    finally:
        response.close()
    if response.status != 200:
        raise refusal(response.status, raw, response.headers)
    return json.loads(raw)


def get_json_blocking(url: str, headers: dict[str, str] | None = None, timeouts: Timeouts | None = None) -> Any:
    """:func:`get_json` for a caller without an event loop of its own (a platform verb in an executor
    thread, the CLI); in a thread whose loop runs (a notebook's), on a fresh loop in another thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(get_json(url, headers, timeouts))
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, get_json(url, headers, timeouts)).result()
