"""What OCI checks of heterogeneous (bring-your-own-container) and CPU flex deployments, and the
model-group API a BYOC container answers (``/health``, ``/models/{id}/health``,
``/models/{id}/predict``), reached here through the deployment's URL."""

from __future__ import annotations

import re
from typing import Any

from . import inference
from .common import Reply, Request, lookup

#: OCI pulls a BYOC container from OCIR only: <region>.ocir.io/<namespace>/<repo>, by tag or digest
_OCIR = re.compile(r"[a-z0-9-]+\.ocir\.io/[^/\s:@]+(/[^/\s:@]+)+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})")


def check_create(h: Any, request: dict, group: dict | None, shape: str) -> None:
    """A 400 for what OCI refuses: a flex shape without its OCPUs and memory (or more than it has),
    a heterogeneous group without its own container image."""
    config = request.get("modelDeploymentConfigurationDetails") or {}
    infra = config.get("infrastructureConfigurationDetails") or config.get("modelConfigurationDetails") or {}
    instance = infra.get("instanceConfiguration") or {}
    if shape.endswith(".Flex"):
        size = instance.get("modelDeploymentInstanceShapeConfigDetails") or {}
        if not size.get("ocpus") or not size.get("memoryInGBs"):
            raise Reply(
                400,
                "InvalidParameter",
                f"{shape} is a flex shape: modelDeploymentInstanceShapeConfigDetails.ocpus and memoryInGBs "
                "are required.",
            )
        offered = next((s for s in h.emu.state.shapes if s["name"] == shape), {})
        if size["ocpus"] > offered.get("coreCount", size["ocpus"]) or size["memoryInGBs"] > offered.get(
            "memoryInGBs", size["memoryInGBs"]
        ):
            raise Reply(
                400,
                "InvalidParameter",
                f"{shape} offers at most {offered['coreCount']} OCPUs and {offered['memoryInGBs']} GB.",
            )
    kind = ((group or {}).get("modelGroupDetails") or {}).get("type")
    env = config.get("environmentConfigurationDetails") or {}
    if kind == "HETEROGENEOUS" and (
        env.get("environmentConfigurationType") != "OCIR_CONTAINER" or not env.get("image")
    ):
        raise Reply(
            400,
            "InvalidParameter",
            "A HETEROGENEOUS model group is deployed on your own container: environmentConfigurationDetails "
            "needs environmentConfigurationType OCIR_CONTAINER and an image.",
        )
    if kind == "HETEROGENEOUS" and not _OCIR.fullmatch(env["image"]):
        raise Reply(
            400,
            "InvalidParameter",
            f"Invalid image {env['image']!r}: a container image must be in OCIR, "
            "<region>.ocir.io/<tenancy namespace>/<repository>:<tag> or @sha256:<digest>.",
        )


def _member(h: Any, deployment_id: str, model_id: str) -> tuple[dict, str]:
    """The deployment and the served name of the member ``model_id`` names (its OCID or inference key)."""
    with h.emu._lock:
        d = lookup(h.emu.state.deployments, deployment_id)
        h.emu._advance(d)
        names = h.emu.served_names(d)
    name = inference._served_name(h, d, model_id, names)
    if name not in names:
        raise Reply(404, "NotAuthorizedOrNotFound", f"Model {model_id} is not a member of this deployment's group.")
    return d, name


def health(h: Any, r: Request, deployment_id: str) -> None:
    with h.emu._lock:
        d = lookup(h.emu.state.deployments, deployment_id)
        h.emu._advance(d)
    ok = d["lifecycleState"] == "ACTIVE"
    h._send(200 if ok else 503, {"status": "healthy" if ok else d["lifecycleState"].lower()})


def model_health(h: Any, r: Request, deployment_id: str, model_id: str) -> None:
    d, name = _member(h, deployment_id, model_id)
    ok = d["lifecycleState"] == "ACTIVE"
    h._send(200 if ok else 503, {"model": name, "status": "healthy" if ok else d["lifecycleState"].lower()})


def model_predict(h: Any, r: Request, deployment_id: str, model_id: str) -> None:
    """``/models/{id}/predict``: the member answers, whatever the body's ``model`` says."""
    _, name = _member(h, deployment_id, model_id)
    h.headers.replace_header("model-key", name) if "model-key" in h.headers else h.headers.add_header("model-key", name)
    inference.predict(h, r, deployment_id)
