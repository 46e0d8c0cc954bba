"""The router's upstream client: keep-alive reuse, stale connections, chunked pass-through, time limits."""

from __future__ import annotations

import asyncio
import time

import pytest
from tornado import httpserver, web

from aqua_lab.inference import pool as upstream
from aqua_lab.inference.pool import UpstreamClosed, UpstreamPool, UpstreamTimeout
from aqua_lab.inference.timeouts import Limits
from aqua_lab.platforms.local.runtime import free_port

pytestmark = pytest.mark.inference


class Stream(web.RequestHandler):
    async def post(self):
        self.set_header("Content-Type", "text/event-stream")
        for i in range(3):
            self.write(f"data: {i}\n\n")
            await self.flush()
            await asyncio.sleep(0.02)  # apart, as a model's tokens come
        if self.get_argument("die", None):
            self.request.connection.stream.close()
            return
        self.write("data: [DONE]\n\n")


async def _server(idle_timeout: float) -> int:
    port = free_port()
    server = httpserver.HTTPServer(web.Application([(r"/s", Stream)]), idle_connection_timeout=idle_timeout)
    server.listen(port, "127.0.0.1")
    return port


async def _body(pool: UpstreamPool, port: int, path: str = "/s") -> list[bytes]:
    response = await pool.post(port, path, b"{}")
    assert response.status == 200
    return [chunk async for chunk in response.chunks()]


def test_chunks_arrive_as_sent_and_the_connection_is_reused():
    async def run():
        port = await _server(idle_timeout=30)
        pool = UpstreamPool()
        first = await _body(pool, port)
        assert b"".join(first) == b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
        assert len(first) >= 3  # handed over as they come, not buffered into one piece
        kept = pool._idle[("127.0.0.1", port, False)][0][2]
        await _body(pool, port)
        assert pool._idle[("127.0.0.1", port, False)][0][2] is kept

    asyncio.run(run())


def test_a_connection_the_server_closed_while_idle_is_replaced(monkeypatch):
    monkeypatch.setattr(upstream, "MAX_IDLE_S", 60)  # pretend we did not know the server's timeout

    async def run():
        port = await _server(idle_timeout=0.2)
        pool = UpstreamPool()
        await _body(pool, port)
        await asyncio.sleep(0.6)
        assert b"[DONE]" in b"".join(await _body(pool, port))

    asyncio.run(run())


def test_a_server_dying_mid_body_raises_upstream_closed():
    async def run():
        port = await _server(idle_timeout=30)
        pool = UpstreamPool()
        response = await pool.post(port, "/s?die=1", b"{}")
        got = []
        with pytest.raises(UpstreamClosed):
            async for chunk in response.chunks():
                got.append(chunk)
        assert b"data: 0" in b"".join(got)

    asyncio.run(run())


def test_chunks_that_arrive_together_are_handed_over_together_whatever_the_reads_cut():
    # one write downstream for the chunks one read brought (a model's role and first-token chunks
    # come back to back); a chunk split across reads, and trailers, arrive whole
    body = b"6\r\ndata: \r\n3\r\nab\n\r\n0\r\nx-trailer: 1\r\n\r\n"

    async def run(split: int | None) -> list[bytes]:
        pieces = [body] if split is None else [body[i : i + split] for i in range(0, len(body), split)]
        port = await _silent_after(CHUNKED, pieces, 0.0 if split is None else 0.01)
        pool = UpstreamPool()
        response = await pool.post(port, "/s", b"{}")
        got = [chunk async for chunk in response.chunks()]
        assert pool._idle[("127.0.0.1", port, False)], "a complete body leaves its connection for reuse"
        return got

    assert asyncio.run(run(None)) == [b"data: ab\n"]
    assert b"".join(asyncio.run(run(1))) == b"data: ab\n"


