"""Data Science's model groups, model deployments (their lifecycle and per-model states) and the work
requests that track them, as the emulator serves them."""

from __future__ import annotations

import json
from typing import Any

from . import byoc, model_groups, scaling
from .common import Reply, Request, check_compartment, lookup, now, ocid, public


def create_group(h: Any, r: Request) -> None:
    s = h.emu.state
    request = json.loads(r.body)
    check_compartment(h.emu, request.get("compartmentId"))
    if request.get("createType") == "CLONE":
        with h.emu._lock:  # its versionId is counted from the groups stored: count and store as one
            return _store_group(h, model_groups.clone(h, request))
    group_id = ocid("datasciencemodelgroup")
    for member in request.get("memberModelEntries", {}).get("memberModelDetails", []):
        if member["modelId"] not in s.models:
            raise Reply(404, "NotAuthorizedOrNotFound", f"Model {member['modelId']} not found.")
    group = {
        **{k: v for k, v in request.items() if k != "createType"},
        "id": group_id,
        "lifecycleState": "ACTIVE",
        "timeCreated": now(),
        "timeUpdated": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "createType": "CREATE",
        "versionId": 1,
        "definedTags": request.get("definedTags", {}),
        "freeformTags": request.get("freeformTags", {}),
    }
    with h.emu._lock:
        model_groups.join_history(h, group, request.get("modelGroupVersionHistoryId"))
        _store_group(h, group)


def _store_group(h: Any, group: dict) -> None:
    s, emu = h.emu.state, h.emu
    s.groups[group["id"]] = group
    wr = emu._work_request("MODEL_GROUP_CREATE", group["compartmentId"], group["id"], "modelGroup")
    s.work_requests[wr].update(status="SUCCEEDED", percentComplete=100.0, timeFinished=now())
    h._send(200, public(group), {"opc-work-request-id": wr, "etag": "1"})


def get_group(h: Any, r: Request, group_id: str) -> None:
    h._send(200, lookup(h.emu.state.groups, group_id))


def delete_group(h: Any, r: Request, group_id: str) -> None:
    group = lookup(h.emu.state.groups, group_id)
    # a group may serve several deployments (each is created from a group id); one still in use
    # is refused, as OCI refuses to delete a model a deployment uses
    users = [
        d["id"]
        for d in h.emu.state.deployments.values()
        if d["lifecycleState"] != "DELETED"
        and group_id
        in (
            (d["modelDeploymentConfigurationDetails"].get("modelGroupConfigurationDetails") or {}).get("modelGroupId"),
            d.get("_next_group"),
        )
    ]
    if users:
        raise Reply(409, "IncorrectState", f"The model group is used by model deployment(s) {', '.join(users)}.")
    group["lifecycleState"] = "DELETED"
    h._send(204)


def list_groups(h: Any, r: Request) -> None:
    rows = [
        public(g)
        for g in h.emu.state.groups.values()
        if g["compartmentId"] == r.query.get("compartmentId")
        and g["lifecycleState"] != "DELETED"
        and r.query.get("modelGroupVersionHistoryId") in (None, g.get("modelGroupVersionHistoryId"))
    ]
    h._send(200, rows)


def create_deployment(h: Any, r: Request) -> None:
    _create(h, json.loads(r.body))


