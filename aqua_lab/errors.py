"""Typed errors shared by every layer.

Fronts map these to their own vocabulary in one place each (HTTP codes in the server, exit codes in
the CLI, an in-place message in the widgets).  Every message names the field at fault and how to fix
it, so a user never has to read a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a field path such as ``models[1].gpu_count``), what, and
    what to do about it."""

    field: str
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{text} — {self.fix}" if self.fix else text

    def as_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "message": self.message, "fix": self.fix}


class AquaLabError(Exception):
    """Base of every error aqua_lab raises on purpose."""


#: how much of a value a message repeats back (a 1 MB name must not come back twice in a 422)
SHOWN_CHARS = 80


def shown(value: object, limit: int = SHOWN_CHARS, tail: bool = False) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long the whole was; ``tail`` keeps the
    end instead (a path: its file name is what the reader needs)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as written"
    return f"({size}) …{text[-limit:]}" if tail else f"{text[:limit]}… ({size})"


def json_path(loc: Sequence[str | int]) -> str:
    """A pydantic error location as a JSON path: ``$.configuration["VM.GPU.A10.2"].multi_model_deployment[0]``."""
    path = "$"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


#: what to write instead, for pydantic's error types (its message says what is wrong, not what to do)
_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "an object",
    "list": "a list",
}


def _message_of(error: dict) -> str:
    """pydantic's message without the "Value error, " / "Assertion failed, " it puts before a
    validator's own words: those already say what is wrong and what to do."""
    raised = (error.get("ctx") or {}).get("error")
    if error["type"] in ("value_error", "assertion_error") and str(raised or ""):
        return str(raised)
    return error["msg"]


def _fix_for(error: dict) -> str | None:
    kind, ctx = error["type"], error.get("ctx") or {}
    base = kind.split("_")[0]
    if kind == "missing":
        return "add it"
    if kind == "extra_forbidden":
        return "remove it, or check its spelling: it is not a field of this request"
    if kind.endswith(("_type", "_parsing")) and base in _TYPE_WORDS:
        return f"give {_TYPE_WORDS[base]}"
    if kind in ("literal_error", "enum"):
        return f"use one of {ctx.get('expected', 'the listed values')}"
    bounds = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}
    if kind in bounds:
        sign = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}[bounds[kind]]
        return f"use a value {sign} {ctx.get(bounds[kind])}"
    unit = "character" if kind.startswith("string") else "item"
    if kind in ("string_too_short", "too_short"):
        n = ctx.get("min_length")
        return f"give at least {n} {unit}{'s' * (n != 1)}"
    if kind in ("string_too_long", "too_long"):
        n = ctx.get("max_length")
        return f"give at most {n} {unit}{'s' * (n != 1)}"
    if kind in ("json_invalid", "json_type"):
        return "send valid JSON"
    return None  # custom validators' messages already say what to do


class InvalidInput(AquaLabError):
    """The caller gave something we cannot use.  Carries every problem found, not only the first."""

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> InvalidInput:
        """Each pydantic error as a problem on its field path (``models[0].gpu_count``), written the
        way the front names fields (``prefix``: ``--`` for CLI options)."""
        problems = []
        for error in exc.errors():
            path = json_path(error["loc"]).removeprefix("$").removeprefix(".")
            problems.append(Problem(f"{prefix}{path}" if path else "body", _message_of(error), _fix_for(error)))
        return cls(problems)

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        if not self.problems:
            raise ValueError("InvalidInput needs at least one problem")
        super().__init__(self._summary())

    def _summary(self) -> str:
        first = str(self.problems[0])
        more = len(self.problems) - 1
        return first if not more else f"{first} (and {more} more problem{'s' * (more > 1)})"

    def details(self) -> str:
        return "\n".join(f"- {p}" for p in self.problems)


class ConfigFileError(InvalidInput):
    """A ``deployment_config.json`` (or similar file) that cannot be parsed or does not fit its
    schema.  ``source`` names the file; each problem's field is a JSON path such as
    ``$.configuration["VM.GPU.A10.2"].multi_model_deployment[0].gpu_count``."""

    def __init__(
        self,
        source: str,
        problems: list[Problem] | Problem,
        line: int | None = None,
        column: int | None = None,
    ):
        self.source = source
        self.line = line
        self.column = column
        super().__init__(problems)

    def _summary(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", line {self.line}, column {self.column}"
        return f"{where}: {super()._summary()}"


class NotFound(AquaLabError):
    """An id (model, shape, deployment, evaluation) that does not exist where we looked."""

    def __init__(self, kind: str, ident: str, hint: str | None = None, field: str | None = None):
        self.kind = kind
        self.ident = ident
        self.hint = hint
        message = f"unknown {kind} {shown(ident)}"
        # ``field``: the request field that named the id, so a 404 says which input to correct
        self.problem = Problem(field, message, hint) if field else None
        super().__init__(str(self.problem) if self.problem else f"{message} — {hint}" if hint else message)


class Conflict(AquaLabError):
    """The request is valid but clashes with the current state (e.g. deleting a deployment that is
    still being created).  Given a :class:`Problem`, it names the field that clashes and the fix."""

    def __init__(self, message: str | Problem):
        self.problem = message if isinstance(message, Problem) else None
        super().__init__(str(message))


class Unsupported(Conflict):
    """The platform cannot do this at all (not "not now"): e.g. the bundled catalog deploying, or
    the local platform submitting evaluation jobs.  A clash with what the platform is, hence 409."""

    def __init__(self, platform: str, message: str):
        self.platform = platform
        super().__init__(message)


class Unavailable(AquaLabError):
    """Something this machine needs is missing or unreadable (the local engine not built yet, the state
    file unreadable); the message says what to do.  Servers answer 503."""


class DiskFull(Unavailable):
    """A write failed for want of space (or inodes) where ``directory`` lives.  Nothing is broken and
    nothing needs discarding: freeing space is the fix, and reads go on meanwhile.  Servers answer 507
    (:mod:`aqua_lab.disk_space` measures what is free)."""

    def __init__(self, directory: str, free_bytes: int, needed_bytes: int):
        self.directory = directory
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes
        super().__init__(
            f"disk full: {directory} has {_size(free_bytes)} free; free some space (about {_size(needed_bytes)} needed)"
        )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


class UpstreamError(AquaLabError):
    """A platform (OCI or a local model server) refused or failed a call.  ``field`` is the request
    field the platform named as wrong, if it named one; ``retry_after`` the seconds it asked a busy
    client to wait (its ``Retry-After``), passed on to ours."""

    def __init__(
        self,
        message: str,
        status: int = 502,
        request_id: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ):
        self.status = status
        self.request_id = request_id
        self.field = field
        self.retry_after = retry_after
        suffix = f" (request id {request_id})" if request_id else ""
        super().__init__(message + suffix)


class ModelTimeout(UpstreamError):
    """A model passed one of its time limits (``limit``: connect_s, first_byte_s, idle_s or total_s;
    see :mod:`aqua_lab.inference.timeouts`).  Servers answer 504; mid-stream it is an ``event: error``."""

    def __init__(self, message: str, model: str, limit: str, seconds: float):
        self.model = model
        self.limit = limit
        self.seconds = seconds
        super().__init__(message, 504)
