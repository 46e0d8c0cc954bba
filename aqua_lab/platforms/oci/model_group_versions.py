"""A deployment's model-group versions on OCI (seeds 002 and 003).

An update makes the new group by CLONE of the one the deployment runs (source group, its new
details, and the members to REMOVE and INSERT), in the source's version history — started, at the
first update, with the deployment's first group as version 1.  The deployment then moves to it LIVE
when only the group changes (the running containers load the new members in place), ZDT otherwise
(a zero-downtime replacement of the instances).  A rollback is a LIVE update back to an earlier
version, so no version is deleted while a deployment may still return to it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from ...domain import GroupMember, ModelGroupVersion
from ...errors import NotFound
from .clients import OciClients


def update_type(old_group: Any | None, new_body: Mapping[str, Any], env_change: bool) -> tuple[str, str]:
    """(LIVE or ZDT, why) for moving a deployment from ``old_group`` to the group ``new_body`` makes."""
    new_type = new_body["modelGroupDetails"]["type"]
    old_type = old_group.model_group_details.type if old_group is not None else None
    if env_change:
        return "ZDT", "the environment variables change, so the containers restart: a zero-downtime replacement"
    if old_type is None:
        return "ZDT", "the running model group could not be read, so it is replaced without downtime (ZDT)"
    if old_type != new_type:
        return "ZDT", f"the group changes from {old_type} to {new_type}, so new containers start (ZDT)"
    return "LIVE", (
        f"only the {new_type} model group's members change (same shape, instances and environment): "
        "the running deployment loads them in place"
    )


def _members(group: Any) -> list[dict[str, Any]]:
    rows = getattr(getattr(group, "member_model_entries", None), "member_model_details", None) or []
    return [{"modelId": m.model_id, **({"inferenceKey": m.inference_key} if m.inference_key else {})} for m in rows]


def same_group(old: Any, new_body: Mapping[str, Any]) -> bool:
    """Whether the group ``new_body`` would make is ``old`` again (type, members, metadata): then an
    update changes no group, and a clone would only be a version identical to the live one."""
    details, new = old.model_group_details, new_body["modelGroupDetails"]
    if details.type != new["type"] or getattr(details, "base_model_id", None) != new.get("baseModelId"):
        return False
    old_meta = {m.key: m.value for m in details.custom_metadata_list or []}
    new_meta = {m["key"]: m["value"] for m in new.get("customMetadataList") or []}

    def order(m: Mapping[str, Any]) -> tuple[str, str]:
        return m["modelId"], m.get("inferenceKey") or ""

    new_members = sorted(new_body["memberModelEntries"]["memberModelDetails"], key=order)
    return old_meta == new_meta and sorted(_members(old), key=order) == new_members


def clone_request(create_body: Mapping[str, Any], source: Any, history_id: str | None) -> dict[str, Any]:
    """The CLONE form of ``create_body`` (a CREATE request): ``source``'s group with the new details,
    its members patched into the new ones — a member whose key changes is removed and inserted."""
    old = _members(source)
    new = list(create_body["memberModelEntries"]["memberModelDetails"])
    remove = [m for m in old if m not in new]
    insert = [m for m in new if m not in old or any(r["modelId"] == m["modelId"] for r in remove)]
    items = []
    if remove:
        items.append({"operation": "REMOVE", "values": remove})
    if insert:
        items.append({"operation": "INSERT", "values": insert})
    modify = {
        "displayName": create_body.get("displayName"),
        "description": create_body.get("description"),
        "freeformTags": dict(create_body.get("freeformTags") or {}),
        "modelGroupDetails": copy.deepcopy(create_body["modelGroupDetails"]),
    }
    if history_id:
        modify["modelGroupVersionHistoryId"] = history_id
    source_details: dict[str, Any] = {
        "modelGroupCloneSourceType": "MODEL_GROUP",
        "sourceId": source.id,
        "modifyModelGroupDetails": modify,
    }
    if items:
        source_details["patchModelGroupMemberModelDetails"] = {"items": items}
    return {
        "createType": "CLONE",
        "compartmentId": create_body["compartmentId"],
        "projectId": create_body["projectId"],
        "modelGroupCloneSourceDetails": source_details,
    }


class GroupHistory:
    """Version histories of the groups deployments run.  ``group_of`` reads a group (cached by the
    caller); ``forget`` drops a cached group once it joins a history."""

    def __init__(self, clients: OciClients, group_of: Callable[[str], Any | None], forget: Callable[[str], None]):
        self.c, self.group_of, self.forget = clients, group_of, forget

    def history_of(self, group: Any, deployment_name: str) -> str:
        """The version history ``group`` is in; started (with ``group`` as version 1) when it has none."""
        if group.model_group_version_history_id:
            return group.model_group_version_history_id
        history = self.c.call(
            "create model group version history",
            self.c.ds.create_model_group_version_history,
            self.c.sdk(
                {
                    "compartmentId": group.compartment_id,
                    "projectId": group.project_id,
                    "displayName": f"{deployment_name} (model group versions)"[:255],
                    "description": "aqua_lab: the model-group versions of one deployment, for rollback",
                },
                "CreateModelGroupVersionHistoryDetails",
            ),
        ).data
        self.c.call(
            "add model group to version history",
            self.c.ds.update_model_group,
            group.id,
            self.c.sdk({"modelGroupVersionHistoryId": history.id}, "UpdateModelGroupDetails"),
        )
        self.forget(group.id)
        return history.id

    def versions(self, live_group_id: str) -> list[ModelGroupVersion]:
        """Every version in the history of ``live_group_id`` (itself alone when it has none), oldest first."""
        live = self.group_of(live_group_id)
        if live is None:
            raise NotFound("model group", live_group_id, "the group the deployment runs cannot be read")
        history = live.model_group_version_history_id
        ids = [live_group_id]
        listed: dict[str, str] = {}  # a group's state as listed now: the groups read are cached
        if history:
            rows = self.c.list_all(
                "list model groups",
                self.c.ds.list_model_groups,
                live.compartment_id,
                model_group_version_history_id=history,
            )
            ids = [g.id for g in rows if g.lifecycle_state != "DELETED"] or ids
            listed = {g.id: g.lifecycle_state for g in rows}
        groups = [g for g in (self.group_of(i) for i in ids) if g is not None]
        groups.sort(key=lambda g: (g.version_id or 1, str(g.time_created)))
        return [
            ModelGroupVersion(
                version=g.version_id or 1,
                model_group_id=g.id,
                created_on=str(g.time_created) if g.time_created else None,
                version_label=g.version_label,
                state=listed.get(g.id, g.lifecycle_state),
                live=g.id == live_group_id,
                members=[GroupMember(model_id=m["modelId"], inference_key=m.get("inferenceKey")) for m in _members(g)],
            )
            for g in groups
        ]
