"""The one OpenAI wire: one rule per sampling field on every path (REST, the local router, evaluations),
a stream cut between the bytes of a character arriving whole, and every model call bounded in time —
a model that stops answering ends each call at its limit with an error naming it and the limit, is
cooled down while the others answer, and answers again once it is back."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from aqua_lab.domain import ChatRequest, chunk_text
from aqua_lab.errors import ModelTimeout
from aqua_lab.inference.protocol import RequestProblem, check_engine_body, model_parameter_problems
from aqua_lab.inference.sse import iter_events
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.router import StreamWatch
from aqua_lab.server.errors import to_response
from aqua_lab.service import AquaLabService
from tests import test_evaluation_fronts as fronts
from tests import test_evaluation_local as local_evaluations
from tests import test_evaluation_routes as evaluation_routes
from tests import test_rest_contract as contract
from tests.helpers.memory_platform import MemoryPlatform
from tests.test_pool import _silent_after

pytestmark = pytest.mark.inference
pytest_plugins = ["pytest_jupyter.jupyter_server"]

# the stand-in deployment for evaluations, and the live two-model deployment behind a Jupyter server
fake, jp_server_config, fake_deployment = fronts.fake, fronts.jp_server_config, local_evaluations.fake_deployment
data_dir, server, deployment, call = contract.data_dir, contract.server, contract.deployment, contract.call

TEXT = "Café déjà vu — 東京の夜 🙂👍🏽 naïve"


@pytest.fixture(scope="module", autouse=True)
def _shared_cores():
    # the live deployment must not be refused for the cores another test's deployment holds
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AQUA_LAB_SHARE_CORES", "1")
        yield


# one rule per field ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("temperature", 50, "between 0 and 2"),
        ("top_p", -1, "between 0 (excluded) and 1"),
        ("top_p", 0, "between 0 (excluded) and 1"),
        ("max_tokens", 10**9, "between 1 and 1048576"),
        ("top_k", -5, "between -1 and"),
        ("seed", "7", "a whole number"),
        ("presence_penalty", 3, "between -2 and 2"),
    ],
)
def test_rest_the_router_and_evaluations_refuse_the_same_values_naming_the_field(field, value, says):
    with pytest.raises(ValidationError) as rest:
        ChatRequest.model_validate({"model": "m", "prompt": "hi", field: value})
    [error] = rest.value.errors()
    assert error["loc"] == (field,) and says in error["msg"]
    with pytest.raises(RequestProblem) as router:
        check_engine_body({"model": "m", "prompt": "hi", field: value}, "/v1/completions")
    assert router.value.field == field and says in router.value.message
    [problem] = model_parameter_problems({field: value})
    assert problem.field == f"model_parameters.{field}" and says in problem.message


def test_a_field_no_engine_takes_is_refused_everywhere_with_the_ones_allowed():
    with pytest.raises(ValidationError, match="config_file"):
        ChatRequest.model_validate({"model": "m", "prompt": "hi", "config_file": "/etc/passwd"})
    [problem] = model_parameter_problems({"config_file": "/etc/passwd"})
    assert problem.field == "model_parameters.config_file" and "temperature" in problem.fix


@pytest.mark.evaluation
@pytest.mark.server
async def test_a_local_evaluation_out_of_range_is_422_at_create_naming_each_parameter(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    hot = {"temperature": 50, "top_p": -1, "max_tokens": 10**9}
    body = evaluation_routes.spec(deployment_id, tmp_path, model_parameters=hot)
    answer = await fronts.call(jp_fetch, "evaluations", method="POST", body=body, expect=422)
    said = {e["field"]: e["message"] for e in answer["errors"]}
    assert said == {
        "model_parameters.temperature": "temperature 50 must be between 0 and 2",
        "model_parameters.top_p": "top_p -1 must be between 0 (excluded) and 1",
        "model_parameters.max_tokens": "max_tokens 1000000000 must be between 1 and 1048576",
    }
    assert (await fronts.call(jp_fetch, "evaluations"))["data"] == []  # nothing made


# UTF-8 across reads ----------------------------------------------------------------------------------


def _chunk(content: str) -> bytes:
    delta = {"choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + json.dumps(delta, ensure_ascii=False).encode() + b"\n\n"


STREAM = _chunk(TEXT[:9]) + _chunk(TEXT[9:]) + b"data: [DONE]\n\n"


async def _byte_at_a_time(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An upstream answering TEXT: streamed one byte per HTTP chunk, or whole."""
    head = await reader.readuntil(b"\r\n\r\n")
    body = json.loads(await reader.readexactly(int(re.search(rb"content-length: *(\d+)", head, re.I)[1])))
    if body["stream"]:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for byte in STREAM:
            writer.write(b"1\r\n" + bytes([byte]) + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    else:
        message = {"role": "assistant", "content": TEXT}
        answer = json.dumps({"choices": [{"index": 0, "message": message}]}, ensure_ascii=False).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(answer))
        writer.write(answer)
    await writer.drain()
    writer.close()