@pytest.mark.parametrize(
    "garbage",
    [b"zz\r\nhello\r\n", b"-2\r\n\r\nhello", b"5\r\nhelloXX"]
    # sizes int(..., 16) would take, which a proxy in front may read otherwise (request smuggling)
    + [size + b"\r\nhello\r\n0\r\n\r\n" for size in (b"0x5", b"+5", b"0_5", b" 5", b"5 ")],
)
def test_a_malformed_chunked_body_is_a_closed_upstream_not_a_crash(garbage):
    async def run() -> None:
        port = await _silent_after(CHUNKED, [garbage])
        response = await UpstreamPool().post(port, "/s", b"{}", limits=Limits(5, 5, 5, 5))
        with pytest.raises(UpstreamClosed, match="malformed response"):
            async for _ in response.chunks():
                pass

    asyncio.run(run())


# time limits ---------------------------------------------------------------------------------------


async def _silent_after(head: bytes, pieces: list[bytes], every_s: float = 0.0) -> int:
    """A server that reads a request, writes ``head`` and ``pieces`` (``every_s`` apart), then stays
    silent with the connection open."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        for piece in pieces:
            await asyncio.sleep(every_s)
            writer.write(piece)
            await writer.drain()
        await asyncio.sleep(30)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1]


CHUNKED = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "pieces", "every_s", "limits", "passed"),
    [
        (b"", [], 0.0, Limits(5, 0.3, 5, 30), "first_byte_s"),  # accepts, never answers
        (CHUNKED, [], 0.0, Limits(5, 0.3, 5, 30), "first_byte_s"),  # headers, then no first chunk
        (CHUNKED, [b"5\r\ndata:\r\n"], 0.0, Limits(5, 5, 0.3, 30), "idle_s"),  # one chunk, then silence
        (CHUNKED, [b"1\r\nx\r\n"] * 40, 0.1, Limits(5, 5, 1, 0.6), "total_s"),  # a trickle past the total
    ],
)
def test_a_silent_server_ends_the_call_at_the_limit_it_passed(head, pieces, every_s, limits, passed):
    async def run():
        port = await _silent_after(head, pieces, every_s)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            response = await UpstreamPool().post(port, "/s", b"{}", limits=limits)
            async for _ in response.chunks():
                pass
        return caught.value, time.monotonic() - started

    error, took = asyncio.run(run())
    assert error.limit == passed and error.seconds == getattr(limits, passed)
    assert took < getattr(limits, passed) + 0.5, took


SIZED = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


def test_a_timeout_due_as_the_last_read_gets_its_data_does_not_poison_the_pooled_connection(monkeypatch):
    """The body's end and the one timer at its deadline in the same loop pass: the read has its data,
    so the call succeeds, and the connection it goes back to the pool on answers the next request."""
    clocks: list[upstream.Clock] = []
    read, feed = upstream.Clock.read, asyncio.StreamReader.feed_data

    def noted(self, reader, step, limit):
        clocks.append(self)
        return read(self, reader, step, limit)

    def feed_then_fire(reader, data):
        feed(reader, data)
        clock = clocks[-1] if clocks else None
        if clock is not None and clock._reader is reader and not data.startswith(b"HTTP/"):
            clock._at = clock._loop.time()  # the timer's callback, due now, before the read resumes
            clock._fire()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            writer.write(SIZED)
            await writer.drain()
            await asyncio.sleep(0.05)  # the body in a read of its own
            writer.write(b"{}")
            await writer.drain()

    async def run():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setattr(upstream.Clock, "read", noted)
        monkeypatch.setattr(asyncio.StreamReader, "feed_data", feed_then_fire)
        pool = UpstreamPool()
        first = await _body(pool, port)
        kept = pool._idle[("127.0.0.1", port, False)][0][2]
        second = await _body(pool, port)  # on the same connection: it was healthy
        return first, second, pool._idle[("127.0.0.1", port, False)][0][2] is kept

    assert asyncio.run(run()) == ([b"{}"], [b"{}"], True)


def test_a_connection_whose_reader_holds_an_error_is_neither_pooled_nor_taken():
    async def run():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool, key = UpstreamPool(), ("127.0.0.1", port, False)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.set_exception(UpstreamTimeout("idle_s", 1))
        pool.release(key, reader, writer)
        released = len(pool._idle.get(key, []))
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
        pool.release(key, reader2, writer2)
        reader2.set_exception(UpstreamTimeout("idle_s", 1))  # failed while idle in the pool
        return released, pool._take(key), writer.is_closing() and writer2.is_closing()

    assert asyncio.run(run()) == (0, None, True)
