"""The OpenAI wire, once (after vLLM's ``entrypoints/openai/protocol.py``): every field a request to a
model may carry, with its bounds, for every path that sends one — REST chat and compare, the local
router in front of llama.cpp (:func:`check_engine_body`) and evaluations' ``model_parameters`` on both
platforms (:func:`model_parameter_problems`).  One rule per field, so no path accepts what another
refuses, and a bad value is refused where it enters, naming the field and its range.

The fields are OpenAI's plus the sampling options llama.cpp's server documents (``top_k``, ``min_p``,
``typical_p``, ``repeat_penalty``, ``repeat_last_n``, ``n_probs``, ``grammar``, ``json_schema``,
``cache_prompt``), which vLLM takes too or ignores.  ``extra``: any other top-level field is refused
with the names allowed — an engine is a native process, and a field it does not expect must neither
reach it nor vanish in silence; a message's own extra keys (``name``, ``tool_call_id`` …) pass through.
"""

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from ..errors import InvalidInput, Problem, json_path, shown
from .timeouts import Timeouts

MAX_MESSAGES = 512
MAX_STOP = 8
MAX_GRAMMAR_CHARS = 65536
MAX_TOKENS = 1 << 20
#: a conservative bound on characters per token for the context pre-check (English text is ~4)
CHARS_PER_TOKEN_FLOOR = 2
ROLES = ("system", "user", "assistant", "tool", "developer")
ChatRoute = Literal["/v1/chat/completions", "/v1/completions"]


def _refuse(text: str) -> PydanticCustomError:
    # a custom error keeps the message as written (a ValueError would get "Value error, " in front)
    return PydanticCustomError("invalid_field", text)


