"""Data Science's catalog as the emulator serves it: model deployment shapes, models and their
defined-metadata artifacts."""

from __future__ import annotations

from typing import Any

from .common import Reply, Request, lookup, public


def list_shapes(h: Any, r: Request) -> None:
    h._send(200, h.emu.state.shapes)


def list_models(h: Any, r: Request) -> None:
    q = r.query
    rows = [
        x
        for x in h.emu.state.models.values()
        if x["compartmentId"] == q.get("compartmentId")
        and (not q.get("displayName") or x["displayName"] == q["displayName"])
        and (not q.get("lifecycleState") or x["lifecycleState"] == q["lifecycleState"])
        and (not q.get("modelVersionSetName") or x.get("modelVersionSetName") == q["modelVersionSetName"])
    ]
    h._send(200, [public(x) for x in rows])


def get_model(h: Any, r: Request, model_id: str) -> None:
    h._send(200, lookup(h.emu.state.models, model_id))


def get_metadatum(h: Any, r: Request, model_id: str, key: str) -> None:
    lookup(h.emu.state.models, model_id)
    data = h.emu.state.metadata_artifacts.get((model_id, key))
    if data is None:
        raise Reply(404, "NotAuthorizedOrNotFound", "No artifact for this metadatum.")
    h._send(200, data, {"content-type": "application/octet-stream"})
