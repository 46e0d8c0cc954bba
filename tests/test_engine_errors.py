"""What a user reads when a model endpoint refuses or breaks: the engine's reason with its source
paths cut and its length capped, on the field it named (a 422), and a dropped connection said in
words — never asyncio's "0 bytes read on a total of undefined expected bytes"."""

from __future__ import annotations

import asyncio
import json

import pytest

from aqua_lab.domain import ChatRequest, CompareRequest
from aqua_lab.errors import InvalidInput, UpstreamError
from aqua_lab.inference import client
from aqua_lab.service import AquaLabService
from tests.helpers.memory_platform import MemoryPlatform

pytestmark = pytest.mark.inference

TRACE = (
    'Traceback (most recent call last):\n  File "/opt/venv/lib/python3.11/site-packages/vllm/entrypoints/openai/'
    'serving_chat.py", line 212, in create_chat_completion\n'
    "    raise ValueError(...)\nValueError: at /opt/llama.cpp/tools/server/server.cpp:3120 top_k must be >= 0"
)


def canned(status: int, body: bytes | None):
    """A one-shot HTTP server answering ``status`` with ``body`` (None: close without answering)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if body is not None:
            head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    return asyncio.start_server(serve, "127.0.0.1", 0)


async def relayed(status: int, body: bytes | None, request) -> BaseException:
    """What the service raises for a chat whose endpoint answers ``status`` / ``body``."""
    server = await canned(status, body)
    port = server.sockets[0].getsockname()[1]
    platform = MemoryPlatform(polls_to_active=1)
    service = AquaLabService(platform)
    from tests.test_service import spec

    deployment = service.create_deployment(spec())
    service.get_deployment(deployment.id)  # ACTIVE
    platform.inference_request = lambda d, route, body, stream: (f"http://127.0.0.1:{port}/v1{route[3:]}", {})
    try:
        if request.stream:
            async for _ in service.chat_events(deployment.id, request):
                pass
        else:
            await service.chat(deployment.id, request)
    except Exception as exc:
        return exc
    finally:
        server.close()
    raise AssertionError("no error")


def test_an_engine_message_loses_its_source_paths_and_is_capped():
    text = client.clean_message(TRACE + (" {'input': {'messages': [...]}}" * 200))
    assert "/opt/" not in text and ".py" not in text and "server.cpp" not in text
    assert "top_k must be >= 0" in text
    assert len(text) <= client.MESSAGE_CHARS + 40 and "characters in all" in text


@pytest.mark.parametrize("stream", [False, True])
def test_an_engine_refusal_is_a_422_on_the_field_it_names(stream):
    vllm = json.dumps({"detail": [{"loc": ["body", "top_k"], "msg": TRACE, "input": "x" * 10_000}]}).encode()
    request = ChatRequest(model="alpha-7b", prompt="hi", stream=stream, top_k=-1)
    error = asyncio.run(relayed(400, vllm, request))
    assert isinstance(error, InvalidInput), error
    [problem] = error.problems
    assert problem.field == "top_k"
    assert "top_k must be >= 0" in problem.message and "/opt/" not in problem.message
    assert len(problem.message) < 700


def test_an_openai_style_refusal_keeps_its_param_and_other_statuses_stay_upstream():
    router = json.dumps({"error": {"message": "logit_bias must be an object", "param": "logit_bias"}}).encode()
    error = asyncio.run(relayed(422, router, ChatRequest(model="alpha-7b", prompt="hi", stream=False)))
    assert isinstance(error, InvalidInput) and error.problems[0].field == "logit_bias"
    busy = json.dumps({"error": {"message": "queue full"}}).encode()
    error = asyncio.run(relayed(429, busy, ChatRequest(model="alpha-7b", prompt="hi", stream=False)))
    assert isinstance(error, UpstreamError) and error.status == 429


@pytest.mark.parametrize("stream", [False, True])
def test_a_server_that_closes_before_answering_says_so_in_words(stream):
    error = asyncio.run(relayed(200, None, ChatRequest(model="alpha-7b", prompt="hi", stream=stream)))
    assert isinstance(error, UpstreamError), error
    assert "closed the connection before answering" in str(error)
    assert "expected bytes" not in str(error)


def test_compare_runs_a_repeated_name_once():
    request = CompareRequest(models=["alpha-7b"] * 20, prompt="hi")  # each run fails fast: count them

    async def count() -> int:
        server = await canned(200, None)
        port = server.sockets[0].getsockname()[1]
        platform = MemoryPlatform(polls_to_active=1)
        service = AquaLabService(platform)
        from tests.test_service import spec

        deployment = service.create_deployment(spec())
        service.get_deployment(deployment.id)
        calls = []

        def target(d, route, body, stream):
            calls.append(route)
            return f"http://127.0.0.1:{port}/v1{route[3:]}", {}

        platform.inference_request = target
        items = [item async for item in service.compare(deployment.id, request)]
        server.close()
        return len(calls), len([i for i in items if i["type"] in ("done", "error")])

    assert asyncio.run(count()) == (1, 1)