def _create(h: Any, request: dict) -> None:
    s, emu = h.emu.state, h.emu
    check_compartment(h.emu, request.get("compartmentId"))
    config = request.get("modelDeploymentConfigurationDetails") or {}
    kind = config.get("deploymentType")
    if kind == "MODEL_GROUP":
        group_id = config.get("modelGroupConfigurationDetails", {}).get("modelGroupId")
        if group_id not in s.groups:
            raise Reply(404, "NotAuthorizedOrNotFound", f"Model group {group_id} not found.")
        shape = config["infrastructureConfigurationDetails"]["instanceConfiguration"]["instanceShapeName"]
    elif kind == "SINGLE_MODEL":
        model_id = config["modelConfigurationDetails"]["modelId"]
        lookup(s.models, model_id)
        shape = config["modelConfigurationDetails"]["instanceConfiguration"]["instanceShapeName"]
    else:
        raise Reply(400, "InvalidParameter", f"deploymentType {kind!r} is not supported here.")
    if s.shapes and shape not in {x["name"] for x in s.shapes}:
        raise Reply(400, "InvalidParameter", f"Shape {shape} is not available for model deployment.")
    byoc.check_create(h, request, s.groups.get(group_id) if kind == "MODEL_GROUP" else None, shape)
    deployment_id = ocid("datasciencemodeldeployment")
    fail = getattr(emu, "_fail_next", None)
    emu._fail_next = None
    deployment = {
        **request,
        "id": deployment_id,
        "lifecycleState": "CREATING",
        "lifecycleDetails": "Creating",
        "timeCreated": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "modelDeploymentUrl": f"{emu.url}/{deployment_id}",
        "definedTags": request.get("definedTags", {}),
        "freeformTags": request.get("freeformTags", {}),
        "_pending": "FAILED" if fail else "ACTIVE",
        "_fail_reason": fail,
    }
    try:
        scaling.on_create(deployment)
    except scaling.Invalid as exc:
        raise Reply(400, "InvalidParameter", exc.message) from None
    deployment["_wr"] = emu._work_request(
        "MODEL_DEPLOYMENT_CREATE", request["compartmentId"], deployment_id, "modelDeployment"
    )
    s.deployments[deployment_id] = deployment
    h._send(200, public(deployment), {"opc-work-request-id": deployment["_wr"], "etag": "1"})


def list_deployments(h: Any, r: Request) -> None:
    check_compartment(h.emu, r.query.get("compartmentId"))
    rows = []
    for d in h.emu.state.deployments.values():
        h.emu._advance(d)
        if d["compartmentId"] == r.query.get("compartmentId") and d["lifecycleState"] != "DELETED":
            rows.append(public(d))
    h._send(200, rows)


