"""A small HTTP/1.1 server over :class:`asyncio.Protocol`: what the local router is served by.

The router is one more hop in front of a model server, so every step of it lands on the time to the
first token.  In front of a stand-in model server on a 2-core machine the router on tornado's
``HTTPServer`` added +0.61 to +0.68 ms p50 to it, on this server +0.40 to +0.49 ms (a bare byte pipe
+0.09 to +0.16; ``docs/benchmarks.md``): a request head is parsed in one pass, the handler runs from the
protocol's own callbacks with no stream layer between it and the socket, and each flush is one send.

It serves what clients send to a port on loopback: keep-alive (HTTP/1.0: only when asked), pipelined
requests answered in order, bodies sized by ``Content-Length`` or chunked, ``Expect: 100-continue``;
a head over :data:`MAX_HEAD_BYTES` is a 431, a malformed one a 400 (and the connection closes).  An
answer whose whole body is known when it finishes is sized; one flushed before its end (a stream) is
chunked.  Handlers keep the shape of tornado's (``prepare``, ``data_received``, ``get``/``post``,
``set_status``, ``write``, ``flush``, ``finish``, ``on_connection_close``), so the router reads as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from ...inference.chunked import unchunk

log = logging.getLogger(__name__)

#: the largest request head (request line and headers) read; a larger one is answered 431
MAX_HEAD_BYTES = 64 * 1024
#: bytes a connection may send ahead (pipelined requests, a chunk in the making) before it is no
#: longer read from until its request is answered
MAX_AHEAD_BYTES = 4 << 20
#: seconds a connection that is closing after an error waits for the client to close first, so that
#: bytes the client still sends do not reset the connection before it reads the answer
LINGER_S = 2.0
#: seconds a request head and body have, from their first byte, to arrive whole (else a 408 and the
#: connection closes): a client that sends half a request must not hold a connection for ever.  On
#: loopback a whole request (at most 1 MiB) takes milliseconds; no limit runs while an answer is made,
#: so a long stream is not cut
REQUEST_S = 30.0
#: seconds a kept-alive connection may sit idle between requests before it is closed (nginx's
#: ``keepalive_timeout`` default; clients reopen one as they need it)
IDLE_S = 75.0
#: open client connections served at once; past it a new one is answered 503 and closed, so that a
#: client leaking connections cannot take every file descriptor of the user's machine
MAX_CONNECTIONS = 1024
#: the methods served (tornado's ``SUPPORTED_METHODS``), each only where the handler class defines it:
#: a method name must never reach another attribute of the handler
METHODS = frozenset({"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"})

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEAD, _BODY, _ANSWER = 0, 1, 2  # what a connection is reading: a head, a body, nothing (it answers)


class ClientGone(ConnectionError):
    """The client closed its connection: nothing more can be sent to it."""


class BadRequest(ValueError):
    """A request that does not follow HTTP/1.1 (answered with its status, then the connection closes)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Headers(dict):
    """A request's headers by lower-case name (a repeated header's values joined by commas)."""

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class Request:
    __slots__ = ("method", "path", "query", "version", "headers", "keep_alive")

    def __init__(self, method: str, path: str, query: str, version: str, headers: Headers):
        self.method, self.path, self.query, self.version, self.headers = method, path, query, version, headers
        tokens = headers.get("connection", "").lower()
        self.keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens


