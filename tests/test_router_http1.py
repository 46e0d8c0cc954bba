"""The router's own HTTP/1.1 server (issue 30: tornado's server cost the first token ~0.7 ms a hop):
what clients send on loopback is answered as HTTP/1.1 says, and no request can take the server down."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from aqua_lab.platforms.local import http1
from aqua_lab.platforms.local import router as router_module
from aqua_lab.platforms.local.http1 import MAX_HEAD_BYTES, Application, ClientGone, Handler
from aqua_lab.platforms.local.ports import free_port
from aqua_lab.platforms.local.router import MAX_BODY_BYTES, make_router, use_fast_loop
from tests.test_router_sends import StandIn, _supervisor

pytestmark = [pytest.mark.local, pytest.mark.inference]

CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()


class SlowStandIn(web.RequestHandler):
    """A model server that streams a token every 20 ms for seconds, and notes when its client hangs up."""

    closed: asyncio.Event

    async def post(self, *_):
        self.set_header("Content-Type", "text/event-stream")
        for _ in range(250):
            self.write('data: {"choices":[{"delta":{"content":"t"}}]}\n\n')
            await self.flush()
            await asyncio.sleep(0.02)
        self.write("data: [DONE]\n\n")

    def on_connection_close(self):
        SlowStandIn.closed.set()


def head(method: str, path: str, port: int, *extra: str, version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", f"Host: 127.0.0.1:{port}", "Authorization: Bearer k", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(port: int, body: bytes = CHAT, *extra: str) -> bytes:
    return head("POST", "/v1/chat/completions", port, "Content-Type: application/json",
                f"Content-Length: {len(body)}", *extra) + body  # fmt: skip


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One answer's status, headers (lower-case names) and body, however it is delimited."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if status == 100:
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readexactly(2)
        return status, headers, body
    return status, headers, await reader.read()


def served(tmp_path: Path, scenario: Callable[..., Awaitable[Any]], upstream: type = StandIn) -> Any:
    """Run ``scenario(port, open)`` against a router in front of a stand-in model server."""
    upstream_port, router_port = free_port(), free_port()

    async def run():
        model_server = web.Application([(r"/v1/(.*)", upstream)]).listen(upstream_port, address="127.0.0.1")
        router = make_router(_supervisor(tmp_path, upstream_port), metrics=True).listen(router_port, "127.0.0.1")
        writers = []

        async def connect():
            reader, writer = await asyncio.open_connection("127.0.0.1", router_port)
            writers.append(writer)
            return reader, writer

        try:
            return await asyncio.wait_for(scenario(router_port, connect), 30)
        finally:
            for writer in writers:
                writer.close()
            router.stop()
            model_server.stop()

    return asyncio.run(run())


def test_a_kept_alive_connection_answers_pipelined_requests_in_order(tmp_path):
    async def scenario(port, connect):
        reader, writer = await connect()
        writer.write(head("GET", "/v1/models", port) + post(port) + head("GET", "/health", port))
        got = [await answer(reader) for _ in range(3)]
        writer.write(head("GET", "/metrics/recent?window=60", port))  # the same connection, still open
        got.append(await answer(reader))
        return got

    (models, chat, health, recent) = served(tmp_path, scenario)
    assert models[0] == 200 and json.loads(models[2])["data"][0]["id"] == "m"
    assert chat[0] == 200 and json.loads(chat[2])["choices"][0]["message"]["content"] == "hé"
    assert health[0] == 200 and json.loads(health[2])["status"] == "healthy"
    assert recent[0] == 200 and "m" in json.dumps(json.loads(recent[2]))


def test_a_chunked_body_and_expect_100_continue_are_read(tmp_path):
    async def scenario(port, connect):
        reader, writer = await connect()
        chunked = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in (CHAT[:5], CHAT[5:20], CHAT[20:]))
        writer.write(
            head("POST", "/v1/chat/completions", port, "Content-Type: application/json", "Transfer-Encoding: chunked")
            + chunked
            + b"0\r\n\r\n"
        )
        first = await answer(reader)
        writer.write(post(port, CHAT, "Expect: 100-continue")[: -len(CHAT)])  # the head alone, first
        go_on = await answer(reader)
        writer.write(CHAT)
        second = await answer(reader)
        return first, go_on, second

    first, go_on, second = served(tmp_path, scenario)
    assert first[0] == 200 and json.loads(first[2])["choices"][0]["message"]["content"] == "hé"
    assert go_on[0] == 100  # curl sends bodies over 1 KiB only after this
    assert second[0] == 200


def test_oversized_bodies_are_413_by_their_length_or_as_they_arrive_and_the_connection_goes_on(tmp_path):
    big = b'{"model": "m", "prompt": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'

    async def scenario(port, connect):
        reader, writer = await connect()
        writer.write(post(port, big))  # read to its end and dropped: the connection stays usable
        by_length = await answer(reader)
        piece = 64 * 1024
        writer.write(
            head("POST", "/v1/completions", port, "Content-Type: application/json", "Transfer-Encoding: chunked")
            + b"".join(
                b"%x\r\n%b\r\n" % (len(big[i : i + piece]), big[i : i + piece]) for i in range(0, len(big), piece)
            )
            + b"0\r\n\r\n"
        )
        by_chunks = await answer(reader)
        writer.write(head("GET", "/v1/models", port))
        after = await answer(reader)
        # announced with Expect: refused before the client sends it, and the connection closes
        reader2, writer2 = await connect()
        writer2.write(post(port, big, "Expect: 100-continue")[: -len(big)])
        expected = await answer(reader2)
        return by_length, by_chunks, after, expected, await reader2.read()

    by_length, by_chunks, after, expected, rest = served(tmp_path, scenario)
    for status, _, body in (by_length, by_chunks, expected):
        assert status == 413
        assert f"over the limit of {MAX_BODY_BYTES} bytes" in json.loads(body)["error"]["message"]
    assert after[0] == 200
    assert expected[1].get("connection") == "close" and rest == b""


def test_malformed_requests_are_answered_400_431_404_405_and_the_server_keeps_serving(tmp_path):
    async def one(connect, raw: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
        reader, writer = await connect()
        writer.write(raw)
        status, headers, body = await answer(reader)
        return status, headers, body, await reader.read() if headers.get("connection") == "close" else b""

    async def scenario(port, connect):
        return {
            "line": await one(connect, b"GARBAGE\r\n\r\n"),
            "header": await one(connect, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n"),
            "length": await one(connect, head("POST", "/v1/completions", port, "Content-Length: ten")),
            "version": await one(connect, b"GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n"),
            "huge": await one(connect, head("GET", "/health", port, "X-Big: " + "a" * (MAX_HEAD_BYTES + 10))),
            "path": await one(connect, head("GET", "/v2/nothing", port)),
            "method": await one(connect, head("DELETE", "/v1/models", port)),
            "after": await one(connect, head("GET", "/health", port)),
        }

    got = served(tmp_path, scenario)
    for name in ("line", "header", "length"):
        status, headers, body, rest = got[name]
        assert (status, headers["connection"], rest) == (400, "close", b""), name
        assert json.loads(body)["error"]["message"]
    assert "malformed request line" in json.loads(got["line"][2])["error"]["message"]
    assert "Content-Length 'ten'" in json.loads(got["length"][2])["error"]["message"]
    assert got["version"][0] == 505
    assert got["huge"][0] == 431 and f"over {MAX_HEAD_BYTES} bytes" in got["huge"][2].decode()
    assert got["path"][0] == 404 and "'/v2/nothing'" in json.loads(got["path"][2])["error"]["message"]
    assert got["method"][0] == 405 and "DELETE is not allowed" in got["method"][2].decode()
    assert got["after"][0] == 200


def test_http_1_0_is_answered_and_closed_unless_it_asks_to_keep_alive(tmp_path):
    async def scenario(port, connect):
        reader, writer = await connect()
        writer.write(head("GET", "/health", port, version="HTTP/1.0"))
        closed = await answer(reader), await reader.read()
        reader, writer = await connect()
        writer.write(head("GET", "/health", port, "Connection: keep-alive", version="HTTP/1.0"))
        kept = await answer(reader)
        body = json.dumps({"model": "m", "prompt": "hi", "stream": True}).encode()
        writer.write(
            head("POST", "/v1/completions", port, "Content-Type: application/json",
                 f"Content-Length: {len(body)}", "Connection: keep-alive", version="HTTP/1.0")
            + body
        )  # fmt: skip
        streamed = await answer(reader)  # no chunked coding for HTTP/1.0: the body ends with the connection
        return closed, kept, streamed

    (closed, rest), kept, streamed = served(tmp_path, scenario)
    assert closed[0] == 200 and closed[1]["connection"] == "close" and rest == b""
    assert kept[0] == 200 and kept[1]["connection"] == "keep-alive"
    assert "transfer-encoding" not in streamed[1] and b"data: [DONE]" in streamed[2]


def test_a_client_gone_mid_stream_closes_the_upstream_request(tmp_path):
    async def scenario(port, connect):
        SlowStandIn.closed = asyncio.Event()
        reader, writer = await connect()
        writer.write(post(port, json.dumps({**json.loads(CHAT), "stream": True}).encode()))
        await reader.readuntil(b"data: ")
        writer.close()
        await asyncio.wait_for(SlowStandIn.closed.wait(), 3)  # not the 5 s the whole answer takes
        return True

    assert served(tmp_path, scenario, SlowStandIn)


def test_a_handler_that_fails_is_a_500_and_the_server_goes_on(tmp_path, monkeypatch, caplog):
    def broken(self):
        raise KeyError("boom")

    monkeypatch.setattr(router_module.Models, "get", broken)

    async def scenario(port, connect):
        reader, writer = await connect()
        writer.write(head("GET", "/v1/models", port))
        failed = await answer(reader)
        reader, writer = await connect()
        writer.write(head("GET", "/health", port))
        return failed, await answer(reader)

    failed, after = served(tmp_path, scenario)
    assert failed[0] == 500 and "KeyError" in json.loads(failed[2])["error"]["message"]
    assert after[0] == 200
    assert "GET /v1/models failed" in caplog.text


def test_the_router_binds_before_its_loop_runs_and_keeps_nagle_off_on_uvloop(tmp_path):
    uvloop = pytest.importorskip("uvloop")
    upstream_port = free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        app = make_router(_supervisor(tmp_path, upstream_port), metrics=False)
        with pytest.raises(OSError):  # a taken port fails at once, as the runtime expects
            app.listen(taken.getsockname()[1], address="127.0.0.1")
        port = free_port()
        listener = app.listen(port, address="127.0.0.1")  # no loop running yet (the runtime's order)

        async def scenario():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head("GET", "/health", port))
            status = (await answer(reader))[0]
            (connection,) = listener.connections
            sock = connection.transport.get_extra_info("socket")
            writer.close()
            return status, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

        status, nodelay = loop.run_until_complete(scenario())
        listener.stop()
    finally:
        taken.close()
        asyncio.set_event_loop(None)
        loop.close()
    assert status == 200 and nodelay != 0


def test_a_flush_waits_while_the_client_does_not_read_and_raises_once_it_has_gone():
    seen: dict[str, Any] = {"waited": 0}
    gone = asyncio.Event()

    class Big(Handler):
        async def get(self):
            self.set_header("Content-Type", "application/octet-stream")
            for _ in range(64):  # 16 MiB: more than loopback's socket buffers hold
                self.write(b"x" * (256 * 1024))
                sent = self.flush()
                seen["waited"] += not sent.done()
                await sent
            await gone.wait()
            try:
                self.write(b"late")
                await self.flush()
            except ClientGone:
                seen["raised"] = True

    async def scenario():
        port = free_port()
        listener = Application([("/big", Big, {})]).listen(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("GET", "/big", port))
        await asyncio.sleep(0.3)  # not reading: the server must wait, not buffer 16 MiB
        waited = seen["waited"]
        status, _, body = await answer_head_and(reader, 64 * 256 * 1024)
        writer.close()
        await asyncio.sleep(0.1)
        gone.set()
        await asyncio.sleep(0.1)
        listener.stop()
        return waited, status, len(body)

    waited, status, size = asyncio.run(scenario())
    assert waited >= 1 and status == 200 and size == 64 * 256 * 1024
    assert seen.get("raised") is True


async def answer_head_and(reader: asyncio.StreamReader, size: int) -> tuple[int, dict[str, str], bytes]:
    """A chunked answer's status and its first ``size`` body bytes (the answer is not over yet)."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    body = b""
    while len(body) < size:
        chunk = int((await reader.readuntil(b"\r\n")).strip(), 16)
        body += (await reader.readexactly(chunk + 2))[:-2]
    return int(lines[0].split()[1]), {}, body