def _shown(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _number(lo: float, hi: float, integer: bool, above: bool):
    kind = "a whole number" if integer else "a number"
    span = f"between {_shown(lo)}{' (excluded)' if above else ''} and {_shown(hi)}"

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise _refuse(f"{info.field_name} must be {kind} {span}")
        # an int is compared as an int: math.isfinite(10**400) raises OverflowError, and repr of a
        # 5000-digit int raises ValueError (Python's digit limit), either a 500 instead of this 422
        finite = isinstance(value, int) or math.isfinite(value)
        if not finite or value < lo or value > hi or (above and value == lo):
            shown = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "(a huge number)"
            raise _refuse(f"{info.field_name} {shown} must be {span}")
        return value

    return check


def Number(lo: float, hi: float, integer: bool = False, above: bool = False, description: str | None = None) -> Any:
    """An optional number in [lo, hi] (``above``: lo itself excluded), refused with the range."""
    low = {"gt": lo} if above else {"ge": lo}
    bounded = Annotated[int if integer else float, Field(le=hi, **low)]  # the range in the JSON schema
    return Annotated[bounded | None, BeforeValidator(_number(lo, hi, integer, above)), Field(description=description)]


def _typed(kind: type, words: str):
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise _refuse(f"{info.field_name} must be {words}")
        return value

    return check


def _text(limit: int):
    def check(value: Any, info: ValidationInfo) -> Any:
        _typed(str, "a string")(value, info)
        if value is not None and len(value) > limit:
            raise _refuse(f"{info.field_name} is longer than {limit} characters")
        return value

    return check


Flag = Annotated[bool | None, BeforeValidator(_typed(bool, "true or false"))]
Object = Annotated[dict[str, Any] | None, BeforeValidator(_typed(dict, "an object"))]


def Text(limit: int, check: Any = None, description: str | None = None) -> Any:
    bounded = Annotated[str, Field(max_length=limit)]
    return Annotated[bounded | None, BeforeValidator(check or _text(limit)), Field(description=description)]


def _stop(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if value is not None and (
        not isinstance(items, list) or not all(isinstance(s, str) and s for s in items) or len(items) > MAX_STOP
    ):
        raise _refuse(f"stop must be a string or a list of strings (at most {MAX_STOP}, none empty)")
    return value


def _logit_bias(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, dict):
        raise _refuse('logit_bias must be an object of token id → bias, e.g. {"15339": -100}')
    for token, bias in value.items():
        if not str(token).lstrip("-").isdigit():
            raise _refuse(f"logit_bias: key {shown(str(token), 40)} is not a token id")
        if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
            raise _refuse(f"logit_bias[{token}] must be a number between -100 and 100")
    return value


def _grammar(value: Any, info: ValidationInfo) -> Any:
    _text(MAX_GRAMMAR_CHARS)(value, info)
    if value is not None and ("root" not in value or "::=" not in value):
        raise _refuse("grammar is not a GBNF grammar (it needs a 'root ::= …' rule)")
    return value


def _one(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or value != 1):
        raise _refuse("n must be 1: a model gives one answer per request here")
    return value


class SamplingParams(BaseModel):
    """Every sampling field a model call may carry, with its bounds (the one place they are written)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: Number(1, MAX_TOKENS, integer=True) = None
    max_completion_tokens: Number(1, MAX_TOKENS, integer=True) = None
    temperature: Number(0, 2) = None
    top_p: Number(0, 1, above=True) = None
    top_k: Number(-1, MAX_TOKENS, integer=True, description="-1 or 0: every token") = None
    min_p: Number(0, 1) = None
    typical_p: Number(0, 1) = None
    presence_penalty: Number(-2, 2) = None
    frequency_penalty: Number(-2, 2) = None
    repeat_penalty: Number(0, 10, description="llama.cpp") = None
    repeat_last_n: Number(-1, MAX_TOKENS, integer=True, description="llama.cpp; -1: the whole context") = None
    seed: Number(-1, (1 << 32) - 1, integer=True) = None
    stop: Annotated[str | list[str] | None, BeforeValidator(_stop)] = None
    n: Annotated[Literal[1] | None, BeforeValidator(_one)] = None
    logit_bias: Annotated[dict[str, float] | None, BeforeValidator(_logit_bias)] = None
    logprobs: Flag = None
    top_logprobs: Number(0, 20, integer=True) = None
    n_probs: Number(0, 20, integer=True, description="llama.cpp") = None
    grammar: Text(MAX_GRAMMAR_CHARS, _grammar, "llama.cpp GBNF") = None
    json_schema: Object = None
    response_format: Object = None
    stream_options: Object = None
    cache_prompt: Flag = None
    user: Text(256) = None


def _messages(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise _refuse("messages must be a non-empty list")
    if len(value) > MAX_MESSAGES:
        raise _refuse(f"messages has {len(value)} items, more than {MAX_MESSAGES}")
    return value


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id … pass through

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


Messages = Annotated[list[ChatMessage], BeforeValidator(_messages)]


# --------------------------------------------------------------------------------------------------
# What an engine is sent (OpenAI's request bodies)


class ChatCompletionRequest(SamplingParams):
    model: Text(512) = None
    messages: Messages
    stream: Flag = None


def _prompt(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value
    if not isinstance(value, str):
        raise _refuse("prompt must be a string")
    return value


class CompletionRequest(SamplingParams):
    model: Text(512) = None
    prompt: Annotated[str | list[str], BeforeValidator(_prompt)]
    stream: Flag = None
    echo: Flag = None


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Text(512) = None
    input: Any = None
    encoding_format: Text(16) = None


ENGINE_REQUESTS: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest,
}


class RequestProblem(Exception):
    """A request an engine must not get: the message, the field at fault and the HTTP answer."""

    def __init__(self, message: str, field: str | None = None, status: int = 422, code: str = "invalid_request"):
        super().__init__(message)
        self.message, self.field, self.status, self.code = message, field, status, code


def _where(loc: tuple[Any, ...]) -> str:
    return json_path(loc).removeprefix("$").removeprefix(".") or "body"


def _said(error: Any, allowed: list[str], route: str) -> RequestProblem:
    field = _where(error["loc"])
    if error["type"] == "extra_forbidden":
        name = field[:60]
        return RequestProblem(f"{name!r} is not a field a local model takes on {route}; use {allowed}", name)
    if error["type"] == "invalid_field":  # our own messages name the field already
        return RequestProblem(error["msg"], field)
    return RequestProblem(f"{field}: {error['msg']}", field)


def _content_text(field: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise RequestProblem(
                f'{field}[{i}] must be {{"type": "text", "text": "…"}} (local models take text only)', field
            )
        texts.append(part["text"])
    return "".join(texts)


#: ``json.dumps(…, ensure_ascii=False)`` without making an encoder per request
_TO_ENGINE = json.JSONEncoder(ensure_ascii=False).encode


def check_engine_body(body: dict[str, Any], route: str, context: int | None = None) -> dict[str, Any]:
    """``body`` as a local engine may get it (unchanged); raises :class:`RequestProblem`.  Besides the
    fields' rules: text-only message content, no lone UTF-16 surrogate (JSON allows ``\\ud800``, the
    engine's parser does not) and — with ``context``, the tokens one request may use — no prompt
    that cannot fit, refused before the engine spends time on it."""
    engine_payload(body, route, context)
    return body


def engine_payload(
    body: dict[str, Any], route: str, context: int | None = None, adds: dict[str, Any] | None = None
) -> bytes:
    """What a local engine is sent: ``body`` checked as :func:`check_engine_body` checks it, with
    ``adds`` (what the sender sets itself once it passed: the served name, an adapter) put in, encoded
    once — that encode is the lone-surrogate check, so the bytes sent are the bytes checked."""
    model = ENGINE_REQUESTS[route]
    try:
        request = model.model_validate(body)
    except ValidationError as exc:
        raise _said(exc.errors()[0], sorted(model.model_fields), route) from None
    chars = 0
    if isinstance(request, ChatCompletionRequest):
        for i, message in enumerate(request.messages):
            if message.content is not None:
                chars += len(_content_text(f"messages[{i}].content", message.content))
            elif message.role != "assistant":
                raise RequestProblem(f"messages[{i}].content must be a string or a list of text parts", "messages")
    elif isinstance(request, CompletionRequest):
        chars = len(request.prompt if isinstance(request.prompt, str) else request.prompt[0])
    if adds:
        body.update(adds)
    try:
        payload = _TO_ENGINE(body).encode()
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
    return payload


# --------------------------------------------------------------------------------------------------
# Evaluations: the sampling fields of every row's request

#: what an evaluation sets on each row's request itself
SET_BY_EVALUATION = ("stream", "messages", "prompt", "n")


class EvaluationParameters(SamplingParams):
    model: Text(512) = None


def model_parameter_problems(params: dict[str, Any]) -> list[Problem]:
    """Every problem of an evaluation's ``model_parameters``, as ``model_parameters.<field>``: a
    wrong one passes the create and fails every row minutes later, so it is refused at create."""
    problems = [
        Problem(f"model_parameters.{key}", "set by the evaluation", "leave it out")
        for key in SET_BY_EVALUATION
        if key in params
    ]
    rest = {k: v for k, v in params.items() if k not in SET_BY_EVALUATION}
    try:
        EvaluationParameters.model_validate(rest)
    except ValidationError as exc:
        allowed = sorted(EvaluationParameters.model_fields)
        for error in exc.errors():
            field = f"model_parameters.{_where(error['loc'])}"
            if error["type"] == "extra_forbidden":
                problems.append(Problem(field, "not a sampling parameter", f"use one of {allowed}"))
            else:
                problems.append(Problem(field, error["msg"]))
    return problems


# --------------------------------------------------------------------------------------------------
# aqua_lab's REST face: the same fields, plus what picks the model, the route and the limits


class _ModelRequest(SamplingParams):
    # messages xor prompt (check_input enforces it), said in the schema so that clients see it
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["messages"], "properties": {"messages": {"type": "array"}, "prompt": {"type": "null"}}},
                {"required": ["prompt"], "properties": {"prompt": {"type": "string"}, "messages": {"type": "null"}}},
            ]
        },
    )

    messages: list[ChatMessage] | None = Field(
        default=None, max_length=MAX_MESSAGES, description="multi-turn chat history"
    )
    prompt: str | None = Field(default=None, description="plain completion prompt (instead of messages)")
    route: ChatRoute | None = Field(
        default=None, description="OpenAI route; default: chat when messages are given, else completions"
    )
    timeouts: Timeouts | None = Field(
        default=None, description="this request's own time limits (seconds); each left out keeps its default"
    )

    def check_input(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise InvalidInput(
                Problem(
                    "messages",
                    "give either messages or prompt",
                    'e.g. "messages": [{"role": "user", "content": "Hello"}]',
                )
            )

    def resolved_route(self) -> str:
        return self.route or ("/v1/chat/completions" if self.messages is not None else "/v1/completions")

    def upstream_body(self, model: str, stream: bool) -> dict[str, Any]:
        body = self.model_dump(exclude_none=True, exclude={"route", "model", "models", "stream", "timeouts"})
        if self.resolved_route() == "/v1/completions":
            body.pop("messages", None)
        else:
            body.pop("prompt", None)
        body.update(model=model, stream=stream)
        return body


class ChatRequest(_ModelRequest):
    """``POST deployments/{id}/chat``: one model of a deployment, by its served name."""

    model: str = Field(
        description="served name (model_name) of a model of the deployment, or the model's id (an OCID on OCI)"
    )
    stream: bool = True


class CompareRequest(_ModelRequest):
    """``POST deployments/{id}/compare``: the same input to several models, streamed side by side."""

    models: list[str] | None = Field(
        default=None,
        min_length=1,
        description="served names (or models' ids, as for chat), each run once; default: every model",
    )
