"""A stand-in for a local deployment's router, for evaluation tests that need no model engine:
``python -m tests.helpers.fake_models PORT DEPLOYMENT_ID`` answers ``/v1/chat/completions`` on
127.0.0.1 for the models ``perfect`` (the sample's reference answer), ``vague`` (always the same
sentence), ``slow`` (the reference after 0.3 s) and ``broken`` (HTTP 500).  Its command line holds
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

from aqua_lab.evaluation.datasets import SAMPLE, load_dataset

ANSWERS = {r.prompt: r.completion for r in load_dataset(SAMPLE)}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 — http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        model, prompt = body["model"], body["messages"][-1]["content"]
        with open("requests.jsonl", "a") as log:
            log.write(json.dumps({"model": model, "prompt": prompt, "max_tokens": body.get("max_tokens")}) + "\n")
        if model == "broken":
            return self._send(500, {"error": {"message": "model server crashed"}})
        if model == "slow":
            time.sleep(0.3)
        text = "I am not sure about that." if model == "vague" else ANSWERS.get(prompt, "unknown")
        words = text.split()
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": w, "logprob": math.log(0.5)} for w in words]}
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words)}
        self._send(200, {"object": "chat.completion", "model": model, "choices": [choice], "usage": usage})

    def _send(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