def _service_in_front_of(port: int) -> tuple[AquaLabService, str]:
    """A service whose one deployment's endpoint is the server on ``port``."""
    platform = MemoryPlatform(polls_to_active=1)
    service = AquaLabService(platform)
    from tests.test_service import spec

    deployment_id = service.create_deployment(spec()).id
    service.get_deployment(deployment_id)  # ACTIVE
    platform.inference_request = lambda d, route, body, stream: (f"http://127.0.0.1:{port}/v1{route[3:]}", {})
    return service, deployment_id


def test_a_character_split_across_reads_arrives_whole_and_the_stream_equals_the_answer():
    async def run() -> tuple[str, str]:
        upstream = await asyncio.start_server(_byte_at_a_time, "127.0.0.1", 0)
        service, deployment_id = _service_in_front_of(upstream.sockets[0].getsockname()[1])
        try:
            request = ChatRequest(model="alpha-7b", messages=[{"role": "user", "content": "hi"}])
            streamed = "".join([chunk_text(c) async for c in service.chat_stream(deployment_id, request)])
            whole = await service.chat(deployment_id, request.model_copy(update={"stream": False}))
        finally:
            upstream.close()
        return streamed, whole["choices"][0]["message"]["content"]

    streamed, whole = asyncio.run(run())
    assert "\ufffd" not in streamed
    assert streamed == whole == TEXT


@pytest.mark.parametrize("blocks", [False, True])
def test_a_chat_asks_a_platform_that_cannot_block_for_its_request_on_the_loop_not_in_a_thread(blocks):
    # a thread hop per chat turn costs a share of the time to first token; only a signing platform needs it
    async def run() -> set[bool]:
        upstream = await asyncio.start_server(_byte_at_a_time, "127.0.0.1", 0)
        service, deployment_id = _service_in_front_of(upstream.sockets[0].getsockname()[1])
        platform, on_loop = service.platform, set()
        target = platform.inference_request
        platform.inference_request_blocks = blocks

        def noting_the_thread(*args):
            on_loop.add(threading.current_thread() is threading.main_thread())
            return target(*args)

        platform.inference_request = noting_the_thread
        try:
            request = ChatRequest(model="alpha-7b", messages=[{"role": "user", "content": "hi"}])
            assert "".join([chunk_text(c) async for c in service.chat_stream(deployment_id, request)]) == TEXT
        finally:
            upstream.close()
        return on_loop

    assert asyncio.run(run()) == {not blocks}
    assert LocalPlatform.inference_request_blocks is False and MemoryPlatform.inference_request_blocks is True


def test_the_router_passes_a_byte_split_stream_on_unchanged_and_still_reads_it():
    watch = StreamWatch()
    out = b"".join(watch.feed(STREAM[i : i + 1]) for i in range(len(STREAM)))
    assert out == STREAM and watch.done and not watch.failed
    texts = [json.loads(e.data)["choices"][0]["delta"]["content"] for e in iter_events([out]) if not e.done]
    assert "".join(texts) == TEXT


