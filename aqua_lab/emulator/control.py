"""Unsigned control API for manual runs, so every case can be tried without Python (``POST`` only):

- ``/_emulator/faults``: a :class:`~.common.Fault` as JSON;
- ``/_emulator/models``: ``display_name``, ``compartment_id``, optional ``tags``, ``custom``,
  ``deployment_config`` → ``{"id"}``;
- ``/_emulator/fail_next_deployment``: ``{"reason": …}``;
- ``/_emulator/compartments``: ``{"id": …}`` (once any is known, others are NotAuthorizedOrNotFound);
- ``/_emulator/metric``: ``{"deployment_id", "metric", "value"}`` (what autoscaling reacts to);
- ``/_emulator/objects``: ``{"bucket", "name", "text"}`` (e.g. an evaluation dataset);
- ``/_emulator/jobs``: ``{"start_delay_s", "row_delay_s"}`` (slow evaluation runs down).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import scaling
from .common import Reply, lookup

Emulator = Any  # the .server's Emulator (importing it here would close a circle)


def _faults(emu: Emulator, args: dict) -> Any:
    return emu.inject(**args).__dict__


def _bad(field: str, what: str) -> Reply:
    return Reply(400, "InvalidParameter", f"{field}: {what}")


def _models(emu: Emulator, args: dict) -> Any:
    for field in ("display_name", "compartment_id"):
        if not isinstance(args.get(field), str) or not args[field]:
            raise _bad(field, "required, a non-empty string")
    for field in ("tags", "custom"):  # each becomes the model's tags or custom metadata, key → text
        value = args.get(field)
        if value is not None and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            raise _bad(field, 'an object of strings, e.g. {"artifact_location": "oci://bucket@namespace/prefix"}')
    if args.get("deployment_config") is not None and not isinstance(args["deployment_config"], dict):
        raise _bad("deployment_config", "an object (a deployment_config.json)")
    with emu._lock:
        model_id = emu.add_model(
            args["display_name"],
            args["compartment_id"],
            deployment_config=args.get("deployment_config"),
            tags=args.get("tags"),
            custom=args.get("custom"),
        )
    return {"id": model_id}


def _fail_next_deployment(emu: Emulator, args: dict) -> Any:
    emu.fail_next_deployment(*([args["reason"]] if args.get("reason") else []))
    return {"ok": True}


def _compartments(emu: Emulator, args: dict) -> Any:
    emu.compartments.add(args["id"])
    return {"compartments": sorted(emu.compartments)}


def _objects(emu: Emulator, args: dict) -> Any:
    if args.get("namespace", emu.namespace) != emu.namespace:
        raise Reply(
            400,
            "InvalidParameter",
            f"The tenancy's Object Storage namespace is {emu.namespace!r}, not {args['namespace']!r}.",
        )
    emu.put_object(args["bucket"], args["name"], args["text"].encode())
    return {"uri": f"oci://{args['bucket']}@{emu.namespace}/{args['name']}"}


def _jobs(emu: Emulator, args: dict) -> Any:
    emu.job_start_delay_s = float(args.get("start_delay_s", emu.job_start_delay_s))
    emu.job_row_delay_s = float(args.get("row_delay_s", emu.job_row_delay_s))
    return {"start_delay_s": emu.job_start_delay_s, "row_delay_s": emu.job_row_delay_s}


def _metric(emu: Emulator, args: dict) -> Any:
    with emu._lock:
        d = lookup(emu.state.deployments, args.get("deployment_id", ""))
        return scaling.metric_crossed(d, args.get("metric", ""), float(args["value"]))


CONTROLS: dict[str, Callable[[Emulator, dict], Any]] = {
    "/_emulator/faults": _faults,
    "/_emulator/models": _models,
    "/_emulator/fail_next_deployment": _fail_next_deployment,
    "/_emulator/compartments": _compartments,
    "/_emulator/objects": _objects,
    "/_emulator/jobs": _jobs,
    "/_emulator/metric": _metric,
}


def control(h: Any, path: str, body: bytes) -> None:
    answer = CONTROLS.get(path)
    if h.command != "POST" or answer is None:
        return h._error(404, "NotFound", "unknown control path")
    try:
        args = json.loads(body or b"{}")
    except ValueError as exc:
        raise Reply(400, "InvalidParameter", f"body: not JSON ({exc})") from None
    if not isinstance(args, dict):
        raise _bad("body", "a JSON object")
    try:
        reply = answer(h.emu, args)
    except KeyError as exc:  # a field the control needs is missing: a 400, never a dropped connection
        raise _bad(str(exc.args[0]), "required") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise Reply(400, "InvalidParameter", f"body: {exc}") from None
    h._send(200, reply)
