"""A stand-in for a local deployment's router, for evaluation tests that need no model engine:
``python -m tests.helpers.fake_models PORT DEPLOYMENT_ID`` answers ``/v1/chat/completions`` on
127.0.0.1 for the models ``perfect`` (the sample's reference answer), ``vague`` (always the same
sentence), ``slow`` (the reference after 0.3 s), ``broken`` (HTTP 500) and, when asked for, ``busy`` (429 with
``Retry-After: 2``, as a router with a full queue answers); a request with a one-literal
``grammar`` gets that literal back with log-probability ln 0.25 per word (an answer: ln 0.5).  Its command line holds
the deployment id, so the local platform takes it for that deployment's runtime.

Every request is appended to ``requests.jsonl`` in the working directory (to prove no row is
generated twice).
"""

from __future__ import annotations

import json
import math
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aqua_lab.evaluation.datasets import SAMPLE, load_dataset

ANSWERS = {r.prompt: r.completion for r in load_dataset(SAMPLE)}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 — http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        model, prompt = body["model"], body["messages"][-1]["content"]
        with open("requests.jsonl", "a") as log:
            log.write(
                json.dumps(
                    {
                        "model": model,
                        "prompt": prompt,
                        "max_tokens": body.get("max_tokens"),
                        "forced": "grammar" in body,
                    }
                )
                + "\n"
            )
        if model == "broken":
            return self._send(500, {"error": {"message": "model server crashed"}})
        if model == "busy":
            return self._send(429, {"error": {"message": "busy's queue is full"}}, {"retry-after": "2"})
        if model == "slow":
            time.sleep(0.3)
        text = "I am not sure about that." if model == "vague" else ANSWERS.get(prompt, "unknown")
        each = math.log(0.5)
        if body.get("grammar"):  # the reference forced, as llama-server does with a one-literal grammar
            text, each = json.loads(body["grammar"].split("::=", 1)[1]), math.log(0.25)
        words = text.split()
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if body.get("logprobs"):
            tokens = [{"token": w, "logprob": each} for w in words] + [{"token": "", "logprob": -5.0}]
            choice["logprobs"] = {"content": tokens}
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words)}
        self._send(200, {"object": "chat.completion", "model": model, "choices": [choice], "usage": usage})

    def _send(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


MODELS = ("perfect", "vague", "slow", "broken")


def start_fake_deployment(
    data_dir: Path, workdir: Path, deployment_id: str = "local-fakeeval0001", served: tuple[str, ...] = MODELS
):
    """Register an ACTIVE local deployment of ``served`` (:data:`MODELS` by default) whose runtime is
    this stand-in router, started in ``workdir``; returns (deployment id, process).  The caller kills the process."""
    import socket
    import subprocess

    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.platforms.local.runtime import free_port

    platform = LocalPlatform(data_dir=data_dir)
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, str(port), deployment_id], cwd=workdir, start_new_session=True)
    models = [{"model_id": m, "model_name": m, "gpu_count": 1, "env_var": {}, "fine_tune_weights": []} for m in served]
    platform.store.add_deployment(
        {
            "id": deployment_id,
            "display_name": "fake",
            "state": "ACTIVE",
            "shape": "LOCAL.CPU",
            "deployment_type": "MULTI",
            "record": {"models": models, "tags": {}},
            "router_port": port,
        },
        [{"model_name": m, "model_id": m} for m in served],
    )
    platform.store.update_deployment(deployment_id, runtime_pid=proc.pid)
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return deployment_id, proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stand-in router did not start")


def requests_seen(workdir: Path) -> list[dict]:
    path = workdir / "requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