# time limits without an engine -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "stream", "limit"),
    [([], False, "first_byte_s"), ([b"5\r\ndata:\r\n"], True, "idle_s")],
)
def test_a_model_that_goes_silent_is_a_504_naming_it_the_limit_and_the_fix(pieces, stream, limit):
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

    async def run() -> tuple[BaseException, float]:
        service, deployment_id = _service_in_front_of(await _silent_after(head if pieces else b"", pieces))
        request = ChatRequest(model="alpha-7b", prompt="hi", stream=stream, timeouts={limit: 0.4})
        started = time.monotonic()
        with pytest.raises(ModelTimeout) as caught:
            if stream:
                async for _ in service.chat_events(deployment_id, request):
                    pass
            else:
                await service.chat(deployment_id, request)
        return caught.value, time.monotonic() - started

    error, took = asyncio.run(run())
    assert took < 2, took
    assert (error.model, error.limit, error.seconds) == ("alpha-7b", limit, 0.4)
    status, body = to_response(error)
    assert status == 504
    assert "model 'alpha-7b'" in body["message"] and f"timeouts.{limit}" in body["message"]
    assert f"AQUA_LAB_{limit.removesuffix('_s').upper()}_TIMEOUT_S" in body["message"]


@pytest.mark.evaluation
def test_an_evaluation_row_that_times_out_fails_with_the_reason_and_the_job_goes_on(
    fake_deployment, tmp_path, monkeypatch
):
    service, deployment_id, _ = fake_deployment
    monkeypatch.setenv("AQUA_LAB_FIRST_BYTE_TIMEOUT_S", "0.2")  # the job inherits it; "slow" takes 0.3 s
    spec = local_evaluations._spec(deployment_id, tmp_path / "r", metrics=[{"name": "rouge"}])
    done = service.wait_evaluation(service.create_evaluation(spec).id, timeout=120)
    assert done.state == "SUCCEEDED", done.details
    states = {m.model: m for m in done.models}
    assert states["slow"].state == "FAILED" and states["slow"].rows_failed == states["slow"].rows_total
    assert states["vague"].state == "SUCCEEDED" and states["vague"].rows_done == states["vague"].rows_total
    report = service.evaluation_report(done.id, "slow", fmt="html")
    assert "sent nothing within 0.2 s (the first_byte time limit)" in report


# a live deployment: a suspended model ----------------------------------------------------------------

LIMITS = {"first_byte_s": 3, "idle_s": 3, "total_s": 60}


def _open_stream(server: str, deployment_id: str, body: dict):
    request = urllib.request.Request(
        f"{server}aqua/deployments/{deployment_id}/chat",
        data=json.dumps(body).encode(),
        method="POST",
        headers=contract.AUTH,
    )
    return urllib.request.urlopen(request, timeout=120)


def _events(raw: bytes) -> list[tuple[str, dict]]:
    return [(e.event, json.loads(e.data)) for e in iter_events([raw]) if not e.done]


def _timed(fn, *args):
    started = time.monotonic()
    return fn(*args), time.monotonic() - started


def _model_state(server: str, deployment_id: str, name: str) -> dict:
    _, _, raw = call(server, f"deployments/{deployment_id}")
    return next(s for s in json.loads(raw)["model_states"] if s["model_name"] == name)


def _until(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def _status_latencies(server: str, stop: threading.Event) -> list[float]:
    """Jupyter's own /api/status, timed every 20 ms until ``stop``."""
    times = []
    while not stop.is_set():
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(f"{server}api/status", headers=contract.AUTH)) as r:
            r.read()
        times.append(time.perf_counter() - started)
        time.sleep(0.02)
    return times


@pytest.mark.local
@pytest.mark.server
def test_multibyte_text_streams_through_rest_as_it_comes_whole(server, deployment):
    literal = json.dumps(TEXT, ensure_ascii=False)  # GBNF literals escape as JSON strings do
    body = {"model": "smol-b", "messages": [{"role": "user", "content": "Say it."}], "max_tokens": 48}
    body.update(temperature=0, grammar=f"root ::= {literal}")
    status, _, raw = call(server, f"deployments/{deployment.id}/chat", "POST", {**body, "stream": False})
    assert status == 200, raw
    whole = json.loads(raw)["choices"][0]["message"]["content"]
    status, _, raw = call(server, f"deployments/{deployment.id}/chat", "POST", {**body, "stream": True})
    assert status == 200
    streamed = "".join(chunk_text(data) for _, data in _events(raw))
    assert streamed == whole == TEXT
    status, _, raw = call(server, f"deployments/{deployment.id}/metrics")  # the router's, through the transport
    assert status == 200 and {m["model_name"] for m in json.loads(raw)["models"]} >= {"smol-b"}, raw