def parse_head(head: bytes) -> Request:
    """The request a head (without its blank line) makes; :class:`BadRequest` for a malformed one."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1].startswith(b"/"):
        raise BadRequest(f"malformed request line {lines[0][:100]!r}: send 'METHOD /path HTTP/1.1'")
    if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest(f"{parts[2][:20]!r} is not served: send HTTP/1.1", 505)
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or b"\r" in value:
            raise BadRequest(f"malformed header line {line[:100]!r}: send 'Name: value'")
        key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
        known = dict.get(headers, key)
        dict.__setitem__(headers, key, text if known is None else f"{known},{text}")
    path, _, query = parts[1].decode("latin-1").partition("?")
    return Request(parts[0].decode("ascii"), path, query, parts[2].decode("ascii"), headers)


class Handler:
    """One request's answer.  Subclasses define ``get``/``post`` (sync or async, with the route's
    groups as arguments); one that returns without :meth:`finish` is finished for it."""

    def __init__(self, connection: Connection, request: Request, settings: dict[str, Any], kwargs: dict[str, Any]):
        self.connection, self.request, self.settings = connection, request, settings
        self._status = 200
        self._headers: dict[str, str] = {}
        self._out: list[bytes] = []
        self._headers_sent = self._finished = self._chunked = self._bodyless = False
        self.initialize(**kwargs)

    def initialize(self, **kwargs: Any) -> None:
        pass

    def prepare(self) -> None:
        """Called once the head is read, before the body: a handler that finishes here is not called."""

    def data_received(self, chunk: bytes) -> None:
        """A piece of the request body (dropped unless a subclass keeps it)."""

    def on_connection_close(self) -> None:
        """The client went away before the answer was finished."""

    def set_status(self, status: int) -> None:
        self._status = status

    def set_header(self, name: str, value: Any) -> None:
        text = str(value)
        if "\n" in text or "\r" in text:  # a value from upstream must not end the head early
            raise ValueError(f"header {name} carries a line break")
        self._headers[name] = text

    def get_query_argument(self, name: str, default: str | None = None) -> str | None:
        values = parse_qs(self.request.query, keep_blank_values=True).get(name)
        return values[-1] if values else default

    def write(self, chunk: bytes | str | dict[str, Any]) -> None:
        if self._finished:
            raise RuntimeError("write() after finish()")
        if isinstance(chunk, dict):
            self._headers.setdefault("Content-Type", "application/json")
            chunk = json.dumps(chunk)
        if isinstance(chunk, str):
            chunk = chunk.encode()
        if chunk:
            self._out.append(chunk)

    def flush(self) -> asyncio.Future[None]:
        """Send what was written (the head first, the first time); await the result to honour the
        client's pace.  Raises :class:`ClientGone` once the client has gone."""
        return self.connection.send(self, last=False)

    def finish(self, chunk: bytes | str | dict[str, Any] | None = None) -> None:
        """Send the rest and end the answer (sized when nothing went before it); a client already
        gone is not told."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        self._finished = True
        self.connection.send(self, last=True)
        self.connection.answered(self)

    def write_error(self, status: int, message: str) -> None:
        """The answer to a request this server refuses itself, or to a handler that failed."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(self.connection.app.error_body(status, message))


def _default_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error"}}


class _Refused(Handler):
    """The answer for a path no route serves."""

    def initialize(self, status: int = 404, message: str = "") -> None:
        self.status, self.message = status, message

    def prepare(self) -> None:
        self.write_error(self.status, self.message)


