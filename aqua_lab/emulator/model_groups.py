"""Model-group versioning as Data Science serves it: CLONE (a source group plus modifications and
member patches), version histories (``/modelGroupVersionHistory``, singular, as OCI spells it) whose
groups carry ``versionId`` 1, 2, … and ``versionLabel``, and ``PUT /modelGroups/{id}`` (a group
joins a history)."""

from __future__ import annotations

import copy
import json
from typing import Any

from .common import Reply, Request, check_compartment, lookup, now, ocid, public


def join_history(h: Any, group: dict, history_id: str | None) -> None:
    """``group`` becomes the newest version of ``history_id`` (None: stays version 1 of none)."""
    if not history_id:
        return
    history = lookup(h.emu.state.group_histories, history_id)
    versions = [
        g.get("versionId") or 0
        for g in h.emu.state.groups.values()
        if g.get("modelGroupVersionHistoryId") == history_id
    ]
    group["modelGroupVersionHistoryId"] = history_id
    group["modelGroupVersionHistoryName"] = history.get("displayName")
    group["versionId"] = max(versions, default=0) + 1
    history["latestModelGroupId"] = group["id"]
    history["timeUpdated"] = now()


def _check_members(h: Any, members: list[dict]) -> None:
    for member in members:
        if member.get("modelId") not in h.emu.state.models:
            raise Reply(404, "NotAuthorizedOrNotFound", f"Model {member.get('modelId')} not found.")
    keys = [m["inferenceKey"] for m in members if m.get("inferenceKey")]
    if len(keys) != len(set(keys)):
        raise Reply(400, "InvalidParameter", f"Inference keys must be unique within a model group: {keys}.")


def clone(h: Any, request: dict) -> dict:
    """A CLONE create: the source's details and members, then the modifications, REMOVE and INSERT."""
    source_details = request.get("modelGroupCloneSourceDetails") or {}
    if source_details.get("modelGroupCloneSourceType") != "MODEL_GROUP":
        raise Reply(400, "InvalidParameter", "Only modelGroupCloneSourceType MODEL_GROUP is supported here.")
    source = lookup(h.emu.state.groups, source_details.get("sourceId"))
    if source["lifecycleState"] != "ACTIVE":
        raise Reply(409, "IncorrectState", f"The source model group is {source['lifecycleState']}.")
    modify = source_details.get("modifyModelGroupDetails") or {}
    members = copy.deepcopy(source["memberModelEntries"]["memberModelDetails"])
    for item in (source_details.get("patchModelGroupMemberModelDetails") or {}).get("items", []):
        values = item.get("values") or []
        if item.get("operation") == "REMOVE":
            gone = {v["modelId"] for v in values}
            members = [m for m in members if m["modelId"] not in gone]
        elif item.get("operation") == "INSERT":
            members += values
        else:
            raise Reply(400, "InvalidParameter", f"Unknown patch operation {item.get('operation')!r}.")
    _check_members(h, members)
    group = {
        **{k: copy.deepcopy(v) for k, v in source.items() if not k.startswith("_")},
        **{k: v for k, v in modify.items() if k not in ("modelGroupVersionHistoryId",)},
        "compartmentId": request.get("compartmentId") or source["compartmentId"],
        "projectId": request.get("projectId") or source["projectId"],
        "memberModelEntries": {"memberModelDetails": members},
        "id": ocid("datasciencemodelgroup"),
        "createType": "CLONE",
        "sourceModelGroupId": source["id"],
        "timeCreated": now(),
        "timeUpdated": now(),
        "versionId": 1,
    }
    group.pop("modelGroupVersionHistoryId", None)
    group.pop("modelGroupVersionHistoryName", None)
    join_history(h, group, modify.get("modelGroupVersionHistoryId") or source.get("modelGroupVersionHistoryId"))
    return group


def update_group(h: Any, r: Request, group_id: str) -> None:
    request = json.loads(r.body)
    with h.emu._lock:  # joining a history counts its versions: two joins must not count the same
        group = lookup(h.emu.state.groups, group_id)
        for key in ("displayName", "description", "versionLabel", "freeformTags", "definedTags"):
            if key in request:
                group[key] = request[key]
        history = request.get("modelGroupVersionHistoryId")
        if history and history != group.get("modelGroupVersionHistoryId"):
            join_history(h, group, history)
        group["timeUpdated"] = now()
        shown = public(group)
    h._send(200, shown, {"etag": "2"})


def create_history(h: Any, r: Request) -> None:
    request = json.loads(r.body)
    check_compartment(h.emu, request.get("compartmentId"))
    history = {
        **request,
        "id": ocid("datasciencemodelgroupversionhistory"),
        "lifecycleState": "ACTIVE",
        "timeCreated": now(),
        "timeUpdated": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "freeformTags": request.get("freeformTags", {}),
        "definedTags": request.get("definedTags", {}),
    }
    with h.emu._lock:
        h.emu.state.group_histories[history["id"]] = history
        latest = request.get("latestModelGroupId")
        if latest:
            join_history(h, lookup(h.emu.state.groups, latest), history["id"])
    h._send(200, public(history), {"etag": "1"})


def get_history(h: Any, r: Request, history_id: str) -> None:
    h._send(200, public(lookup(h.emu.state.group_histories, history_id)))


def list_histories(h: Any, r: Request) -> None:
    rows = [
        public(x) for x in h.emu.state.group_histories.values() if x["compartmentId"] == r.query.get("compartmentId")
    ]
    h._send(200, rows)
