"""The one place domain errors become HTTP responses.

bad JSON → 400; a body over the documented size → 413; a body or query that does not validate → 422
with every field path and its fix;
unknown id → 404; a request that clashes with the current state → 409; a platform's failure → its
own status with the request id it gave; anything else is a bug → 500 with an id to find in the log.
Never 403 for bad input: 403 means Jupyter's own auth refused the request.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import ValidationError
from tornado import web

from ..errors import AquaLabError, Conflict, InvalidInput, NotFound, Unavailable, UpstreamError

log = logging.getLogger("aqua_lab.server")


class BadRequest(AquaLabError):
    """The request cannot even be read (not JSON, not an object)."""


class PayloadTooLarge(BadRequest):
    """The body is over the documented limit (:data:`.limits.MAX_BODY_BYTES`)."""


#: the most of one message an error answer carries (a value echoed back is cut well before this)
MESSAGE_CHARS = 2000


def _capped(text: str | None) -> str | None:
    if text is None or len(text) <= MESSAGE_CHARS:
        return text
    return text[:MESSAGE_CHARS] + f"… ({len(text)} characters in all)"


def to_response(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) for an exception; no message is longer than :data:`MESSAGE_CHARS`."""
    status, body = _response(exc)
    body["message"] = _capped(body["message"])
    for problem in body.get("errors") or []:
        problem.update(message=_capped(problem["message"]), fix=_capped(problem["fix"]))
    return status, body


def _response(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, ValidationError):
        exc = InvalidInput.from_validation(exc)
    if isinstance(exc, PayloadTooLarge):
        return 413, {"message": str(exc)}
    if isinstance(exc, BadRequest):
        return 400, {"message": str(exc)}
    if isinstance(exc, InvalidInput):
        return 422, {"message": str(exc), "errors": [p.as_dict() for p in exc.problems]}
    if isinstance(exc, NotFound):
        return 404, {"message": str(exc)}
    if isinstance(exc, Conflict):
        return 409, {"message": str(exc)}
    if isinstance(exc, Unavailable):
        return 503, {"message": str(exc)}
    if isinstance(exc, UpstreamError):
        status = exc.status if 400 <= exc.status < 600 else 502
        body: dict[str, Any] = {"message": str(exc), "request_id": exc.request_id}
        if exc.field:
            body["errors"] = [{"field": exc.field, "message": str(exc), "fix": None}]
        return status, body
    if isinstance(exc, AquaLabError):
        return 400, {"message": str(exc)}
    if isinstance(exc, web.HTTPError):
        return exc.status_code, {"message": exc.log_message or exc.reason or "error"}
    request_id = uuid.uuid4().hex[:12]
    log.error("aqua_lab internal error %s", request_id, exc_info=exc)
    return 500, {
        "message": f"internal error (request id {request_id}; details in the server log)",
        "request_id": request_id,
    }
