"""What one REST request may ask of the server, in one place: ``openapi.json`` documents these
numbers and the handlers enforce them, so a client can read the limit it hit."""

from __future__ import annotations

#: ``GET deployments/{id}/logs?lines=`` takes 0 … this many lines (the service's limit, for every front)
from ..service import MAX_LOG_LINES  # noqa: F401 (documented here beside the other limits)

#: a request body larger than this is refused with 413 before it is parsed (chat prompts included:
#: a local model server takes at most the same, and 1 MiB of text is far past any model's context)
MAX_BODY_BYTES = 1024 * 1024
#: ``POST evaluations/datasets`` takes a body up to this (a JSONL dataset as JSON text); a larger
#: dataset is given as a path on the server's machine instead
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: JSON nested deeper than this is refused with 400 (Python's parser would hit its recursion limit)
MAX_JSON_DEPTH = 64
DEFAULT_LOG_LINES = 200