class Connection(asyncio.Protocol):
    """One client connection: reads requests one at a time and runs their handlers in turn."""

    def __init__(self, app: Application):
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.phase = _HEAD
        self.handler: Handler | None = None
        self.request: Request | None = None
        self.keep_alive = True
        self.chunked_body = False
        self.remaining = 0  # body bytes still to read (a sized body)
        self.body_done = self.done = False  # this request's body read; its answer sent
        self.closing = self.eof = self.reading_paused = self.processing = False
        self.waiter: asyncio.Future[None] | None = None  # a flush waiting for the client to read
        self.linger: asyncio.TimerHandle | None = None
        # one timer per connection for REQUEST_S and IDLE_S: a request or an answer moves only the
        # deadline (a float); the timer, armed at most REQUEST_S ahead, moves itself on when it fires
        # early, so no timer is made per request
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.started = False  # a request's first byte came: its REQUEST_S runs, not IDLE_S

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.ready.set_result(None)
        # token chunks are small writes, which Nagle's algorithm would hold behind the client's delayed
        # ACK: asyncio and uvloop both set TCP_NODELAY on every accepted socket, for its life (a test
        # checks it), so it is not set again here
        if len(self.app.connections) >= MAX_CONNECTIONS:
            self._refuse(BadRequest(f"the router serves at most {MAX_CONNECTIONS} open connections: retry later", 503))
            return
        self.app.connections.add(self)
        self.deadline = self.loop.time() + IDLE_S
        self._arm(self.loop.time() + min(IDLE_S, REQUEST_S))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = True
        self.app.connections.discard(self)
        if self.linger is not None:
            self.linger.cancel()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ClientGone("the client closed the connection"))
        handler = self.handler
        if handler is not None and not handler._finished:
            try:
                handler.on_connection_close()
            except Exception:
                log.exception("on_connection_close failed")

    def pause_writing(self) -> None:
        if self.waiter is None or self.waiter.done():
            self.waiter = self.loop.create_future()
            # failed in connection_lost whether or not a flush awaits it: seen here, so that asyncio
            # does not log "Future exception was never retrieved"
            self.waiter.add_done_callback(_seen)

    def resume_writing(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        self.waiter = None

    def eof_received(self) -> bool:
        # a client that stops sending is gone (as tornado took it): a stream it asked for is stopped,
        # not generated for no one; what was written before still goes out before the close
        self.eof = True
        return False

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.started:
            self.started = True
            self.deadline = self.loop.time() + REQUEST_S
        self.buffer += data
        if self.phase == _ANSWER or self.processing:
            if len(self.buffer) > MAX_AHEAD_BYTES and not self.reading_paused and self.transport is not None:
                self.reading_paused = True
                self.transport.pause_reading()
            return
        self._process()

    # time limits

    def _arm(self, at: float) -> None:
        self.timer = self.loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.transport is None:
            return
        now = self.loop.time()
        if self.phase == _ANSWER:  # an answer in the making (or a close under way) has no limit
            self._arm(now + REQUEST_S)
        elif now < self.deadline:
            self._arm(min(self.deadline, now + REQUEST_S))
        elif self.started:
            self._refuse(BadRequest(f"the request did not arrive whole within {REQUEST_S:g} s", 408))
            self._arm(now + REQUEST_S)
        else:  # idle past IDLE_S: nothing to answer
            self._close(linger=False)

    # reading requests

    def _process(self) -> None:
        self.processing = True
        try:
            while not self.closing:
                if self.phase == _HEAD and not self._read_head():
                    return
                if self.phase == _BODY and not self._read_body():
                    return
                if self.phase == _ANSWER:
                    return
        finally:
            self.processing = False

    def _read_head(self) -> bool:
        """A request begun (True), or more bytes needed / the connection refused (False)."""
        buffer = self.buffer
        while buffer.startswith(b"\r\n"):  # blank lines between requests are allowed
            del buffer[:2]
        end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                self._refuse(BadRequest(f"request head over {MAX_HEAD_BYTES} bytes", 431))
            return False
        head = bytes(buffer[:end])
        del buffer[: end + 4]
        try:
            request = parse_head(head)
            self._frame(request.headers)
        except BadRequest as exc:
            self._refuse(exc)
            return False
        self.request, self.keep_alive = request, request.keep_alive
        self.body_done = self.done = False
        self.phase = _BODY
        expects_body = self.chunked_body or self.remaining > 0
        waits = expects_body and request.headers.get("expect", "").lower() == "100-continue"
        if waits:  # refused before its body: the client may or may not send it, so the connection ends
            self.keep_alive = False
        cls, kwargs, args = self.app.find(request.path)
        handler = self.handler = cls(self, request, self.app.settings, kwargs)
        self.args = args
        try:
            handler.prepare()
            served = request.method in METHODS and hasattr(handler, request.method.lower())
            if not handler._finished and not served:
                handler.write_error(405, f"{request.method} is not allowed on {request.path}")
        except Exception as exc:
            self._failed(handler, exc)
        if waits and not handler._finished and self.transport is not None:
            self.keep_alive = request.keep_alive
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return not self.closing

    def _frame(self, headers: Headers) -> None:
        """How the body is delimited, from the head."""
        coding, size = headers.get("transfer-encoding"), headers.get("content-length")
        self.chunked_body, self.remaining = False, 0
        if coding is not None:
            if size is not None:
                raise BadRequest("both Content-Length and Transfer-Encoding: send one of them")
            if coding.strip().lower() != "chunked":
                raise BadRequest(f"Transfer-Encoding {coding[:50]!r} is not served: send chunked or a Content-Length")
            self.chunked_body = True
        elif size is not None:
            if not size.isdigit() or not size.isascii():
                raise BadRequest(f"Content-Length {size[:50]!r} is not a number of bytes")
            self.remaining = int(size)

    def _read_body(self) -> bool:
        """The body read whole and the handler run (True), or more bytes needed (False)."""
        buffer, handler = self.buffer, self.handler
        assert handler is not None
        if self.chunked_body:
            try:
                pieces, last = unchunk(buffer)
            except ValueError as exc:
                self._refuse(BadRequest(f"malformed chunked body: {exc}"))
                return False
            if not last and len(buffer) > MAX_AHEAD_BYTES:
                self._refuse(BadRequest(f"a body chunk over {MAX_AHEAD_BYTES} bytes", 413))
                return False
        else:
            size = min(self.remaining, len(buffer))
            pieces, last = [bytes(buffer[:size])] if size else [], size == self.remaining
            del buffer[:size]
            self.remaining -= size
        if not handler._finished:
            try:
                for piece in pieces:
                    handler.data_received(piece)
            except Exception as exc:
                self._failed(handler, exc)
        if not last:
            return False
        self.body_done = True
        if self.done:  # answered before its body was read (refused in prepare)
            return self._next()
        self.phase = _ANSWER
        self._run(handler)
        return not self.closing

    def _run(self, handler: Handler) -> None:
        assert self.request is not None
        try:
            result = getattr(handler, self.request.method.lower())(*self.args)
        except Exception as exc:
            self._failed(handler, exc)
            return
        if asyncio.iscoroutine(result):
            self.loop.create_task(result).add_done_callback(lambda task: self._ran(handler, task))
        elif not handler._finished:
            handler.finish()

    def _ran(self, handler: Handler, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            exc: BaseException | None = ClientGone("cancelled")
        else:
            exc = task.exception()
        if exc is not None:
            self._failed(handler, exc)
        elif not handler._finished:
            handler.finish()

    def _failed(self, handler: Handler, exc: BaseException) -> None:
        """A handler that raised: a 500 when its head has not gone out, else the connection is cut
        (a client reading a stream must not take a broken one for a finished one).  One that raised
        after it finished is only logged: the connection may be on its next request by then."""
        if isinstance(exc, ClientGone) or self.transport is None:
            if not handler._finished:
                handler._finished = True
                self.answered(handler)
            return
        log.error("%s %s failed", handler.request.method, handler.request.path, exc_info=exc)
        if handler._finished:
            return
        if handler._headers_sent:
            handler._finished = True
            self.keep_alive = False
            self._close(linger=False)
            return
        handler._out, handler._headers = [], {}
        handler.write_error(500, f"the router failed on this request ({type(exc).__name__}); see its log")

    # answering

    def send(self, handler: Handler, last: bool) -> asyncio.Future[None]:
        data = b"".join(handler._out)
        handler._out = []
        transport = self.transport
        if transport is None or handler is not self.handler or transport.is_closing():
            if last:
                return self.ready
            raise ClientGone("the client closed the connection")
        if not handler._headers_sent:
            handler._headers_sent = True
            handler._bodyless = handler.request.method == "HEAD"  # its head says what GET's body would be
            status = handler._status
            lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
            lines += [f"{name}: {value}" for name, value in handler._headers.items()]
            if last:
                if status >= 200 and status not in (204, 304):
                    lines.append(f"Content-Length: {len(data)}")
            elif self.request is not None and self.request.version == "HTTP/1.1":
                handler._chunked = True
                lines.append("Transfer-Encoding: chunked")
            else:  # an HTTP/1.0 client reads a body of unknown length until the connection closes
                self.keep_alive = False
            if not self.keep_alive:
                lines.append("Connection: close")
            elif self.request is not None and self.request.version == "HTTP/1.0":
                lines.append("Connection: keep-alive")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            if handler._bodyless:
                data = head
            elif handler._chunked:
                data = head + (b"%x\r\n%b\r\n" % (len(data), data) if data else b"")
            else:
                data = head + data
            if last and handler._chunked and not handler._bodyless:
                data += b"0\r\n\r\n"
        elif handler._bodyless:
            data = b""
        elif handler._chunked:
            data = (b"%x\r\n%b\r\n" % (len(data), data) if data else b"") + (b"0\r\n\r\n" if last else b"")
        if data:
            transport.write(data)
        return self.waiter if self.waiter is not None else self.ready

    def answered(self, handler: Handler) -> None:
        if handler is not self.handler or self.done:
            return
        self.done = True
        if not self.keep_alive:
            self._close()
        elif self.body_done:
            self._next()
            if self.buffer and not self.processing:
                self.loop.call_soon(self._process)

    def _next(self) -> bool:
        """Ready for the next request on this connection (True)."""
        self.handler = self.request = None
        self.phase = _HEAD
        self.started = bool(self.buffer)  # a pipelined request already begun
        self.deadline = self.loop.time() + (REQUEST_S if self.started else IDLE_S)
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return True

    def _refuse(self, exc: BadRequest) -> None:
        """Answer a request this server cannot read, then close."""
        self.keep_alive = False
        handler = self.handler
        if handler is not None and handler._headers_sent:
            self._close()
            return
        if self.request is None:
            self.request = Request("GET", "/", "", "HTTP/1.1", Headers())
        handler = self.handler = _Refused(self, self.request, self.app.settings, {})
        self.done = False
        handler.write_error(exc.status, str(exc))

    def _close(self, linger: bool = True) -> None:
        """Close once what was written has gone; the client is given :data:`LINGER_S` to close first,
        so that the bytes it may still be sending do not reset the connection before it reads the answer."""
        if self.closing and self.transport is None:
            return
        self.closing = True
        self.phase = _ANSWER
        transport = self.transport
        if transport is None:
            return
        if linger and not self.eof and transport.can_write_eof():
            transport.write_eof()
            if self.reading_paused:
                transport.resume_reading()
            self.linger = self.loop.call_later(LINGER_S, transport.close)
        else:
            transport.close()


def _seen(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class Listener:
    """A listening socket being served; :meth:`stop` stops accepting (open connections finish)."""

    def __init__(self, app: Application, sock: socket.socket):
        self.app, self.sock = app, sock
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # listening before the loop runs (the runtime): served once it does
            loop = asyncio.get_event_loop()
        self.task = loop.create_task(loop.create_server(lambda: Connection(app), sock=sock))

    @property
    def connections(self) -> set[Connection]:
        return self.app.connections

    def stop(self) -> None:
        if self.task.done() and not self.task.cancelled() and self.task.exception() is None:
            self.task.result().close()
        else:
            self.task.cancel()
        self.sock.close()


class Application:
    """Routes (a path pattern matched whole, its handler class and the keyword arguments of its
    ``initialize``) and the settings every handler reads; ``error_body(status, message)`` is the JSON
    of this server's own refusals."""

    def __init__(
        self,
        routes: list[tuple[str, type[Handler], dict[str, Any]]],
        error_body: Callable[[int, str], dict[str, Any]] = _default_error,
        **settings: Any,
    ):
        self.routes = [(re.compile(pattern), cls, kwargs) for pattern, cls, kwargs in routes]
        self.error_body, self.settings = error_body, settings
        self.connections: set[Connection] = set()

    def find(self, path: str) -> tuple[type[Handler], dict[str, Any], list[str | None]]:
        for pattern, cls, kwargs in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                return cls, kwargs, [None if g is None else unquote(g) for g in match.groups()]
        return _Refused, {"status": 404, "message": f"no route {path[:200]!r} here"}, []

    def listen(self, port: int, address: str = "127.0.0.1", **ignored: Any) -> Listener:
        """Bind now (a taken port raises :class:`OSError` here, before any loop runs) and serve on the
        current event loop."""
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(where)
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return Listener(self, sock)
