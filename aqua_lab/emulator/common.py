"""What every part of the emulator shares: ids, timestamps, the OCI error a route raises, the
request a route answers, and the lookups of the state tables.

A route answer is a function ``(handler, request, **path parameters)``: the handler is the HTTP
plumbing (``_send``, ``headers``, ``emu``, the raw socket for streams), the rest is plain data.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..server.paths import template_pattern

DS = "/20190101"
_ids = itertools.count(1)


def ocid(kind: str) -> str:
    return f"ocid1.{kind}.oc1.iad.emu{next(_ids):04d}{uuid.uuid4().hex[:8]}"


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Reply(Exception):
    """Raised by route code to answer with an OCI error body."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


@dataclass
class Fault:
    """One injected fault: ``status`` (with ``code``), ``delay_s`` before answering, or a predict
    stream dropped after ``drop_after`` events.  Applies to ``count`` matching requests after the
    first ``skip`` ones (a failure part-way through a sequence of calls)."""

    pattern: str
    status: int | None = None
    code: str = "InternalServerError"
    delay_s: float = 0.0
    drop_after: int | None = None
    count: int = 1
    method: str | None = None
    skip: int = 0


@dataclass(frozen=True)
class Request:
    query: dict[str, str]
    body: bytes
    fault: Fault | None


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    answer: Callable[..., None]  # (handler, request, **path parameters)
    locked: bool


def route(method: str, template: str, answer: Callable[..., None], locked: bool = False) -> Route:
    """Each ``{parameter}`` matches one path segment, except ``{name}``: an object name, which
    contains slashes, takes the rest of the path."""
    return Route(method, re.compile(template_pattern(template, {"name": ".+"})), answer, locked)


def ds(method: str, template: str, answer: Callable[..., None]) -> Route:
    """A Data Science route: its state changes one request at a time (under the emulator's lock)."""
    return route(method, DS + template, answer, locked=True)


def lookup(table: dict, ident: str) -> dict:
    if ident not in table or table[ident].get("lifecycleState") == "DELETED":
        raise Reply(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
    return table[ident]


def public(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def check_compartment(emu: Any, compartment_id: str | None) -> None:
    known = emu.compartments
    if known and compartment_id not in known:
        raise Reply(
            404,
            "NotAuthorizedOrNotFound",
            f"Authorization failed or requested resource not found: compartment {compartment_id}.",
        )
