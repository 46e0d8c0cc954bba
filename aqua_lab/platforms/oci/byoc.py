"""Requests to a heterogeneous (bring-your-own-container) model group on OCI: the service hands a
``/predict`` to the member the ``model-key`` header names, and the container answers it on its
model-group API (``/models/{key}/predict``)."""

from __future__ import annotations

import json

from ...domain import Deployment


def model_key(deployment: Deployment, body: bytes) -> str | None:
    """The inference key of the member a chat body's ``model`` names (a served name, a key or an OCID)."""
    try:
        wanted = json.loads(body or b"{}").get("model")
    except (ValueError, AttributeError):
        return None
    if not isinstance(wanted, str):
        return None
    meant = deployment.names_meant(wanted)  # the rule chat and compare resolve ``model`` by
    if len(meant) != 1:
        return wanted
    return deployment.inference_key_of(meant[0]) or meant[0]
