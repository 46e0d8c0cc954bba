"""The service: what every front (REST, widgets, CLI) calls, and the only thing it calls.

:class:`AquaLabService` (blocking, for kernels and the CLI) and :class:`AsyncAquaLabService` (its
coroutine face, for the Jupyter server); the platform list, for a front's ``--platform`` choice.
"""

from ..palette import colour_map
from ..palette import colours as palette_colours
from ..platforms.oci_choice import OciCheck, OciChoice, choice_path
from ..platforms.oci_choice import load as saved_oci_choice
from ..platforms.oci_choice import save as save_oci_choice
from ..platforms.registry import (
    PLATFORMS,
    PlatformSettings,
    check_oci_choice,
    check_platform,
    default_data_dir,
    descriptions,
    with_oci_choice,
)
from .aio import AsyncAquaLabService
from .facade import MAX_LOG_LINES, AquaLabService, window_seconds

__all__ = [
    "MAX_LOG_LINES",
    "PLATFORMS",
    "AquaLabService",
    "AsyncAquaLabService",
    "OciCheck",
    "OciChoice",
    "PlatformSettings",
    "check_oci_choice",
    "check_platform",
    "choice_path",
    "colour_map",
    "default_data_dir",
    "descriptions",
    "palette_colours",
    "save_oci_choice",
    "saved_oci_choice",
    "window_seconds",
    "with_oci_choice",
]