def get_deployment(h: Any, r: Request, deployment_id: str) -> None:
    # OCI still answers a deleted deployment's GET, DELETED, for a while (what a waiter sees)
    d = h.emu.state.deployments.get(deployment_id)
    if d is None:
        raise Reply(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
    h.emu._advance(d)
    h._send(200, public(d), {"etag": "1"})


def delete_deployment(h: Any, r: Request, deployment_id: str) -> None:
    d = lookup(h.emu.state.deployments, deployment_id)
    _transition(h, d, "DELETING", "DELETED", "MODEL_DEPLOYMENT_DELETE")


def update_deployment(h: Any, r: Request, deployment_id: str) -> None:
    _update(h, lookup(h.emu.state.deployments, deployment_id), json.loads(r.body))


def _update(h: Any, d: dict, request: dict) -> None:
    if d["lifecycleState"] not in ("ACTIVE", "NEEDS_ATTENTION"):
        raise Reply(409, "IncorrectState", f"The deployment is {d['lifecycleState']}; it cannot be updated.")
    config = request.get("modelDeploymentConfigurationDetails") or {}
    new_group = (config.get("modelGroupConfigurationDetails") or {}).get("modelGroupId")
    if new_group and new_group not in h.emu.state.groups:
        raise Reply(404, "NotAuthorizedOrNotFound", f"Model group {new_group} not found.")
    changed = _changed_beyond_group(d, config)
    if config.get("updateType") == "LIVE" and changed:
        # seed 002: "update type = LIVE is only supported for updating the model group alone"
        raise Reply(400, "InvalidParameter", f"A LIVE update changes only the model group, not {changed}.")
    env_update = config.get("environmentConfigurationDetails") or {}
    if "environmentVariables" in env_update:
        current = d["modelDeploymentConfigurationDetails"].setdefault("environmentConfigurationDetails", {})
        current["environmentVariables"] = env_update["environmentVariables"]
    try:
        scaling.on_update(d, config)
    except scaling.Invalid as exc:
        raise Reply(400, "InvalidParameter", exc.message) from None
    for key in ("displayName", "description", "freeformTags", "definedTags"):
        if key in request:
            d[key] = request[key]
    if new_group:
        d["_next_group"] = new_group
    # a LIVE update keeps serving: the state stays ACTIVE while the work request runs; so does a
    # change of the deployment's own fields alone (name, description, tags)
    live = config.get("updateType") == "LIVE" or not config
    d["_pending"], d["_polls"] = "ACTIVE", 0
    d["lifecycleState"] = "ACTIVE" if live else "UPDATING"
    d["_wr"] = h.emu._work_request("MODEL_DEPLOYMENT_UPDATE", d["compartmentId"], d["id"], "modelDeployment")
    h._send(202, None, {"opc-work-request-id": d["_wr"]})


def _changed_beyond_group(d: dict, config: dict) -> str | None:
    """What an update changes besides the group (ADS sends the unchanged shape and environment
    with a LIVE update too: only a difference counts)."""
    current = d["modelDeploymentConfigurationDetails"]
    env = (config.get("environmentConfigurationDetails") or {}).get("environmentVariables")
    if env is not None and env != (current.get("environmentConfigurationDetails") or {}).get("environmentVariables"):
        return "environmentConfigurationDetails"
    shape = ((config.get("infrastructureConfigurationDetails") or {}).get("instanceConfiguration") or {}).get(
        "instanceShapeName"
    )
    now_shape = current.get("infrastructureConfigurationDetails", {}).get("instanceConfiguration", {})
    if shape is not None and shape != now_shape.get("instanceShapeName"):
        return "infrastructureConfigurationDetails"
    return None


def activate(h: Any, r: Request, deployment_id: str) -> None:
    d = lookup(h.emu.state.deployments, deployment_id)
    if d["lifecycleState"] != "INACTIVE":
        raise Reply(409, "IncorrectState", f"The deployment is {d['lifecycleState']}, not INACTIVE.")
    _transition(h, d, "UPDATING", "ACTIVE", "MODEL_DEPLOYMENT_ACTIVATE")


def deactivate(h: Any, r: Request, deployment_id: str) -> None:
    d = lookup(h.emu.state.deployments, deployment_id)
    if d["lifecycleState"] not in ("ACTIVE", "NEEDS_ATTENTION", "FAILED"):
        raise Reply(409, "IncorrectState", f"The deployment is {d['lifecycleState']}; it cannot be deactivated.")
    _transition(h, d, "UPDATING", "INACTIVE", "MODEL_DEPLOYMENT_DEACTIVATE")


def model_states(h: Any, r: Request, deployment_id: str) -> None:
    h._send(200, _model_states(h, lookup(h.emu.state.deployments, deployment_id)))


def _model_states(h: Any, d: dict) -> list[dict]:
    config = d["modelDeploymentConfigurationDetails"]
    state = {"ACTIVE": "SUCCESS", "FAILED": "FAILED"}.get(d["lifecycleState"], "INCONSISTENT")
    if config.get("deploymentType") != "MODEL_GROUP":
        model_id = config["modelConfigurationDetails"]["modelId"]
        return [
            {
                "modelId": model_id,
                "displayName": h.emu.state.models[model_id]["displayName"],
                "state": state,
                "freeformTags": {},
                "definedTags": {},
            }
        ]
    group = h.emu.state.groups[config["modelGroupConfigurationDetails"]["modelGroupId"]]
    return [
        {
            "modelId": member["modelId"],
            "inferenceKey": member.get("inferenceKey"),
            "displayName": h.emu.state.models.get(member["modelId"], {}).get("displayName"),
            "state": state,
            "freeformTags": {},
            "definedTags": {},
        }
        for member in group["memberModelEntries"]["memberModelDetails"]
    ]


def _transition(h: Any, d: dict, now_state: str, then: str, operation: str) -> None:
    d["lifecycleState"], d["_pending"], d["_polls"] = now_state, then, 0
    d["_wr"] = h.emu._work_request(operation, d["compartmentId"], d["id"], "modelDeployment")
    h._send(202, None, {"opc-work-request-id": d["_wr"]})


def list_work_requests(h: Any, r: Request) -> None:
    q = r.query
    rows = [
        public(w)
        for w in h.emu.state.work_requests.values()
        if w["compartmentId"] == q.get("compartmentId") and (not q.get("resourceId") or w["_target"] == q["resourceId"])
    ]
    h._send(200, rows)


def get_work_request(h: Any, r: Request, work_request_id: str) -> None:
    wr = lookup(h.emu.state.work_requests, work_request_id)
    target = h.emu.state.deployments.get(wr["_target"])
    if target is not None:
        h.emu._advance(target)
    h._send(200, public(wr))
