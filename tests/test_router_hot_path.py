"""The router's hot path stays cheap without dropping a check: one timer per upstream call (not one per
chunk), the body checked and encoded once (the bytes sent are the bytes checked), the stream parser's
events carrying their exact bytes however a stream is cut."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from aqua_lab.inference.pool import UpstreamPool, UpstreamTimeout
from aqua_lab.inference.protocol import RequestProblem, check_engine_body, engine_payload
from aqua_lab.inference.sse import SSEParser
from aqua_lab.inference.timeouts import Limits
from aqua_lab.platforms.local.http1 import Application, Handler
from aqua_lab.platforms.local.ports import free_port

pytestmark = pytest.mark.inference

CHUNKS = 40


async def _streaming(pieces: int, then_silent: bool) -> int:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(pieces):
            data = f"data: {i}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            await asyncio.sleep(0.002)  # apart: each is a read of its own
        if then_silent:
            await asyncio.sleep(30)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1]


def test_a_streamed_call_sets_one_timer_not_one_per_chunk(monkeypatch):
    async def run():
        port = await _streaming(CHUNKS, then_silent=False)
        loop = asyncio.get_running_loop()
        timers = []
        call_at = loop.call_at

        def counted(when, callback, *args, **kwargs):
            if callback.__name__ != "_set_result_unless_cancelled":  # not the test server's own sleeps
                timers.append(callback)
            return call_at(when, callback, *args, **kwargs)

        monkeypatch.setattr(loop, "call_at", counted)
        response = await UpstreamPool().post(port, "/s", b"{}", limits=Limits(5, 5, 5, 30))
        reads = [chunk async for chunk in response.chunks()]
        return reads, timers

    reads, timers = asyncio.run(run())
    assert b"".join(reads).count(b"data: ") == CHUNKS and len(reads) > CHUNKS // 2
    assert len(timers) <= 2, f"{len(timers)} timers for {len(reads)} reads"


def test_the_one_timer_still_ends_a_stream_that_falls_silent_at_its_idle_limit():
    async def run():
        port = await _streaming(5, then_silent=True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(UpstreamTimeout) as caught:
            response = await UpstreamPool().post(port, "/s", b"{}", limits=Limits(5, 5, 0.3, 30))
            async for _ in response.chunks():
                pass
        return caught.value, loop.time() - started

    error, took = asyncio.run(run())
    assert (error.limit, error.seconds) == ("idle_s", 0.3)
    assert "no answer within the idle_s limit of 0.3 s" in str(error)
    assert took < 0.3 + 5 * 0.002 + 0.5, took


CHAT = {"model": "m", "messages": [{"role": "user", "content": "é中😀"}], "stream": True, "max_tokens": 4}


def test_the_bytes_sent_are_the_body_checked_with_what_the_router_sets():
    body = dict(CHAT, model="client-name")
    payload = engine_payload(body, "/v1/chat/completions", 4096, {"model": "m", "lora": [{"id": 0, "scale": 1.0}]})
    assert json.loads(payload) == {**CHAT, "lora": [{"id": 0, "scale": 1.0}]}
    assert "é中😀".encode() in payload  # UTF-8 as the engine reads it, not \\u escapes
    assert check_engine_body(dict(CHAT), "/v1/chat/completions") == CHAT  # the other face: unchanged


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**CHAT, "messages": [{"role": "user", "content": "\ud800"}]}, "lone UTF-16 surrogate"),
        ({**CHAT, "temperature": 50}, "temperature 50 must be between 0 and 2"),
        ({**CHAT, "messages": [{"role": "user", "content": "x" * 20000}]}, "longer than this model's context of 100"),
    ],
)
def test_one_encode_keeps_every_refusal(body, message):
    for check in (
        lambda: engine_payload(dict(body), "/v1/chat/completions", 100, {"model": "m"}),
        lambda: check_engine_body(dict(body), "/v1/chat/completions", 100),
    ):
        with pytest.raises(RequestProblem) as caught:
            check()
        assert message in caught.value.message


def test_each_event_keeps_its_exact_bytes_however_the_stream_is_cut():
    stream = (
        b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n: keep-alive\n\n'
        + 'data: {"choices":[{"delta":{"content":"é中😀"}}]}\r\n\r\n'.encode()
        + b"event: error\ndata: one\ndata: two\n\ndata: [DONE]\n\n"
    )
    whole = SSEParser().feed(stream)
    assert [e.data for e in whole][-1] == "[DONE]" and b"".join(e.raw for e in whole) == stream
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 12)))
        parser, events = SSEParser(), []
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            events += parser.feed(stream[a:b])
        assert events == whole and [e.raw for e in events] == [e.raw for e in whole]


def test_a_kept_alive_client_connection_keeps_one_timer_for_its_limits_not_one_per_request(monkeypatch):
    class Ok(Handler):
        def get(self) -> None:
            self.finish(b"ok")

    async def run():
        loop = asyncio.get_running_loop()
        timers = []
        call_at = loop.call_at

        def counted(when, callback, *args, **kwargs):
            timers.append(callback)
            return call_at(when, callback, *args, **kwargs)

        monkeypatch.setattr(loop, "call_at", counted)
        port = free_port()
        listener = Application([("/ok", Ok, {})]).listen(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(CHUNKS):
            writer.write(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        writer.close()
        listener.stop()
        return [t for t in timers if getattr(t, "__name__", "") == "_tick"]

    assert len(asyncio.run(run())) == 1  # the connection's own, armed once
