"""Model-deployment inference (``/{deployment}/predict``: OpenAI JSON or SSE, like vLLM behind
LiteLLM, routed by ``model`` and the ``route`` header) and OCI Monitoring's summary of what was served."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from . import scaling
from .common import Fault, Reply, Request, lookup


def predict(h: Any, r: Request, deployment_id: str) -> None:
    started = time.perf_counter()
    try:
        _answer(h, deployment_id, r.body, r.fault)
    finally:
        with h.emu._lock:
            served = h.emu.state.deployments.get(deployment_id)
            if served is not None:  # what OCI Monitoring would count for it
                scaling.record_predict(served, (time.perf_counter() - started) * 1000, 200)


def _answer(h: Any, deployment_id: str, body: bytes, fault: Fault | None) -> None:
    with h.emu._lock:
        d = lookup(h.emu.state.deployments, deployment_id)
        h.emu._advance(d)
        names = h.emu.served_names(d)
    if d["lifecycleState"] != "ACTIVE":
        raise Reply(409, "IncorrectState", f"The model deployment is {d['lifecycleState']}.")
    try:
        request = json.loads(body or b"{}")
    except json.JSONDecodeError:
        raise Reply(400, "InvalidParameter", "The request body is not JSON.") from None
    model = _served_name(h, d, request.get("model"), names)
    if model not in names:
        return h._send(
            404,
            {
                "error": {
                    "message": f"Invalid model name {model!r}; served: {names}",
                    "type": "invalid_request_error",
                    "code": 404,
                }
            },
        )
    env = (
        d["modelDeploymentConfigurationDetails"]
        .get("environmentConfigurationDetails", {})
        .get("environmentVariables", {})
    )
    route = h.headers.get("route") or env.get("MODEL_DEPLOY_PREDICT_ENDPOINT", "/v1/completions")
    chat = route == "/v1/chat/completions"
    if chat and "messages" not in request:
        return h._send(400, {"error": {"message": "'messages' is required for /v1/chat/completions"}})
    limit = request.get("max_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        # vLLM's answer; before, int("five") dropped the connection with a traceback
        return h._send(400, {"error": {"message": f"max_tokens must be a positive integer, got {limit!r}"}})
    words = _reply_words(model, request)
    if h.headers.get("enable-streaming", "").lower() != "true" and not request.get("stream"):
        text = " ".join(words)
        choice = {"index": 0, "finish_reason": "length"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        return h._send(
            200,
            {
                "id": "cmpl-emu",
                "object": "chat.completion" if chat else "text_completion",
                "model": model,
                "choices": [choice],
                "usage": {"prompt_tokens": 5, "completion_tokens": len(words)},
            },
        )
    h.send_response(200)
    h.send_header("opc-request-id", h.request_id)
    h.send_header("content-type", "text/event-stream")
    h.send_header("transfer-encoding", "chunked")
    h.end_headers()
    for i, word in enumerate(words):
        if fault and fault.drop_after is not None and i >= fault.drop_after:
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the container died mid-answer
            return
        piece = word if i == 0 else " " + word
        delta = {"delta": {"content": piece}} if chat else {"text": piece}
        chunk = {
            "id": "cmpl-emu",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "model": model,
            "choices": [{"index": 0, **delta, "finish_reason": None}],
        }
        h._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        time.sleep(0.002)
    h._chunk(b"data: [DONE]\n\n")
    h._chunk(b"")


def _served_name(h: Any, d: dict, model: str | None, names: list[str]) -> str | None:
    """The served name a request is for: the ``model-key`` header (a group's inference key),
    the ``model-ocid`` header, or ``model`` in the body — a served name, or a member's OCID
    (seed 003 passes either), which names the member's inference key.

    This is the service's side, modelled on OCI (headers first, as its router reads them), and kept
    apart from the client's rule on purpose (``Deployment.names_meant``): the emulator must answer
    as OCI does even when aqua_lab's own resolution is wrong."""
    wanted = h.headers.get("model-key") or h.headers.get("model-ocid") or model
    if wanted in names:
        return wanted
    config = d["modelDeploymentConfigurationDetails"]
    if config.get("deploymentType") == "MODEL_GROUP":
        group = h.emu.state.groups.get(config["modelGroupConfigurationDetails"]["modelGroupId"], {})
        members = group.get("memberModelEntries", {}).get("memberModelDetails", [])
        # a member's inference key stands for its model (seed 003: "model" may carry the key)
        wanted = next((m["modelId"] for m in members if wanted and m.get("inferenceKey") == wanted), wanted)
        for member in members:
            if member["modelId"] == wanted and member.get("inferenceKey") in names:
                return member["inferenceKey"]
        details = group.get("modelGroupDetails", {})
        meta = {m["key"]: m["value"] for m in details.get("customMetadataList", [])}
        if "MULTI_MODEL_CONFIG" in meta:  # a multi-model group: the entry's served name
            for entry in json.loads(meta["MULTI_MODEL_CONFIG"])["models"]:
                match = re.search(r"--served-model-name\s+('([^']*)'|(\S+))", entry["params"])
                if entry.get("model_id") == wanted and match:
                    return match.group(2) or match.group(3)
    return wanted


def summarize_metrics(h: Any, r: Request) -> None:
    """OCI Monitoring's SummarizeMetricsData over what this emulator served (see :mod:`.scaling`)."""
    try:
        h._send(200, scaling.summarize(h.emu.state.deployments, json.loads(r.body or b"{}")))
    except scaling.Invalid as exc:
        raise Reply(400, "InvalidParameter", exc.message) from None


def _reply_words(model: str, request: dict) -> list[str]:
    """A deterministic answer that names the model and what it was asked, capped by max_tokens."""
    asked = request.get("prompt") or (request.get("messages") or [{}])[-1].get("content") or ""
    if isinstance(asked, list):
        asked = " ".join(part.get("text", "") for part in asked if isinstance(part, dict))
    words = f"{model} answers: {asked}".split()
    return words[: max(1, int(request.get("max_tokens") or 16))]