@pytest.mark.local
@pytest.mark.server
@pytest.mark.slow
def test_a_suspended_model_ends_each_call_at_its_limit_is_cooled_down_and_answers_after_sigcont(
    server, deployment, data_dir
):
    pid = {s["model_name"]: s["pid"] for s in LocalPlatform(data_dir=data_dir).store.model_states(deployment.id)}
    chat, compare = f"deployments/{deployment.id}/chat", f"deployments/{deployment.id}/compare"
    hi = [{"role": "user", "content": "Say hi."}]
    story = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    stream = _open_stream(
        server, deployment.id, {"model": "smol-a", "messages": story, "max_tokens": 400, "timeouts": LIMITS}
    )
    received = stream.read1(4096)  # smol-a is answering
    stop = threading.Event()
    os.kill(pid["smol-a"], signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(4) as pool:
            status_times = pool.submit(_status_latencies, server, stop)
            whole = pool.submit(
                _timed,
                call,
                server,
                chat,
                "POST",
                {"model": "smol-a", "messages": hi, "stream": False, "timeouts": LIMITS},
            )
            both = pool.submit(
                _timed, call, server, compare, "POST", {"messages": hi, "max_tokens": 8, "timeouts": LIMITS}
            )
            started = time.monotonic()
            while piece := stream.read1(4096):
                received += piece
            streamed_s = time.monotonic() - started
            (whole_status, _, whole_raw), whole_s = whole.result()
            (_, _, compare_raw), compare_s = both.result()

            # each ended within its limit, saying which model and which limit
            [(kind, error)] = [e for e in _events(received) if e[0] == "error"]
            assert "model 'smol-a' stopped sending its answer within 3 s" in error["message"], error
            assert streamed_s < LIMITS["idle_s"] + 2, streamed_s
            assert whole_status == 504, whole_raw
            assert "model 'smol-a' sent nothing within 3 s" in json.loads(whole_raw)["message"]
            assert whole_s < LIMITS["first_byte_s"] + 2, whole_s
            events = {(kind, data.get("model")): data for kind, data in _events(compare_raw) if kind != "message"}
            assert "model 'smol-a' sent nothing within 3 s" in events[("error", "smol-a")]["message"]
            assert ("done", "smol-b") in events and compare_s < LIMITS["first_byte_s"] + 2, compare_s

            # smol-a is shown not answering and gets no new requests; smol-b answers meanwhile
            state = _until(
                lambda: (s := _model_state(server, deployment.id, "smol-a"))["state"] == "NOT_ANSWERING" and s, 5
            )
            assert state and "not answering since" in state["detail"], state
            status, _, raw = call(
                server, chat, "POST", {"model": "smol-b", "messages": hi, "max_tokens": 8, "stream": False}
            )
            assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"], raw
            (status, _, raw), took = _timed(
                call, server, chat, "POST", {"model": "smol-a", "messages": hi, "stream": False}
            )
            assert status == 503 and "model 'smol-a' is not answering" in json.loads(raw)["message"], raw
            assert took < 10, took
            stop.set()
            latencies = sorted(status_times.result())
    finally:
        stop.set()
        os.kill(pid["smol-a"], signal.SIGCONT)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(
        f"ended after stream {streamed_s:.2f} s, chat {whole_s:.2f} s, compare {compare_s:.2f} s; refused when cooled "
        f"after {took:.2f} s; /api/status p99 {p99 * 1000:.1f} ms over {len(latencies)} calls"
    )
    assert len(latencies) > 50 and p99 < 0.05, (p99, latencies[-5:])

    # back: its health check passes, it is ACTIVE again and answers
    assert _until(lambda: _model_state(server, deployment.id, "smol-a")["state"] == "ACTIVE", 15)
    status, _, raw = call(server, chat, "POST", {"model": "smol-a", "messages": hi, "max_tokens": 8, "stream": False})
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"], raw


@pytest.mark.inference
@pytest.mark.parametrize("field", ["max_tokens", "temperature", "seed", "top_k"])
def test_a_number_too_big_for_a_float_or_for_repr_is_a_field_error_not_a_crash(field):
    from pydantic import ValidationError

    from aqua_lab.inference.protocol import ChatRequest

    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for huge in (10**400, 10**5000):  # past a float; past what repr may print
        with pytest.raises(ValidationError) as refused:
            ChatRequest.model_validate({**base, field: huge})
        assert refused.value.errors()[0]["loc"] == (field,) and "must be" in refused.value.errors()[0]["msg"]
