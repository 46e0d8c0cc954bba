"""The one place domain errors become HTTP responses.

bad JSON → 400; a body over the documented size → 413; a body or query that does not validate → 422
with every field path and its fix;
unknown id → 404; a request that clashes with the current state → 409; a full disk → 507; a platform's failure → its
own status with the request id it gave; anything else is a bug → 500 with an id to find in the log.
Never 403 for bad input: 403 means Jupyter's own auth refused the request.
"""

from __future__ import annotations

import errno
import logging
import math
import uuid
from typing import Any

from pydantic import ValidationError
from tornado import web

from ..errors import AquaLabError, Conflict, DiskFull, InvalidInput, NotFound, Unavailable, UpstreamError

log = logging.getLogger("aqua_lab.server")


class BadRequest(AquaLabError):
    """The request cannot even be read (not JSON, not an object)."""


class PayloadTooLarge(BadRequest):
    """The body is over the documented limit (:data:`.limits.MAX_BODY_BYTES`)."""


#: ``Retry-After`` of a 429 whose model server named no wait of its own
DEFAULT_RETRY_AFTER_S = 1.0


def retry_after_header(body: dict[str, Any]) -> str | None:
    """The ``Retry-After`` value (whole seconds, at least 1) for an error body that asks the client
    to wait — every 429 does, so a client's standard back-off works on REST as on the router."""
    wait = body.get("retry_after_s")
    return None if wait is None else str(max(1, math.ceil(wait)))


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
    if isinstance(exc, (NotFound, Conflict)):
        answer: dict[str, Any] = {"message": str(exc)}
        if exc.problem is not None:  # the field that named it, as a 422 names its fields
            answer["errors"] = [exc.problem.as_dict()]
        return 404 if isinstance(exc, NotFound) else 409, answer
    if isinstance(exc, DiskFull):  # 507 Insufficient Storage: free space and retry, nothing is broken
        return 507, {"message": str(exc)}
    if isinstance(exc, Unavailable):
        return 503, {"message": str(exc)}
    if isinstance(exc, UpstreamError):
        status = exc.status if 400 <= exc.status < 600 else 502
        body: dict[str, Any] = {"message": str(exc), "request_id": exc.request_id}
        if status == 429:  # the model's queue is full: say when to come back, as the router said it
            body["retry_after_s"] = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER_S
        if exc.field:
            body["errors"] = [{"field": exc.field, "message": str(exc), "fix": None}]
        return status, body
    if isinstance(exc, AquaLabError):
        return 400, {"message": str(exc)}
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # a write outside the state store and uploads (which say how much is free): still the disk's
        # fault, not a bug, and freeing space is the fix
        where = f" writing {exc.filename}" if exc.filename else ""
        return 507, {"message": f"disk full{where} ({exc.strerror}); free some space and retry"}
    if isinstance(exc, web.HTTPError):
        return exc.status_code, {"message": exc.log_message or exc.reason or "error"}
    request_id = uuid.uuid4().hex[:12]
    log.error("aqua_lab internal error %s", request_id, exc_info=exc)
    return 500, {
        "message": f"internal error (request id {request_id}; details in the server log)",
        "request_id": request_id,
    }