class Trickle(Handler):
    """Streams for 1.6 s: longer than the small limits the tests below set."""

    async def get(self):
        for _ in range(16):
            self.write(b"t")
            await self.flush()
            await asyncio.sleep(0.1)

    def head(self):
        self.write(b"the body GET would have")


def bare(scenario: Callable[..., Awaitable[Any]]) -> Any:
    """Run ``scenario(port)`` against this server alone, with a streaming route at /trickle."""

    async def run():
        port = free_port()
        listener = Application([("/trickle", Trickle, {})]).listen(port)
        try:
            return await asyncio.wait_for(scenario(port), 15)
        finally:
            listener.stop()

    return asyncio.run(run())


def test_a_half_sent_request_is_a_408_an_idle_connection_closes_and_a_long_stream_is_not_cut(monkeypatch):
    monkeypatch.setattr(http1, "REQUEST_S", 0.3)
    monkeypatch.setattr(http1, "IDLE_S", 1.0)  # 0.8 s above the idle wait below: a stall is not a close

    async def timed(reader: asyncio.StreamReader) -> tuple[tuple[int, dict[str, str], bytes], bytes, float]:
        started = asyncio.get_running_loop().time()
        got = await answer(reader)
        return got, await reader.read(), asyncio.get_running_loop().time() - started

    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /trickle HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a head, then nothing
        half_head = await timed(reader)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("GET", "/trickle", port, "Content-Length: 10") + b"abc")  # 3 bytes of 10
        half_body = await timed(reader)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("GET", "/trickle", port))
        stream = await answer(reader)  # 1.6 s: past both limits
        await asyncio.sleep(0.2)  # idle, but under IDLE_S
        writer.write(head("GET", "/trickle", port))
        again = await answer(reader)
        started = asyncio.get_running_loop().time()
        closed = await reader.read()  # idle past IDLE_S
        return half_head, half_body, stream, again, closed, asyncio.get_running_loop().time() - started

    half_head, half_body, stream, again, closed, idle_for = bare(scenario)
    for (status, headers, body), rest, took in (half_head, half_body):
        assert (status, headers["connection"], rest) == (408, "close", b"")
        assert "did not arrive whole within 0.3 s" in json.loads(body)["error"]["message"]
        assert 0.25 < took < 2.5, took
    assert stream == again and stream[0] == 200 and stream[2] == b"t" * 16
    assert closed == b"" and 0.9 < idle_for < 3.5, idle_for


