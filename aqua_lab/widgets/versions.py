"""An OCI deployment's model-group versions: each update of its models makes one (by CLONE); a
rollback moves the deployment back to an earlier one in place (a LIVE update)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import ipywidgets as w

from ..domain import Deployment, GroupMember, ModelGroupVersion
from ..errors import AquaLabError
from ..service import AquaLabService
from .common import esc, message


def update_line(version: int, deployment: Deployment) -> str:
    """What the server says a rollback did: its update type and why."""
    update = deployment.update
    if update is None:
        return f"Rolled back to version {version}."
    return f"Rolled back to version {update.version or version}: {update.update_type} update — {update.reason}"


def _created(v: ModelGroupVersion) -> str:
    if not v.created_on:
        return "—"
    try:
        return datetime.fromisoformat(v.created_on.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return v.created_on


def _member(m: GroupMember, names: dict[str, str]) -> str:
    name = esc(names[m.model_id]) if m.model_id in names else f"<code>{esc(m.model_id)}</code>"
    key = f" · key {esc(m.inference_key)}" if m.inference_key else ""
    return f"<span title='{esc(m.model_id)}'>{name}</span>{key}"


def versions_table(versions: list[ModelGroupVersion], names: dict[str, str] | None = None) -> str:
    """Newest first (what an update just made is on top), the live one marked."""
    rows = "".join(
        f"<tr data-version='{v.version}'><td title='{esc(v.model_group_id)}'>v{v.version}</td>"
        f"<td>{esc(_created(v))}</td>"
        f"<td>{'<br>'.join(_member(m, names or {}) for m in v.members)}</td>"
        f"<td>{'<b>live</b>' if v.live else ''}</td></tr>"
        for v in reversed(versions)
    )
    return (
        "<table class='aqua-versions' style='width:100%'><tr><th>version</th><th>created</th><th>members</th>"
        f"<th>live</th></tr>{rows}</table>"
    )


class VersionsPanel(w.VBox):
    """The version history of one deployment, and a rollback to a chosen earlier version (a second
    click confirms); the answer's update type and reason, or the refusal beside the button."""

    def __init__(
        self,
        service: AquaLabService,
        deployment_id: str,
        on_changed: Callable[[], None] | None = None,
        **kwargs,
    ):
        self.service, self.deployment_id, self.on_changed = service, deployment_id, on_changed
        self.table = w.HTML()
        self.choice = w.Dropdown(description="Version")
        self.rollback_button = w.Button(description="Roll back to this version", icon="undo", button_style="warning")
        self.error = w.HTML()  # next to the button: what refused the rollback
        self.answer = w.HTML()
        self.pending: int | None = None  # the version waiting for its confirming click
        self.versions: list[ModelGroupVersion] = []
        self.rollback_button.on_click(lambda _: self.rollback())
        self.choice.observe(lambda _: self._unconfirm(), names="value")
        self.action_row = w.HBox([self.choice, self.rollback_button, self.error])
        super().__init__(
            [w.HTML(f"<b>Versions of {esc(deployment_id)}</b>"), self.table, self.action_row, self.answer], **kwargs
        )
        self.refresh()

    def refresh(self) -> None:
        try:
            self.versions = self.service.deployment_versions(self.deployment_id)
        except AquaLabError as exc:
            self.table.value = message(str(exc), "error")
            self.action_row.layout.display = "none"
            return
        try:  # the catalog names the members; without it they show as OCIDs rather than not at all
            names = {m.id: m.name for m in self.service.models()}
        except AquaLabError:
            names = {}
        self.table.value = versions_table(self.versions, names)
        earlier = [v for v in reversed(self.versions) if not v.live]
        self.choice.options = [(f"v{v.version} ({_created(v)})", v.version) for v in earlier]
        self.choice.value = earlier[0].version if earlier else None
        # nothing to go back to: no button that could only be refused
        self.action_row.layout.display = None if earlier else "none"
        if not earlier:
            self.answer.value = self.answer.value or message(
                "Only one version so far: update the models to make another."
            )

    def _unconfirm(self) -> None:
        self.pending = None
        self.rollback_button.description = "Roll back to this version"

    def rollback(self) -> None:
        version = self.choice.value
        self.error.value = ""
        if version is None:
            self.error.value = message("Pick a version first.", "warning")
            return
        if self.pending != version:
            self.pending = version
            self.rollback_button.description = f"Confirm: roll back to v{version}"
            self.error.value = message(f"Click again to roll back to version {version}.", "warning")
            return
        self._unconfirm()
        try:
            deployment = self.service.rollback(self.deployment_id, version)
        except AquaLabError as exc:
            self.refresh()  # a refusal often means this view is stale: another front moved the deployment
            shown = self.action_row.layout.display != "none"
            (self.error if shown else self.answer).value = message(str(exc), "error")
            return
        self.answer.value = message(update_line(version, deployment), "ok")
        self.refresh()
        if self.on_changed is not None:
            self.on_changed()
