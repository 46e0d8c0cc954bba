"""What an error line adds when the platform may be why it failed: the catalog that knows a model
this platform does not, or — when nothing on the command line chose the platform — which one ran.

An option's bad value is the option's fault on every platform, so it gets no note."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import AquaLabError, InvalidInput, NotFound, Unavailable, Unsupported, UpstreamError, shown
from ..service import PLATFORMS, AquaLabService
from .common import PLATFORM_ENV, json_arg, model_ids

#: errors another platform would not have given: an id it may know, its auth, its availability
PLATFORM_CAUSES = (NotFound, Unavailable, UpstreamError, Unsupported)


def platform_note(args: argparse.Namespace, exc: AquaLabError) -> str:
    if not _platform_may_be_why(exc):
        return ""
    known = _known_to_bundled(args, str(exc) + "".join(str(p) for p in getattr(exc, "problems", [])))
    if known:
        names = " and ".join(known)
        verb, it = ("is", "it") if len(known) == 1 else ("are", "them")
        return (
            f" ({names} {verb} in the bundled catalog of OCI's service models, not on this machine: "
            f"pass --platform bundled to plan with {it}, --platform oci to deploy {it})"
        )
    if getattr(args, "platform_reason", None) == "default" and args.platform == "local":
        return (
            f" (ran on the local platform, this verb's default: for OCI pass --platform oci or set {PLATFORM_ENV}=oci)"
        )
    return ""


def say_which_platform(args: argparse.Namespace) -> None:
    """One line on stderr naming the platform that answered a listing, when nothing the user gave
    chose it: an empty local list must not pass for "nothing on OCI"."""
    if getattr(args, "platform_reason", None) in ("--platform", PLATFORM_ENV):
        return
    why = "an OCID was given" if args.platform_reason == "an OCID given" else "this verb's default"
    others = [p for p in PLATFORMS if p != args.platform]
    example = "oci" if "oci" in others else others[0]
    print(
        f"aqua-lab: note: answered by the {args.platform} platform ({why}); to ask another: "
        f"--platform {'|'.join(others)}, or export {PLATFORM_ENV}={example}",
        file=sys.stderr,
    )


def _platform_may_be_why(exc: AquaLabError) -> bool:
    if isinstance(exc, PLATFORM_CAUSES):
        return True
    # an id this platform does not know ("unknown model 'x'", "unknown shape 'y'"), not a bad value
    return isinstance(exc, InvalidInput) and any(p.message.startswith("unknown ") for p in exc.problems)


def _given_models(args: argparse.Namespace) -> list[str]:
    """The model ids on the command line (--model_ids, --models, --primary_model_id)."""
    ids: list[str] = []
    if getattr(args, "model_ids", None):
        try:
            ids += model_ids(args.model_ids)
        except AquaLabError:
            pass
    if getattr(args, "models", None):
        try:
            entries: Any = json_arg(args.models, "--models")
        except AquaLabError:
            entries = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("model_id"), str):
                ids.append(entry["model_id"])
    if isinstance(getattr(args, "primary_model_id", None), str):
        ids.append(args.primary_model_id)
    return list(dict.fromkeys(ids))


def _known_to_bundled(args: argparse.Namespace, message: str) -> list[str]:
    """The catalog names of the models the local platform called unknown that the bundled catalog has."""
    if getattr(args, "platform", None) != "local":
        return []
    unknown = [i for i in _given_models(args) if f"unknown model {shown(i)}" in message]
    if not unknown:
        return []
    # the bundled catalog's own keys: an id or its short name, in any case (no "did you mean" search)
    names: dict[str, str] = {}
    for m in AquaLabService("bundled").models():
        names.setdefault(m.id.lower(), m.id)
        names.setdefault(m.id.split("/")[-1].lower(), m.id)
    return [names[key] for i in unknown if (key := i.strip().lower()) in names]
