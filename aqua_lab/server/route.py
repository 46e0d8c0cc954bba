"""One row of the REST route table: a verb's path template, handler and contract.

Apart from :mod:`.routes` (the table itself) so that :mod:`.openapi`, which the table's
``openapi.json`` handler calls, can read rows without importing the table back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .limits import MAX_BODY_BYTES
from .paths import template_pattern

if TYPE_CHECKING:
    from .handlers import AquaLabHandler

PARAM_PATTERNS = {"model_id": ".+", "model_ids": ".+"}


def pattern_of(path: str) -> str:
    """The tornado regex of a path template (model ids may contain slashes)."""
    return template_pattern(path, PARAM_PATTERNS)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template under aqua/
    handler: type[AquaLabHandler]
    summary: str
    request: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    #: query parameters: name → description (a string parameter), or → a JSON schema with a description
    query: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    stream: bool = False
    #: the largest body it reads (413 above it)
    body_limit: int = MAX_BODY_BYTES
    #: what a 200 may be besides JSON (a JSONL download, CSV, an HTML report): each is documented
    media_types: tuple[str, ...] = ("application/json",)
    #: a streaming route's Server-Sent Events: event name ("message": unnamed ``data:``) → payload model
    events: dict[str, Any] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        return pattern_of(self.path)
