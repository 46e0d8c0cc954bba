"""The one list of platforms: name → what it is and how to build it from settings.

The service, the server extension (``c.AquaLab.*``) and the CLI (``--platform``) all read this
table, so a new platform is one entry here.  Factories import their platform lazily: the OCI SDK
costs a second to import and a local-only user never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from ..errors import InvalidInput, Problem, shown
from .base import Platform
from .oci_choice import OciCheck, OciChoice, check, load


@dataclass(frozen=True)
class PlatformSettings:
    """What a platform may be configured with; empty means "the platform's own default"."""

    data_dir: str | None = None  # local: where state (SQLite, logs) lives
    oci_auth: str | None = None
    oci_config_file: str | None = None
    oci_profile: str | None = None
    oci_region: str | None = None  # default: the profile's region
    compartment_id: str | None = None
    project_id: str | None = None
    service_compartment_id: str | None = None
    oci_endpoint: str | None = None  # one base URL for every OCI call (the emulator)


@dataclass(frozen=True)
class PlatformEntry:
    name: str
    description: str
    build: Callable[[PlatformSettings], Platform]


def _local(settings: PlatformSettings) -> Platform:
    from .local import LocalPlatform

    return LocalPlatform(data_dir=settings.data_dir or None)


def _bundled(settings: PlatformSettings) -> Platform:
    from .bundled import BundledPlatform

    return BundledPlatform()


def _oci(settings: PlatformSettings, **tuning: object) -> Platform:
    from .oci import OciPlatform, resolve_auth

    auth = resolve_auth(
        settings.oci_auth or None,
        settings.oci_config_file or None,
        settings.oci_profile or None,
        settings.oci_region or None,
    )
    overrides = {
        key: value
        for key, value in {
            "compartment_id": settings.compartment_id,
            "project_id": settings.project_id,
            "service_compartment_id": settings.service_compartment_id,
            "endpoint": settings.oci_endpoint,
        }.items()
        if value
    }
    return OciPlatform.from_environment(auth, **overrides, **tuning)


REGISTRY: dict[str, PlatformEntry] = {
    entry.name: entry
    for entry in (
        PlatformEntry(
            "local", "this machine: real model servers (llama.cpp on CPU, vLLM on GPU) behind a router", _local
        ),
        PlatformEntry(
            "bundled",
            "OCI's service models and GPU shapes as shipped with aqua_lab: plans only, deploys nothing",
            _bundled,
        ),
        PlatformEntry("oci", "OCI Data Science: model groups and model deployments in your compartment", _oci),
    )
}
PLATFORMS = tuple(REGISTRY)


def unknown_platform(name: str, field: str = "platform") -> InvalidInput:
    return InvalidInput(Problem(field, f"unknown platform {shown(name)}", f"use one of {list(PLATFORMS)}"))


def check_platform(name: str, field: str = "platform") -> str:
    if name not in REGISTRY:
        raise unknown_platform(name, field)
    return name


def descriptions() -> dict[str, str]:
    return {name: entry.description for name, entry in REGISTRY.items()}


@cache
def build_platform(name: str, settings: PlatformSettings = PlatformSettings()) -> Platform:
    """One platform object per name and settings per process (platforms hold no request state)."""
    return REGISTRY[check_platform(name)].build(settings)


def with_oci_choice(settings: PlatformSettings) -> PlatformSettings:
    """``settings`` with the OCI configuration the user saved from the sidebar laid over them."""
    return replace(settings, **load().as_settings())


def check_oci_choice(choice: OciChoice, settings: PlatformSettings = PlatformSettings()) -> OciCheck:
    """Build the OCI platform from ``choice`` over ``settings`` and try one cheap call: one attempt
    and short timeouts, so a wrong endpoint answers in seconds rather than after four retries."""
    chosen = replace(settings, **choice.as_settings())
    return check(lambda: _oci(chosen, retries=1, timeout_s=(5.0, 20.0)))


def default_data_dir() -> str:
    """Where the local platform keeps its state unless told otherwise."""
    from .local.platform import default_data_dir as local_default

    return str(local_default())
