"""The OCI configuration a user picks in the sidebar, kept for the next JupyterLab start.

Without it OCI needs environment variables (or ``c.AquaLab.oci_*``) set before JupyterLab starts.
The choice is one small JSON file per user under the Jupyter data dir, owner-only like the keys it
points at; the server reads it on every OCI request, so a saved choice takes effect without a
restart, and it overrides the server's own configuration field by field (the user chose it last).
:func:`check` builds the platform from a choice and makes one cheap call, answering which field is
wrong and what to do, before anything is saved.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import AquaLabError, InvalidInput, Problem, UpstreamError

#: the most characters a field of the choice takes (an OCID is ~90, a path rarely over 200)
MAX_FIELD_CHARS = 1024
_REGION = re.compile(r"^[a-z]{2,}-[a-z]+-\d+$")


class OciChoice(BaseModel):
    """What the user picks; empty fields keep the server's configuration (or OCI's default)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    config_file: str | None = Field(default=None, max_length=MAX_FIELD_CHARS, description="default ~/.oci/config")
    profile: str | None = Field(default=None, max_length=MAX_FIELD_CHARS, description="default DEFAULT")
    region: str | None = Field(default=None, max_length=64, description="default: the profile's region")
    compartment_id: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    project_id: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    service_compartment_id: str | None = Field(
        default=None, max_length=MAX_FIELD_CHARS, description="where AQUA's service models are listed from"
    )
    endpoint: str | None = Field(
        default=None, max_length=MAX_FIELD_CHARS, description="one base URL for every OCI call (the emulator)"
    )

    @field_validator("*", mode="after")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value and not _REGION.match(value):
            raise ValueError(f"{value!r} is not an OCI region name; write it as e.g. us-ashburn-1 or eu-frankfurt-1")
        return value

    @field_validator("compartment_id", "service_compartment_id")
    @classmethod
    def _compartment(cls, value: str | None) -> str | None:
        if value and not value.startswith(("ocid1.compartment.", "ocid1.tenancy.")):
            raise ValueError("a compartment OCID starts with ocid1.compartment. (or ocid1.tenancy. for the root)")
        return value

    @field_validator("project_id")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value and not value.startswith("ocid1.datascienceproject."):
            raise ValueError("a Data Science project OCID starts with ocid1.datascienceproject.")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("an endpoint is an http(s) URL, e.g. http://127.0.0.1:8765 for the emulator")
        return value.rstrip("/") if value else value

    def as_settings(self, every: bool = False) -> dict[str, str]:
        """The :class:`~.registry.PlatformSettings` fields this choice sets (``every``: all it can set)."""
        names = {
            "config_file": "oci_config_file",
            "profile": "oci_profile",
            "region": "oci_region",
            "compartment_id": "compartment_id",
            "project_id": "project_id",
            "service_compartment_id": "service_compartment_id",
            "endpoint": "oci_endpoint",
        }
        return {names[k]: v for k, v in self.model_dump().items() if v or every}


class OciCheck(BaseModel):
    """What one cheap call with a choice answered: ``ok``, else the field to fix and how."""

    ok: bool
    message: str
    field: str | None = Field(default=None, description="the choice's field that is wrong, when one is")
    auth: str | None = Field(default=None, description="who we are, e.g. 'api_key in us-ashburn-1'")
    compartment_id: str | None = None
    deployments: int | None = Field(default=None, description="deployments seen in the compartment (at most 1)")


def choice_path() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "aqua_lab" / "oci-platform.json"


def load() -> OciChoice:
    """The saved choice (empty when none is saved); a damaged file is a 422 naming it and the fix."""
    path = choice_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return OciChoice()
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"cannot be read ({type(exc).__name__})") from None
    try:
        return OciChoice.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise _damaged(path, f"is not a valid choice ({str(exc).splitlines()[0][:200]})") from None


def _damaged(path: Path, what: str) -> InvalidInput:
    return InvalidInput(
        Problem(
            "oci_settings",
            f"the saved OCI settings at {path} {what}",
            "save them again from the sidebar or delete the file",
        )
    )


def save(choice: OciChoice) -> Path:
    """Write the choice owner-only, whole or not at all; an empty choice removes the file."""
    path = choice_path()
    if not choice.as_settings():
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(choice.model_dump_json(exclude_none=True, indent=1))
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def check(build: Any) -> OciCheck:
    """``build()`` makes the OCI platform from a choice; build it and list one deployment of the
    compartment (what every sidebar view needs first), naming the field behind any failure."""
    try:
        platform = build()
        rows = platform.clients.call(
            "list deployments", platform.ds.list_model_deployments, platform.settings.compartment_id, limit=1
        ).data
    except InvalidInput as exc:
        problem = exc.problems[0]
        return OciCheck(ok=False, field=problem.field, message=str(problem))
    except UpstreamError as exc:
        return OciCheck(ok=False, field=_upstream_field(exc), message=str(exc))
    except AquaLabError as exc:  # the SDK could not be given credentials
        return OciCheck(ok=False, field=_auth_field(str(exc)), message=str(exc))
    return OciCheck(
        ok=True,
        message=f"connected as {platform.auth.describe()}; compartment {platform.settings.compartment_id} answers",
        auth=platform.auth.describe(),
        compartment_id=platform.settings.compartment_id,
        deployments=len(rows),
    )


def _upstream_field(exc: UpstreamError) -> str | None:
    if exc.status == 401:
        return "profile"  # the profile's key (or fingerprint) is not one OCI knows
    if exc.status == 404:
        return "compartment_id"
    if "cannot reach" in str(exc):
        return "endpoint"
    return None


def _auth_field(message: str) -> str:
    if "no config file" in message:
        return "config_file"
    if "profile [" in message or "security_token" in message:
        return "profile"
    if "region" in message:
        return "region"
    return "config_file"  # the key, fingerprint or user the file names