def test_past_the_open_connection_cap_a_new_connection_is_a_503_and_closed(monkeypatch):
    monkeypatch.setattr(http1, "MAX_CONNECTIONS", 2)

    async def scenario(port):
        kept = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head("HEAD", "/trickle", port))
            kept.append((reader, writer, (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("GET", "/trickle", port))
        refused = await answer(reader), await reader.read()
        kept[0][1].close()
        await asyncio.sleep(0.2)  # its place is free again
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("HEAD", "/trickle", port))
        after = await reader.readuntil(b"\r\n\r\n")
        return [status for *_, status in kept], refused, after

    served_first, ((status, headers, body), rest), after = bare(scenario)
    assert served_first == [b"200", b"200"]
    assert (status, headers["connection"], rest) == (503, "close", b"")
    assert "at most 2 open connections" in json.loads(body)["error"]["message"]
    assert after.startswith(b"HTTP/1.1 200")


def test_a_head_request_is_answered_with_a_head_alone_and_the_connection_stays_in_step(tmp_path):
    async def scenario(port, connect):
        reader, writer = await connect()
        writer.write(head("HEAD", "/v1/models", port) + head("GET", "/health", port))
        refused = await reader.readuntil(b"\r\n\r\n")  # a 405: no body may follow its head
        after = await answer(reader)
        return refused, after

    refused, after = served(tmp_path, scenario)
    assert refused.startswith(b"HTTP/1.1 405") and b"Content-Length: " in refused
    assert after[0] == 200 and json.loads(after[2])["status"] == "healthy"

    async def defined(port):  # a route that serves HEAD: its head keeps the body's length
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("HEAD", "/trickle", port) + head("HEAD", "/trickle", port))
        return await reader.readuntil(b"\r\n\r\n"), await reader.readuntil(b"\r\n\r\n")

    first, second = bare(defined)
    assert first == second and b"Content-Length: 23\r\n" in first and first.startswith(b"HTTP/1.1 200")


