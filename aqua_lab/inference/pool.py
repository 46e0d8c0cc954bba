"""A lean HTTP/1.1 client for plain-http hops on this machine: the router to its model servers,
and the chat handler to a local deployment's router.

Tornado's simple client opens a new connection per request and copies each body chunk through
several layers; on a 2-core machine that showed up as milliseconds of added time-to-first-token.
Here connections are kept alive and pooled per port, and a response body is handed over as the
server's own chunks arrive, so the router adds one read and one write per chunk.

Every call runs under its :class:`~.timeouts.Limits`: connecting, the answer's first byte (its headers
and first body chunk: a non-streamed answer arrives whole), each later chunk (idle) and the whole call;
passing one raises :class:`UpstreamTimeout` naming it, and the connection is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from .chunked import unchunk
from .timeouts import Limits

T = TypeVar("T")


class UpstreamClosed(ConnectionError):
    """The server closed the connection or died before the response was complete."""


class UpstreamTimeout(Exception):  # not an OSError: a silent server is not a closed connection
    """The server passed one of the call's limits (``limit``: connect_s, first_byte_s, idle_s, total_s)."""

    def __init__(self, limit: str, seconds: float):
        super().__init__(f"no answer within the {limit} limit of {seconds:g} s")
        self.limit = limit
        self.seconds = seconds


class Clock:
    """The deadlines of one call, kept by one timer for all its reads.  A timeout scope per read would
    put a timer on the loop and take it off again for every chunk; here a read only moves the deadline
    (a float), and the timer, when it fires, either finds the read waiting past its deadline and fails it
    (:meth:`asyncio.StreamReader.set_exception`: the connection is dropped after) or moves itself on."""

    __slots__ = ("limits", "total_at", "first_at", "_loop", "_timer", "_timer_at", "_reader", "_at", "_limit")

    def __init__(self, limits: Limits) -> None:
        self._loop = asyncio.get_running_loop()
        self.limits = limits
        self.total_at = self._loop.time() + limits.total_s
        self.first_at = 0.0  # the first byte's deadline, once the request is sent
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._reader: asyncio.StreamReader | None = None  # the one whose read waits now
        self._at, self._limit = 0.0, ""

    def sent(self) -> None:
        self.first_at = self._loop.time() + self.limits.first_byte_s

    def _deadline(self, limit: str) -> tuple[float, str]:
        at = self.first_at if limit == "first_byte_s" else self._loop.time() + getattr(self.limits, limit)
        return (self.total_at, "total_s") if at > self.total_at else (at, limit)

    async def connect(self, step: Awaitable[T]) -> T:
        """``step`` (opening a connection: no reader yet) under ``connect_s`` and the total."""
        at, limit = self._deadline("connect_s")
        scope = asyncio.timeout_at(at)
        try:
            async with scope:
                return await step
        except TimeoutError:
            if scope.expired():
                raise UpstreamTimeout(limit, getattr(self.limits, limit)) from None
            raise

    async def read(self, reader: asyncio.StreamReader, step: Awaitable[T], limit: str) -> T:
        """``step``, a read of ``reader``, under ``limit`` (``first_byte_s`` counts from :meth:`sent`)
        and under the total; passing it raises :class:`UpstreamTimeout` from the read."""
        self._at, self._limit = self._deadline(limit)
        if self._timer is None or self._timer_at > self._at:
            # armed no later than one idle span ahead, so that the reads after the first byte (each due
            # an idle span after it starts) never need it earlier: no timer is made per read
            self._arm(min(self._at, self._loop.time() + self.limits.idle_s))
        self._reader = reader
        try:
            return await step
        finally:
            self._reader = None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, at: float) -> None:
        self.stop()
        self._timer, self._timer_at = self._loop.call_at(at, self._fire), at

    def _fire(self) -> None:
        self._timer = None
        reader = self._reader
        if reader is None:
            return  # no read waits: the next one arms it again
        # the read's data may have come in this same loop pass, its task not yet resumed: failing the
        # reader then would leave the error on it for the next request on this (pooled) connection.
        # StreamReader has no public "is a read waiting"; its private ``_waiter`` is that future, set
        # while a read waits and cleared once data, EOF or an error woke it.  Such a read is looked at
        # again next pass: it has returned by then, or waits anew (readuntil short of its separator).
        if self._loop.time() < self._at or getattr(reader, "_waiter", True) is None:
            self._arm(self._at)
        else:
            reader.set_exception(UpstreamTimeout(self._limit, getattr(self.limits, self._limit)))


