"""The one place domain errors become HTTP responses.

bad JSON → 400; a body or query that does not validate → 422 with every field path and its fix;
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


def to_response(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, ValidationError):
        exc = InvalidInput.from_validation(exc)
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
        return status, {"message": str(exc), "request_id": exc.request_id}
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