def test_a_method_name_reaches_only_the_methods_served(tmp_path):
    async def scenario(port, connect):
        reader, writer = await connect()
        got = []
        for method, path in (("RESOLVE", "/models/m/health"), ("SET_STATUS", "/health"), ("PUT", "/health")):
            writer.write(head(method, path, port))
            got.append(await answer(reader))
        writer.write(head("GET", "/health", port))
        got.append(await answer(reader))
        return got

    *refused, after = served(tmp_path, scenario)
    for (status, _, body), method in zip(refused, ("RESOLVE", "SET_STATUS", "PUT"), strict=True):
        assert status == 405 and f"{method} is not allowed" in json.loads(body)["error"]["message"]
    assert after[0] == 200


@pytest.mark.parametrize("size", ["0x%x", "+%x", "0_%x", " %x"])
def test_a_chunk_size_that_is_not_bare_hex_is_a_400(tmp_path, size):
    async def scenario(port, connect):
        reader, writer = await connect()
        writer.write(
            head("POST", "/v1/chat/completions", port, "Content-Type: application/json", "Transfer-Encoding: chunked")
            + (size % len(CHAT)).encode() + b"\r\n" + CHAT + b"\r\n0\r\n\r\n"
        )  # fmt: skip
        return await answer(reader), await reader.read()

    (status, headers, body), rest = served(tmp_path, scenario)
    assert (status, headers["connection"], rest) == (400, "close", b"")
    assert "malformed chunked body: chunk size line" in json.loads(body)["error"]["message"]


