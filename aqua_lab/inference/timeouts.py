"""How long a model call may take: connect, first byte, between chunks (idle) and in all (total).

Every call to a model (REST chat and compare, the local router to its model servers, evaluation rows,
OCI predict) runs under these four limits.  Each has a default, overridden for the whole process by an
environment variable and for one request by its ``timeouts`` field (REST) or the
:data:`HEADER` the service sends a local router, which applies it to its own upstream call so both
ends give up together.  A model that stays silent past a limit must end the call with a typed error
(:class:`~aqua_lab.errors.ModelTimeout`), never hold it forever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

#: the largest limit a request may ask for (an hour: past it a call is hung, not slow)
MAX_TIMEOUT_S = 3600.0
#: header carrying a request's own limits to a local router (``first_byte_s=2,idle_s=2``)
HEADER = "x-aqua-lab-timeouts"

#: limit → (environment variable, default seconds, what passing it means)
LIMITS = {
    "connect_s": ("AQUA_LAB_CONNECT_TIMEOUT_S", 10.0, "could not be connected to"),
    # a non-streamed answer arrives whole, and a request may wait for a free slot first: generous
    "first_byte_s": ("AQUA_LAB_FIRST_BYTE_TIMEOUT_S", 300.0, "sent nothing"),
    "idle_s": ("AQUA_LAB_IDLE_TIMEOUT_S", 60.0, "stopped sending its answer"),
    "total_s": ("AQUA_LAB_TOTAL_TIMEOUT_S", 900.0, "did not finish its answer"),
}


class Timeouts(BaseModel):
    """A request's own limits, in seconds; a field left out keeps its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S, description="to open the connection")
    first_byte_s: float | None = Field(
        default=None, gt=0, le=MAX_TIMEOUT_S, description="from sending the request to the answer's first byte"
    )
    idle_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S, description="between two chunks of the answer")
    total_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S, description="for the whole call")

    def header(self) -> str | None:
        """The :data:`HEADER` value for the limits this request sets, None when it sets none."""
        given = self.model_dump(exclude_none=True)
        return ",".join(f"{k}={v:g}" for k, v in given.items()) or None

    @classmethod
    def from_header(cls, text: str | None) -> Timeouts | None:
        """Parse :data:`HEADER`; raises ``ValueError`` (or pydantic's) for a malformed one."""
        if not text:
            return None
        pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
        return cls.model_validate({k.strip(): float(v) for k, v in pairs})


@dataclass(frozen=True)
class Limits:
    """The four limits in force for one call."""

    connect_s: float
    first_byte_s: float
    idle_s: float
    total_s: float

    @classmethod
    def defaults(cls) -> Limits:
        """The defaults, with this process's environment variables applied (a malformed or
        non-positive value keeps the default rather than disabling the limit)."""
        return cls(**{name: _from_env(env, default) for name, (env, default, _) in LIMITS.items()})

    def but(self, override: Timeouts | None) -> Limits:
        if override is None:
            return self
        given = override.model_dump(exclude_none=True)
        return Limits(**{**self.__dict__, **given}) if given else self


def _from_env(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if 0 < value <= MAX_TIMEOUT_S else default


def limits(override: Timeouts | None = None) -> Limits:
    return Limits.defaults().but(override)


def timeout_message(model: str, limit: str, seconds: float) -> str:
    """What a user reads when ``model`` passed ``limit``: which limit, and how to change it."""
    env, _, what = LIMITS[limit]
    return (
        f"model {model!r} {what} within {seconds:g} s (the {limit.removesuffix('_s')} time limit); "
        f"if it is only slow, raise it for one request with timeouts.{limit} or for all with {env}; "
        "if it is stuck, see its log or restart the deployment"
    )
