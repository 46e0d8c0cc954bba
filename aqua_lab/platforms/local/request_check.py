"""What a request to a local model may carry, checked before it reaches the engine.

An engine is a native process: a field it does not expect, a value of the wrong type or a prompt
longer than its context must be refused here with the field's name (422), so that no request can
crash a model server or come back as an empty answer.  The lists are OpenAI's fields plus the
sampling options llama.cpp's server documents; anything else is refused with the allowed names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_MESSAGES = 512
MAX_STOP = 8
MAX_GRAMMAR_CHARS = 65536
#: a conservative bound on characters per token for the pre-check (English text is ~4)
CHARS_PER_TOKEN_FLOOR = 2


@dataclass
class RequestProblem(Exception):
    message: str
    field: str | None = None
    status: int = 422
    code: str = "invalid_request"


def _number(lo: float | None = None, hi: float | None = None, integer: bool = False):
    def check(field: str, value: Any) -> None:
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            raise RequestProblem(f"{field} must be {'a whole number' if integer else 'a number'}", field)
        if lo is not None and value < lo or hi is not None and value > hi:
            span = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
            raise RequestProblem(f"{field} {value!r} must be {span}", field)

    return check


def _bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise RequestProblem(f"{field} must be true or false", field)


def _text(limit: int):
    def check(field: str, value: Any) -> None:
        if not isinstance(value, str):
            raise RequestProblem(f"{field} must be a string", field)
        if len(value) > limit:
            raise RequestProblem(f"{field} is longer than {limit} characters", field)

    return check


def _stop(field: str, value: Any) -> None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items) or len(items) > MAX_STOP:
        raise RequestProblem(f"{field} must be a non-empty string or a list of at most {MAX_STOP} of them", field)


def _logit_bias(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise RequestProblem(f'{field} must be an object of token id → bias, e.g. {{"15339": -100}}', field)
    for token, bias in value.items():
        if not str(token).lstrip("-").isdigit():
            raise RequestProblem(f"{field}: key {str(token)[:40]!r} is not a token id", field)
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise RequestProblem(f"{field}[{token}] must be a number between -100 and 100", field)


def _object(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise RequestProblem(f"{field} must be an object", field)


def _grammar(field: str, value: Any) -> None:
    _text(MAX_GRAMMAR_CHARS)(field, value)
    if "root" not in value or "::=" not in value:
        raise RequestProblem(f"{field} is not a GBNF grammar (it needs a 'root ::= …' rule)", field)


def _n(field: str, value: Any) -> None:
    if value != 1:
        raise RequestProblem(f"{field} must be 1: local models give one answer per request", field)


COMMON = {
    "model": _text(512),
    "stream": _bool,
    "max_tokens": _number(1, 1 << 20, integer=True),
    "max_completion_tokens": _number(1, 1 << 20, integer=True),
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "top_k": _number(0, 1 << 20, integer=True),
    "min_p": _number(0, 1),
    "typical_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "repeat_penalty": _number(0, 10),
    "repeat_last_n": _number(-1, 1 << 20, integer=True),
    "seed": _number(-1, (1 << 32) - 1, integer=True),
    "stop": _stop,
    "n": _n,
    "logit_bias": _logit_bias,
    "logprobs": _bool,
    "top_logprobs": _number(0, 20, integer=True),
    "n_probs": _number(0, 20, integer=True),
    "grammar": _grammar,
    "json_schema": _object,
    "response_format": _object,
    "stream_options": _object,
    "cache_prompt": _bool,
    "user": _text(256),
}
CHAT = {**COMMON, "messages": None}
COMPLETIONS = {**COMMON, "prompt": None, "echo": _bool}
EMBEDDINGS = {"model": _text(512), "input": None, "encoding_format": _text(16)}
ROLES = ("system", "user", "assistant", "tool", "developer")


def _content_text(field: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestProblem(
                    f'{field}[{i}] must be {{"type": "text", "text": "…"}} (local models take text only)', field
                )
            texts.append(part["text"])
        return "".join(texts)
    raise RequestProblem(f"{field} must be a string or a list of text parts", field)


def _messages(value: Any) -> int:
    if not isinstance(value, list) or not value:
        raise RequestProblem("messages must be a non-empty list", "messages")
    if len(value) > MAX_MESSAGES:
        raise RequestProblem(f"messages has {len(value)} items, more than {MAX_MESSAGES}", "messages")
    chars = 0
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise RequestProblem(f"messages[{i}] must be an object with role and content", f"messages[{i}]")
        if message.get("role") not in ROLES:
            raise RequestProblem(f"messages[{i}].role must be one of {list(ROLES)}", f"messages[{i}].role")
        content = message.get("content")
        if content is None and message.get("role") == "assistant":
            continue
        chars += len(_content_text(f"messages[{i}].content", content))
    return chars


def _prompt(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and value and all(isinstance(p, str) for p in value) and len(value) <= 1:
        return len(value[0])
    raise RequestProblem("prompt must be a string", "prompt")


def check_body(body: dict[str, Any], route: str, context: int | None = None) -> dict[str, Any]:
    """The body as the engine should get it; raises :class:`RequestProblem`.  ``context`` (the
    tokens one request may use) refuses prompts that cannot fit before the engine spends time on them."""
    fields = {"/v1/chat/completions": CHAT, "/v1/completions": COMPLETIONS, "/v1/embeddings": EMBEDDINGS}[route]
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise RequestProblem(
            f"{unknown[0][:60]!r} is not a field a local model takes on {route}; use {sorted(fields)}", unknown[0][:60]
        )
    for name, check in fields.items():
        if check is not None and name in body and body[name] is not None:
            check(name, body[name])
    if route == "/v1/chat/completions":
        chars = _messages(body.get("messages"))
    elif route == "/v1/completions":
        if "prompt" not in body:
            raise RequestProblem("prompt is required", "prompt")
        chars = _prompt(body["prompt"])
    else:
        chars = 0
    try:  # JSON allows a lone surrogate escape (\ud800); the engine's parser does not
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RequestProblem("the text contains a lone UTF-16 surrogate (invalid Unicode)", "messages") from None
    if context and chars // CHARS_PER_TOKEN_FLOOR > context:
        raise RequestProblem(
            f"the prompt ({chars} characters, at least {chars // CHARS_PER_TOKEN_FLOOR} tokens) is longer than "
            f"this model's context of {context} tokens per request; shorten it or deploy the model with a "
            "larger --max-model-len",
            "messages" if route == "/v1/chat/completions" else "prompt",
            code="context_length_exceeded",
        )
    return body
