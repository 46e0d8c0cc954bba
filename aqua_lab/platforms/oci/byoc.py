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
    for m in deployment.models:
        if wanted in (m.model_name, m.inference_key, m.model_id):
            return m.inference_key or m.model_name
    return wanted if isinstance(wanted, str) else None