def _closed(exc: BaseException, before: str) -> UpstreamClosed:
    """Say what happened in words a user can act on: asyncio's own text ("0 bytes read on a total
    of undefined expected bytes") describes its buffer, not the server."""
    if isinstance(exc, UpstreamClosed):
        return exc
    if isinstance(exc, asyncio.IncompleteReadError):
        got = f" after {len(exc.partial)} bytes" if exc.partial else ""
        return UpstreamClosed(f"the server closed the connection{got} before {before}")
    if isinstance(exc, ConnectionResetError):
        return UpstreamClosed(f"the server reset the connection before {before}")
    if isinstance(exc, ValueError):
        return UpstreamClosed(f"the server sent a malformed response before {before}")
    return UpstreamClosed(f"{str(exc) or type(exc).__name__} before {before}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter
    _pool: UpstreamPool
    _key: tuple[str, int, bool]
    _clock: Clock
    _done: bool = field(default=False, init=False)
    #: the piece :meth:`chunks` handed over last was the body's end (a chunked or sized body)
    complete: bool = field(default=False, init=False)

    def buffered(self) -> bool:
        """Whether body bytes came with the headers (read, not yet handed over): a caller passing the
        answer on may then send its headers together with them."""
        return bool(self._reader._buffer)  # asyncio's StreamReader has no public peek

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked, sized or until close): each piece is what one read brought,
        so the server's chunks that arrived together are handed over together — one write downstream,
        not one per chunk."""
        reader, read = self._reader, self._clock.read
        limit = "first_byte_s"
        try:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                buffer, last = bytearray(), False
                while not last:
                    data = await read(reader, reader.read(65536), limit)
                    if not data:
                        raise asyncio.IncompleteReadError(bytes(buffer), None)
                    buffer += data
                    pieces, last = unchunk(buffer)
                    if pieces:
                        limit, self.complete = "idle_s", last
                        yield b"".join(pieces)
                if buffer:  # bytes past the body's end: the connection is in no state to reuse
                    self.headers["connection"] = "close"
            elif "content-length" in self.headers:
                left = int(self.headers["content-length"])
                while left:
                    data = await read(reader, reader.read(min(left, 65536)), limit)
                    if not data:
                        raise UpstreamClosed("connection closed before the whole body arrived")
                    left -= len(data)
                    limit, self.complete = "idle_s", not left
                    yield data
            else:
                while data := await read(reader, reader.read(65536), limit):
                    limit = "idle_s"
                    yield data
                self.close()
                return
        except UpstreamTimeout:
            self.close()
            raise
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self.close()
            raise _closed(exc, "the answer was complete") from None
        self._done = True
        self._clock.stop()
        if self.headers.get("connection", "").lower() == "close":
            self.close()
        else:
            self._pool.release(self._key, self._reader, self._writer)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._clock.stop()
            self._writer.close()


# llama-server (cpp-httplib) and vLLM (uvicorn) close a connection idle for 5 s; give ours up a little earlier
MAX_IDLE_S = 4.0


class UpstreamPool:
    def __init__(self, max_idle_per_port: int = 16):
        self._idle: dict[tuple[str, int, bool], list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self.max_idle = max_idle_per_port

    def release(self, key: tuple[str, int, bool], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle = self._idle.setdefault(key, [])
        # a reader holding an error (a late timeout) would raise it into the next request on it
        if len(idle) < self.max_idle and not writer.is_closing() and reader.exception() is None:
            idle.append((time.monotonic(), reader, writer))
        else:
            writer.close()

    def _take(self, key: tuple[str, int, bool]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        idle = self._idle.get(key, [])
        while idle:
            since, reader, writer = idle.pop()
            fresh = time.monotonic() - since < MAX_IDLE_S and reader.exception() is None
            if fresh and not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    def forget(self, port: int, host: str = "127.0.0.1", tls: bool = False) -> None:
        """Drop idle connections to a server that died (its replacement may get the same port)."""
        for _, _, writer in self._idle.pop((host, port, tls), []):
            writer.close()

    async def post(
        self,
        port: int,
        path: str,
        body: bytes,
        accept: str = "*/*",
        host: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
        tls: bool = False,
        limits: Limits | None = None,
        method: str = "POST",
    ) -> Response:
        """POST (or ``method``) ``body``; ``headers`` override the defaults (a signed request brings its own Host,
        Content-Type and Content-Length, which must go out exactly as signed).  ``limits``: the
        call's time limits (default: :meth:`Limits.defaults`); passing one raises :class:`UpstreamTimeout`."""
        clock = Clock(limits or Limits.defaults())
        fields = {
            "host": f"{host}:{port}",
            "content-type": "application/json",
            "accept": accept,
            "content-length": str(len(body)),
            "connection": "keep-alive",
        }
        fields.update({k.lower(): v for k, v in (headers or {}).items()})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        head = head.encode("latin-1") + body
        key = (host, port, tls)
        for attempt in (1, 2):
            kept = self._take(key) if attempt == 1 else None
            reader, writer = kept or await clock.connect(asyncio.open_connection(host, port, ssl=True if tls else None))
            try:
                writer.write(head)
                clock.sent()
                raw = await clock.read(reader, reader.readuntil(b"\r\n\r\n"), "first_byte_s")
            except UpstreamTimeout:
                clock.stop()
                writer.close()
                raise
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                if kept is not None:
                    self.forget(port, host, tls)  # the server dropped kept-alive connections: start afresh
                    continue
                clock.stop()
                raise _closed(exc, "answering") from None
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            received = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    received[name.strip().lower()] = value.strip()
            return Response(status, received, reader, writer, self, key, clock)
        raise AssertionError("unreachable")
