"""The judge's answer constrained to a verdict where the judge is a llama.cpp server (issue 27: SmolLM2
gave every pair "unparsed" in free text): the grammar and the strict prompt go with each request to it,
other endpoints keep the free-text prompt and its one stricter retry, and which is which is found out
from the endpoint (llama-server's ``/models`` names ``llamacpp``) or the local engine."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from aqua_lab.arena.judge import SCORE_GRAMMAR, STRICT, VERDICT_GRAMMAR, JudgePass, check_rubric
from aqua_lab.evaluation.datasets import Row
from aqua_lab.evaluation.runner import Prediction
from aqua_lab.platforms.local.engines import LLAMA_CPP
from aqua_lab.platforms.local.evaluation_job import judge_pass, llama_server

pytestmark = [pytest.mark.arena, pytest.mark.evaluation]

ROWS = [Row(0, "Capital of France?", "Paris"), Row(1, "Capital of Italy?", "Rome")]


def _done(rows):
    return {
        "right": {r.index: Prediction(r.index, "right", r.completion) for r in rows},
        "wrong": {r.index: Prediction(r.index, "wrong", "Lyon") for r in rows},
    }


def _judged(ask, constrained, scores=False):
    judging = JudgePass(ROWS, ["right", "wrong"], ask, check_rubric(None), scores=scores, constrained=constrained)
    asyncio.run(judging.finish(_done(ROWS)))
    return judging


def test_a_constrained_judge_is_asked_under_the_grammar_with_the_strict_prompt():
    asked = []

    async def ask(messages, grammar=None):
        asked.append((messages, grammar))
        if grammar == SCORE_GRAMMAR:
            return "[[8]]"
        first = messages[-1]["content"].split("[Answer A]\n")[1].split("\n")[0]
        return "[[A]]" if first in ("Paris", "Rome") else "[[B]]"

    judging = _judged(ask, constrained=True, scores=True)
    verdicts = [m for m, g in asked if g == VERDICT_GRAMMAR]
    assert len(verdicts) == 2 * len(ROWS)  # both orders, one request each: no retry needed
    assert all(STRICT in m[0]["content"] and "Explain" not in m[0]["content"] for m in verdicts)
    assert sum(g == SCORE_GRAMMAR for _, g in asked) == 2 * len(ROWS)  # judge_score: each answer rated
    report = judging.pairwise_report()
    assert report["constrained"] is True and report["unparsed"] == 0 and report["retries"] == 0
    assert report["win_rate"] == {"right": 1.0, "wrong": 0.0}


def test_a_free_text_judge_gets_no_grammar_and_one_stricter_retry_then_unparsed():
    asked = []

    async def ask(messages):  # an endpoint that takes no grammar: asked with the messages alone
        asked.append(messages)
        return "I cannot decide."

    report = _judged(ask, constrained=False).pairwise_report()
    assert report["constrained"] is False and report["unparsed"] == len(ROWS)
    assert len(asked) == 2 * 2 * len(ROWS)  # each order once in free text, once strictly
    assert sum(STRICT in m[0]["content"] for m in asked) == 2 * len(ROWS)


class _Endpoint(BaseHTTPRequestHandler):
    owner = "llamacpp"

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = json.dumps({"data": [{"id": "m", "owned_by": type(self).owner}]}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()
    _Endpoint.owner = "llamacpp"


def test_which_judges_take_a_grammar_is_found_out_from_the_endpoint_or_the_engine(endpoint):
    assert llama_server(endpoint, {}) is True
    _Endpoint.owner = "vllm"
    assert llama_server(endpoint, {}) is False
    assert llama_server("http://127.0.0.1:9/v1", {}) is False  # no answer: the free-text prompt, safe anywhere

    args = {"judge": "m", "rubric": None, "max_tokens": 8}
    deployment = SimpleNamespace(id="local-x")
    for engine, constrained in ((LLAMA_CPP, True), ("vllm", False)):
        platform = SimpleNamespace(engine=engine, inference_request=lambda *a: ("http://x", {}))
        judging = judge_pass(platform, deployment, None, ROWS, ["m", "n"], {"pairwise_judge": args})
        assert judging.constrained is constrained


@pytest.mark.local
@pytest.mark.slow
def test_a_real_smollm2_judge_under_the_grammar_gives_a_verdict_for_every_pair(tmp_path):
    """Before the grammar, SmolLM2-135M gave every pair "unparsed" in free text."""
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService
    from tests.helpers.smol import deploy_two_smol

    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))
    deployment = deploy_two_smol(service, "constrained judge")
    try:
        assert deployment.state == "ACTIVE", deployment.lifecycle_details
        args = {"judge": "smol-a", "rubric": None, "max_tokens": 16}
        row = service.platform.store.deployment(deployment.id)
        judging = judge_pass(service.platform, deployment, row, ROWS, ["right", "wrong"], {"pairwise_judge": args})
        asyncio.run(judging.finish(_done(ROWS)))
        report = judging.pairwise_report()
        assert report["constrained"] is True and report["errors"] == 0, report["last_error"]
        assert report["unparsed"] == 0 and report["requests"] == 2 * len(ROWS)
        assert all(o in ("right", "wrong", "tie") for v in report["verdicts"] for o in v["orders"])
    finally:
        service.delete(deployment.id)
