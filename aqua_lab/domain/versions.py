"""Model-group versions of a deployment (seeds 002/003): each update makes a new group version by
CLONE, the deployment runs one of them, and a rollback is an update back to an earlier one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UpdateType = Literal["LIVE", "ZDT", "NONE"]


class DeploymentUpdate(BaseModel):
    """How an update (or a rollback) was carried out, and why that way."""

    update_type: UpdateType = Field(
        description=(
            "LIVE: the running deployment loads the new group in place; ZDT: a zero-downtime replacement; "
            "NONE: only the deployment's own fields (name, description) change, no new group version"
        )
    )
    reason: str = Field(description="why this update type was chosen")
    model_group_id: str = Field(description="the group the deployment moves to")
    version: int | None = Field(default=None, description="that group's version in the deployment's history")


class GroupMember(BaseModel):
    model_id: str
    inference_key: str | None = None


class ModelGroupVersion(BaseModel):
    """One version of a deployment's model group, oldest first in a listing."""

    version: int
    model_group_id: str
    created_on: str | None = None
    version_label: str | None = None
    state: str | None = None
    live: bool = Field(default=False, description="the version the deployment runs now")
    members: list[GroupMember] = Field(default_factory=list)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version to go back to (see deployments/{id}/versions)")