def test_a_handler_that_raises_after_finishing_is_logged_and_the_connection_goes_on(caplog):
    class Finished(Handler):
        def get(self):
            self.finish({"ok": True})
            raise KeyError("after the answer")

    async def scenario():
        port = free_port()
        listener = Application([("/done", Finished, {})]).listen(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("GET", "/done", port))
        first = await answer(reader)
        writer.write(head("GET", "/done", port))  # the same connection: still served
        second = await asyncio.wait_for(answer(reader), 5)
        writer.close()
        listener.stop()
        return first, second

    first, second = asyncio.run(scenario())
    assert first == second and first[0] == 200 and json.loads(first[2]) == {"ok": True}
    assert "GET /done failed" in caplog.text and "AssertionError" not in caplog.text


def test_a_paused_flush_that_nobody_awaits_leaves_no_unretrieved_error():
    async def scenario():
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        loop.set_exception_handler(lambda _, context: seen.append(context["message"]))
        port = free_port()
        listener = Application([]).listen(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.1)
        (connection,) = listener.connections
        connection.pause_writing()  # the client's buffers are full; no flush waits yet
        writer.close()
        await asyncio.sleep(0.2)  # the client is gone: the waiter fails
        del connection
        gc.collect()
        listener.stop()
        return seen

    assert asyncio.run(scenario()) == []


def test_without_uvloop_the_runtime_sets_an_asyncio_loop_that_the_router_binds_on(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a machine without it
    asyncio.set_event_loop(None)  # as Python 3.14 starts: get_event_loop() then raises
    port, made = free_port(), []
    try:
        assert use_fast_loop() == "asyncio"
        made.append(asyncio.get_event_loop())
        listener = make_router(_supervisor(tmp_path, free_port()), metrics=False).listen(port, "127.0.0.1")

        async def health():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head("GET", "/health", port))
            status = (await answer(reader))[0]
            writer.close()
            return status

        assert made[0].run_until_complete(health()) == 200
        listener.stop()
    finally:
        for loop in made:
            loop.close()
        asyncio.set_event_loop(None)
